"""The import rules hold: plugins and examples import only the public faces, a stage imports only
itself and earlier stages, no cycles; and the check names a planted offending import."""

from __future__ import annotations

import shutil
from pathlib import Path

from import_rules import FACES, STAGES, violations

ROOT = Path(__file__).resolve().parent.parent


def test_the_checkout_keeps_the_import_rules():
    assert violations(ROOT) == []


def test_every_private_package_is_a_known_stage():
    """A new subpackage must be given its place in the pipeline (tests/import_rules.py STAGES)."""
    private = {
        p.name
        for p in (ROOT / "neuralgraph").iterdir()
        if p.name.startswith("_") and not p.name.startswith("__") and (p.is_dir() or p.suffix == ".py")
    }
    private = {name.removesuffix(".py") for name in private}
    assert private == set(STAGES)


def _copy(tmp_path: Path) -> Path:
    """A copy of the core and the built-in plugins to plant bad imports in."""
    shutil.copytree(ROOT / "neuralgraph", tmp_path / "neuralgraph", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "plugins", tmp_path / "plugins", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "examples").mkdir()
    return tmp_path


def _plant(root: Path, module: str, statement: str) -> int:
    """Append a function whose body is ``statement`` to ``module`` (a path under the root); its line."""
    path = root / module
    path.write_text(path.read_text() + f"\n\ndef _planted():\n    {statement}\n")
    return path.read_text().count("\n")


def test_a_plugin_importing_a_private_module_is_named(tmp_path):
    root = _copy(tmp_path)
    (root / "plugins" / "acme.py").write_text(
        '"""A plugin that reaches past the face."""\n'
        "from neuralgraph.plugin import Node\n"
        "from neuralgraph._runtime.engine import Engine\n"
    )
    assert violations(root) == [
        f"plugins/acme.py:3: imports neuralgraph._runtime.engine; plugins and examples may import only "
        f"{', '.join(FACES)}"
    ]


def test_a_private_package_imported_by_name_from_the_face_is_named(tmp_path):
    root = _copy(tmp_path)
    (root / "examples" / "script.py").write_text("import neuralgraph as ng\nfrom neuralgraph import _patch\n")
    assert violations(root) == [
        f"examples/script.py:2: imports neuralgraph._patch; plugins and examples may import only {', '.join(FACES)}"
    ]


def test_a_stage_importing_a_later_stage_is_named(tmp_path):
    root = _copy(tmp_path)
    line = _plant(root, "neuralgraph/_nodes/ports.py", "from neuralgraph._tools.plotting import title_for")
    assert violations(root) == [
        f"neuralgraph/_nodes/ports.py:{line}: imports neuralgraph._tools.plotting; stage _nodes may import only "
        "itself and earlier stages (_errors, _nodes), not _tools"
    ]


def test_a_stage_importing_a_face_and_the_cycle_it_makes_are_named(tmp_path):
    root = _copy(tmp_path)
    line = _plant(root, "neuralgraph/_tools/contract.py", "import neuralgraph.testing")
    found = violations(root)
    assert (
        f"neuralgraph/_tools/contract.py:{line}: imports neuralgraph.testing; a stage (_tools) must not import a "
        "public face" in found
    )
    cycles = [f for f in found if f.startswith("import cycle:")]
    assert len(cycles) == 1
    assert f"neuralgraph/_tools/contract.py:{line} imports neuralgraph.testing" in cycles[0]
    assert "neuralgraph/testing.py:" in cycles[0]


def test_a_cycle_inside_one_stage_is_named(tmp_path):
    root = _copy(tmp_path)
    line = _plant(root, "neuralgraph/_nodes/state.py", "from neuralgraph._nodes.node import Node")  # node imports state
    found = violations(root)
    assert len(found) == 1 and found[0].startswith("import cycle: ")
    assert f"neuralgraph/_nodes/state.py:{line} imports neuralgraph._nodes.node" in found[0]
    assert "imports neuralgraph._nodes.state" in found[0]
