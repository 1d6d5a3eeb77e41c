"""Every code block in README.md and docs/ runs, every link in docs/ resolves in the source tree,
and every page is in the site's navigation (issue 18, "The docs a plugin author needs").

How a block is run, by what it is:

- ``python``: executed in a scratch folder that holds ``graphs/`` and ``examples/``, with the
  files earlier blocks of the page saved (``<!-- file: NAME -->`` before a block saves it);
- ``toml`` with ``schema = 1``: loaded and checked like ``neuralgraph check``; a fragment
  (``[nodes.x]`` tables only) has each node's type, parameters and inputs checked;
- ``sh`` and bare blocks: every ``neuralgraph`` command line is run in-process (``play`` and
  ``bench`` are parsed and their files checked: they need a device or many seconds); every
  ``python script.py --flags`` line must name a script that exists and declares those flags
  (they train or benchmark for minutes); installs (``pip``, ``python3 -m venv``) are what ``.ci/run`` does;
- a block copied from a file in the repository (an excerpt of an example or a training script)
  is that file's, and is run by that file's tests;
- anything else must say why it is not run: ``<!-- not-run: REASON -->`` before it. Output
  samples (a bare block whose lines are not commands) are text.
"""

from __future__ import annotations

import fnmatch
import re
import runpy
import shlex
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import neuralgraph as ng
from neuralgraph._tools.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]  # docs/reference/ too
#: made by docs/gen_nodes.py at build time (a copy is kept in docs/reference/ for the source tree)
GENERATED = {"reference/nodes.md", "reference/cli.md"}
BLOCK = re.compile(r"(?:<!-- (file|not-run): ([^>]*?) -->\s*\n)?^[ \t]*```(\w*)\n(.*?)^[ \t]*```", re.S | re.M)
SETUP = ("pip ", "python3 -m venv", ". .venv", "mkdir ", "cd ", "python -m pytest", "mkdocs ")
#: the parts of the repository a block may be an excerpt of
SOURCES = [
    p
    for d in ("examples", "plugins", "graphs", "tests", "benchmarks", "neuralgraph")
    for p in (ROOT / d).rglob("*")
    if p.suffix in (".py", ".toml") and p.is_file()
]


def blocks(page: Path) -> list[tuple[str, str | None, str, str, int]]:
    """(marker kind, marker text, language, body, line) of every fenced block."""
    text = page.read_text(encoding="utf-8")
    return [
        (m[1], m[2], m[3], textwrap.dedent(m[4]), text.count("\n", 0, m.start(3)) + 1) for m in BLOCK.finditer(text)
    ]


def block_ids() -> list:
    return [
        pytest.param(page, kind, note, lang, body, id=f"{page.name}:{line}")
        for page in PAGES
        for kind, note, lang, body, line in blocks(page)
    ]


def excerpt(body: str) -> Path | None:
    lines = [line for line in body.strip().splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    for path in SOURCES:
        text = path.read_text(encoding="utf-8", errors="replace")
        if all(line.strip() in text for line in lines):
            return path
    return None


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A folder like the repository's root for the commands to run in, with the files pages save."""
    folder = tmp_path_factory.mktemp("docs")
    for name in ("graphs", "examples", "benchmarks"):
        (folder / name).symlink_to(ROOT / name)
    soundfile.write(
        folder / "dry.wav", (0.1 * np.random.default_rng(1).standard_normal((24000, 2))).astype(np.float32), 48000
    )
    for page in PAGES:  # the files pages ask the reader to save
        for kind, note, _lang, body, _line in blocks(page):
            if kind == "file":
                (folder / note.strip()).write_text(body, encoding="utf-8")
    return folder


def run_python(body: str, folder: Path, monkeypatch) -> None:
    """Run the block as a script in ``folder`` (in-process: importing neuralgraph again per block
    would cost seconds each; a file, not a string, because numba's cache=True needs one)."""
    script = folder / "doc_block.py"
    script.write_text(body, encoding="utf-8")
    monkeypatch.chdir(folder)
    runpy.run_path(str(script), run_name="__main__")


def check_toml(body: str, monkeypatch, folder: Path) -> None:
    data = tomllib.loads(body)
    if set(data) <= {"audio", "limits"}:  # a config.toml
        from neuralgraph._patch.config import load_limits, load_settings

        (folder / "config.toml").write_text(body, encoding="utf-8")
        load_settings(environ={}, paths=[folder / "config.toml"])
        load_limits(environ={}, paths=[folder / "config.toml"])
        (folder / "config.toml").unlink()
        return
    if "schema" in data:
        ng.load_patch(data, base_dir=ROOT / "graphs")  # raises PatchError listing every problem
        return
    registry = ng.default_registry()
    monkeypatch.chdir(ROOT / "graphs")  # a fragment's files are named as from a patch in graphs/
    for name, table in data["nodes"].items():  # a fragment: each node on its own
        cls = registry.node_class(table["type"])
        node = cls(**{k: v for k, v in table.items() if k in cls.params()})
        unknown = {
            key
            for key in set(table) - {"type"} - set(cls.params()) - set(node.inputs())
            if not ("*" in key and any(fnmatch.fnmatch(port, key) for port in node.inputs()))
        }
        assert not unknown, f"{name}: {table['type']} has no {sorted(unknown)}"


def command_lines(body: str) -> list[str]:
    """The block's commands, continuation lines joined, comments and ``$ `` prompts dropped."""
    text = re.sub(r"\\\n\s*", " ", body)
    out = []
    for line in text.splitlines():
        line = line.strip().removeprefix("$ ")
        if line.startswith(("neuralgraph ", "python ", "python3 ", "pip ", ". .venv", "mkdir ")):
            out.append(line)
    return out


def run_command(line: str, folder: Path, monkeypatch, capsys) -> None:
    words = shlex.split(line, comments=True)
    if line.startswith(SETUP) or not words:
        return
    if words[0] == "neuralgraph":
        argv = words[1:]
        if "[" in line or "PATCH" in argv:  # a synopsis (`neuralgraph bench PATCH [--seconds 10]`), not a command
            return
        args = build_parser().parse_args(argv)  # every flag exists and parses
        if args.command in ("model", "serve"):  # the user's own model; a server that runs until Ctrl-C
            return
        for attr in ("patch", "midi", "input"):
            if getattr(args, attr, None):
                assert (folder / getattr(args, attr)).exists(), f"{line}: {getattr(args, attr)} does not exist"
        if args.command in ("play", "bench"):
            return
        monkeypatch.chdir(folder)
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 0, f"{line}: exit {code}: {err}"
        return
    if words[0] in ("python", "python3") and words[1] == "-c":
        run_python(words[2], folder, monkeypatch)
        return
    # a script run for minutes (training, benchmarks): it exists and declares every flag used
    script = ROOT / words[1]
    assert script.is_file(), f"{line}: {words[1]} does not exist"
    source = script.read_text(encoding="utf-8")
    missing = [
        f
        for f in (w.split("=")[0] for w in words[2:] if w.startswith("--"))
        if not re.search(rf"add_argument\([^)]*[\"']{re.escape(f)}[\"']", source)
    ]
    assert not missing, f"{line}: {words[1]} has no argument {missing}"


@pytest.mark.parametrize(("page", "kind", "note", "lang", "body"), block_ids())
def test_every_code_block_runs(page, kind, note, lang, body, scratch, monkeypatch, capsys):
    if kind == "not-run":
        assert len(note.strip()) > 10, "say why the block is not run"
        return
    if lang == "python":
        if excerpt(body) is None:
            run_python(body, scratch, monkeypatch)
        return
    if lang == "toml":
        if excerpt(body) is None:
            check_toml(body, monkeypatch, scratch)
        return
    commands = command_lines(body)
    if lang in ("text", "") and not commands:
        return  # output, as a terminal shows it
    assert commands, f"a {lang or 'bare'} block with no command in it"
    for line in commands:
        run_command(line, scratch, monkeypatch, capsys)


# ---- links and navigation --------------------------------------------------------------------
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize(
    "page", sorted((ROOT / "docs").rglob("*.md")), ids=lambda p: p.relative_to(ROOT / "docs").as_posix()
)
def test_links_in_the_docs_resolve_in_the_source_tree(page):
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        if path in GENERATED:
            continue
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.name} links to files that do not exist: {broken}"


def test_every_page_is_in_the_navigation():
    import yaml

    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)

    def pages(items) -> set[str]:
        found = set()
        for item in items:
            for value in item.values():
                found |= pages(value) if isinstance(value, list) else {value}
        return found

    in_nav = pages(config["nav"])
    written = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert written - in_nav == set(), "pages missing from mkdocs.yml nav"
    assert in_nav - written - GENERATED == set(), "nav entries with no page"
