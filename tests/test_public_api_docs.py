"""The two public faces are complete and documented: ``from neuralgraph.plugin import *`` gives a
plugin everything the built-in plugins use, every public name has a docstring the API reference
shows, and the docs' links resolve in the source tree (the generated pages are kept current)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

import neuralgraph
import neuralgraph.plugin
import neuralgraph.testing

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs"))
import gen_nodes  # noqa: E402  docs/gen_nodes.py

FACES = (neuralgraph, neuralgraph.plugin, neuralgraph.testing)


def _face_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "neuralgraph.plugin":
            names |= {a.name for a in node.names}
    return names


def test_a_star_import_gives_everything_the_builtin_plugins_use():
    used = set().union(*(_face_imports(p) for p in (ROOT / "plugins").glob("*.py")))
    assert used, "the built-in plugins import from neuralgraph.plugin"
    namespace: dict[str, object] = {}
    exec("from neuralgraph.plugin import *", namespace)
    assert used <= set(namespace), f"missing from neuralgraph.plugin: {sorted(used - set(namespace))}"
    # the backends are written against it too
    for backend in ("backend_jack.py", "backend_sounddevice.py"):
        assert {"CallbackAdapter", "RealtimeGuard", "Status", "BackendError"} <= _face_imports(
            ROOT / "plugins" / backend
        )


@pytest.mark.parametrize("face", FACES, ids=lambda f: f.__name__)
def test_every_public_name_exists_once(face):
    assert len(face.__all__) == len(set(face.__all__))
    for name in face.__all__:
        assert hasattr(face, name), f"{face.__name__}.__all__ names {name}, which it does not have"


@pytest.mark.parametrize("face", FACES, ids=lambda f: f.__name__)
def test_every_public_name_has_a_docstring_the_reference_shows(face):
    griffe = pytest.importorskip("griffe")  # what mkdocstrings reads (pip install -e '.[docs]')
    package = griffe.load(face.__name__, search_paths=[str(ROOT)], resolve_aliases=True, resolve_external=False)
    assert package.docstring and package.docstring.value.strip()
    missing = []
    for name in face.__all__:
        member = package[name]
        target = member.final_target if member.is_alias else member
        if not (target.docstring and target.docstring.value.strip()):
            missing.append(name)
    # hookimpl is pluggy's marker: documented in the face's own docstring instead
    missing = [n for n in missing if not (n == "hookimpl" and "hookimpl" in package.docstring.value)]
    assert missing == [], f"{face.__name__}: no docstring for {missing}"


def test_the_api_reference_pages_cover_all_three_faces():
    text = "".join((ROOT / "docs" / "reference" / p).read_text() for p in ("python-api.md", "plugin-api.md"))
    for face in FACES:
        assert f"::: {face.__name__}\n" in text


@pytest.mark.parametrize("page, make", [("nodes.md", gen_nodes.nodes_page), ("cli.md", gen_nodes.cli_page)])
def test_the_generated_pages_kept_in_docs_are_current(page, make):
    committed = (ROOT / "docs" / "reference" / page).read_text()
    assert committed == make(), (
        f"docs/reference/{page} is stale: python docs/gen_nodes.py {page.removesuffix('.md')} > docs/reference/{page}"
    )


LINK = re.compile(r"\]\(([^)\s#]+\.md)(#[^)\s]*)?\)")


def test_every_relative_link_in_the_docs_resolves_in_the_source_tree():
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for target, _ in LINK.findall(doc.read_text()):
            if "://" not in target and not (doc.parent / target).is_file():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert broken == []
