"""docs/architecture.md names every module and subpackage of the core and every built-in plugin,
each in a table row with its job, and names nothing that no longer exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"


def _rows(text: str) -> dict[str, str]:
    """``{first cell: second cell}`` of every table row whose first cell is one `code` name."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\|\s*`([^`]+)`\s*\|\s*(.*?)\s*\|\s*$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def expected(root: Path = ROOT) -> set[str]:
    """Every module (``_patch/graph.py``), subpackage (``_patch/``) and built-in plugin module."""
    core = root / "neuralgraph"
    names = set()
    for path in core.rglob("*.py"):
        rel = path.relative_to(core).as_posix()
        if path.name == "__init__.py" and path.parent != core:
            names.add(path.parent.relative_to(core).as_posix() + "/")
        else:
            names.add(rel)
    for path in (root / "plugins").glob("*.py"):
        if path.name != "__init__.py":
            names.add(f"plugins/{path.name}")
    return names


def missing_and_stale(text: str, root: Path = ROOT) -> tuple[list[str], list[str]]:
    rows = _rows(text)
    want = expected(root)
    missing = sorted(n for n in want if not rows.get(n))
    stale = sorted(n for n in rows if (n.endswith((".py", "/")) and n not in want))
    return missing, stale


def test_every_module_has_a_row_with_its_job():
    missing, stale = missing_and_stale(DOC.read_text())
    assert missing == [], f"docs/architecture.md has no row (`name` | job) for: {', '.join(missing)}"
    assert stale == [], f"docs/architecture.md names modules that do not exist: {', '.join(stale)}"


def test_a_new_module_without_a_row_is_caught(tmp_path):
    (tmp_path / "neuralgraph" / "_runtime").mkdir(parents=True)
    (tmp_path / "neuralgraph" / "_runtime" / "__init__.py").write_text("")
    (tmp_path / "neuralgraph" / "_runtime" / "taps.py").write_text("")
    (tmp_path / "plugins").mkdir()
    text = "| `_runtime/` | the engine |\n| `_runtime/engine.py` | gone |\n"
    assert missing_and_stale(text, tmp_path) == (["_runtime/taps.py"], ["_runtime/engine.py"])
