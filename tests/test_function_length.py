"""No function over 60 lines in the core (issue 13): a long function is split into named phases,
the way a SynthDef build is a sequence of named steps. The scan covers ``neuralgraph/`` and the
built-in ``plugins/``; a function's length is the number of lines on which its statements start
(nested functions included): what a reader reads, whatever the formatter's wrapping of long
argument lists."""

from __future__ import annotations

import ast
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("neuralgraph", "plugins")
LIMIT = 60

#: (file, function) -> why it may stay longer for now. Keep it tiny: every entry is a debt (an
#: entry that is no longer needed fails the test too).
ALLOWED: dict[tuple[str, str], str] = {}


@attrs.frozen
class LongFunction:
    file: str
    line: int
    name: str
    lines: int

    def text(self) -> str:
        return f"{self.file}:{self.line}: {self.name} is {self.lines} lines (limit {LIMIT})"


def long_functions(root: Path, folders: tuple[str, ...] = FOLDERS, limit: int = LIMIT) -> list[LongFunction]:
    """Every function or method under ``root/folders`` longer than ``limit`` lines."""
    found = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = len({n.lineno for n in ast.walk(node) if isinstance(n, ast.stmt)})
                    if lines > limit:
                        found.append(LongFunction(path.relative_to(root).as_posix(), node.lineno, node.name, lines))
    return found


def test_no_function_in_the_core_is_over_60_lines():
    found = long_functions(ROOT)
    too_long = [f for f in found if (f.file, f.name) not in ALLOWED]
    assert not too_long, "split these into named phases:\n" + "\n".join(f.text() for f in too_long)
    stale = sorted(set(ALLOWED) - {(f.file, f.name) for f in found})
    assert not stale, f"no longer over {LIMIT} lines (or gone): remove them from ALLOWED: {stale}"


def test_the_scan_names_file_line_function_and_length(tmp_path):
    package = tmp_path / "neuralgraph"
    package.mkdir()
    body = "\n".join(f"x{i} = {i}" for i in range(59))
    fits = body.replace("\n", "\n    ")
    spills = body.replace("\n", "\n        ")
    (package / "m.py").write_text(
        f"import math\n\n\ndef fits():\n    {fits}\n\n\nclass K:\n    async def spills(self):\n        {spills}\n"
        "        return 1\n",
        encoding="utf-8",
    )
    found = long_functions(tmp_path, ("neuralgraph",))
    assert [f.text() for f in found] == ["neuralgraph/m.py:67: spills is 61 lines (limit 60)"]
