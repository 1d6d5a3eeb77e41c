"""The documentation site: the generated node and hook reference, the strict MkDocs build, the pictures."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pluggy
import pytest

from neuralgraph import default_registry
from neuralgraph._plugins import hookspecs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs"))
import gen_nodes  # docs/gen_nodes.py: the generator the site's build runs)

HAS_MKDOCS = importlib.util.find_spec("mkdocs") is not None and importlib.util.find_spec("material") is not None
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def page() -> str:
    return gen_nodes.nodes_page()


def builtin_types() -> dict:
    builtin = set(gen_nodes.builtin_plugins())
    return {name: nt for name, nt in default_registry().node_types.items() if nt.plugin in builtin}


def test_every_registered_builtin_node_type_has_a_reference_section(page):
    types = builtin_types()
    assert len(types) >= 40
    for name in types:
        assert f"### `{name}` {{#{gen_nodes.anchor(name)}}}" in page, f"{name} is missing from the node reference"
        assert f"| [`{name}`](#{gen_nodes.anchor(name)}) |" in page
    # and nothing else: a third-party plugin installed here (examples/bitcrush) stays out of it
    documented = set(re.findall(r"^### `([a-z0-9_.]+)` \{#", page, re.MULTILINE))
    assert documented == set(types)


def test_every_hook_has_a_reference_section(page):
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    hooks = [name for name in dir(pm.hook) if name.startswith("ng_")]
    assert {"ng_register_nodes", "ng_register_backends"} <= set(hooks)
    for name in hooks:
        assert re.search(rf"^### `{name}\(.*\)` \{{#{gen_nodes.anchor(name)}\}}$", page, re.MULTILINE), (
            f"hook {name} is missing from the reference"
        )
        first_line = getattr(hookspecs, name).__doc__.strip().splitlines()[0]
        assert first_line in page


def test_every_builtin_node_documents_itself():
    """The reference is only as good as the metadata: every class, port and parameter says what it is."""
    missing = []
    for name, nt in builtin_types().items():
        node = nt.cls()
        if not (nt.cls.__doc__ or "").strip():
            missing.append(f"{name}: class docstring")
        for kind, decls in (("input", node.inputs()), ("output", node.outputs()), ("parameter", nt.cls.params())):
            missing += [f"{name}: {kind} {port}" for port, decl in decls.items() if not decl.doc.strip()]
    assert not missing, "undocumented: " + ", ".join(missing)


def test_reference_rows_carry_units_ranges_defaults_and_liveness(page):
    section = page.split("### `filter.lowpass`", 1)[1].split("\n### ", 1)[0]
    cutoff = next(line for line in section.splitlines() if line.startswith("| `cutoff` |"))
    assert cutoff.startswith("| `cutoff` | audio | 1000 | 0 … 100000 | Hz |")
    voices = page.split("### `midi.voices`", 1)[1].split("\n### ", 1)[0]
    assert "| `midi` | events | engine MIDI |" in voices
    assert re.search(r"\| `count` \| integer \| 8 \| 1 … 128 \|  \| no \|", voices)
    assert re.search(r"\| `mode` \| string \| `'poly'` \| `poly`, `mono`, `legato` \|  \| yes \|", voices)
    mix = page.split("### `mix`", 1)[1].split("\n### ", 1)[0]
    assert "Ports depend on parameters" in mix and "`count = 4`" in mix and "| `in_4` |" in mix
    assert ":mod:" not in page and ":class:" not in page  # Sphinx roles are turned into code spans


def test_cli_reference_has_every_command():
    from neuralgraph._tools.cli import build_parser

    text = gen_nodes.cli_page()
    import argparse

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    commands = list(sub.choices)
    assert {"render", "check", "nodes", "play", "graph"} <= set(commands)
    for command in commands:
        assert f"## `neuralgraph {command}`" in text
    assert "--plot OUT.png" in text


def test_nav_leaves_out_pages_not_written_yet(tmp_path):
    (tmp_path / "here.md").write_text("# here\n")
    nav = [
        {"Home": "here.md"},
        {"Guides": [{"Later": "later.md"}, {"Here": "here.md"}]},
        {"Empty": [{"Gone": "gone.md"}]},
        {"Nodes": "reference/nodes.md"},
        {"Web": "https://example.org/x.md"},
    ]
    assert gen_nodes._prune_nav(nav, tmp_path, {"reference/nodes.md"}) == [
        {"Home": "here.md"},
        {"Guides": [{"Here": "here.md"}]},
        {"Nodes": "reference/nodes.md"},
        {"Web": "https://example.org/x.md"},
    ]


@pytest.mark.skipif(not HAS_MKDOCS, reason="mkdocs and mkdocs-material are not installed (pip install -e '.[docs]')")
def test_site_builds_strictly_with_the_reference_pages(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    for page in (
        "index.html",
        "getting-started/index.html",
        "patch-format/index.html",
        "plugins/index.html",
        "architecture/index.html",
        "troubleshooting/index.html",
        "reference/cli/index.html",
    ):
        assert (site / page).is_file(), page
    nodes = (site / "reference" / "nodes" / "index.html").read_text()
    for name in builtin_types():
        assert f'id="{gen_nodes.anchor(name)}"' in nodes, name
    assert 'id="ng-register-nodes"' in nodes and 'id="ng-register-backends"' in nodes
    assert (site / "images" / "neural_flute_graph.png").is_file()
    assert not list(site.rglob("*.py"))  # the generator scripts are not published


def test_committed_pictures_are_small_pngs():
    for name in ("neural_flute_graph", "neural_flute_spectrogram", "saw_chord_graph", "saw_chord_spectrogram"):
        data = (ROOT / "docs" / "images" / f"{name}.png").read_bytes()
        assert data[:8] == PNG_MAGIC and 1_000 < len(data) < 300_000, name


@pytest.mark.skipif(
    shutil.which("dot") is None or importlib.util.find_spec("matplotlib") is None,
    reason="needs Graphviz `dot` and matplotlib",
)
def test_picture_script_makes_the_committed_pictures(tmp_path):
    import make_images  # docs/make_images.py

    names = {f"{name}_{kind}.png" for name in make_images.PICTURES for kind in ("graph", "spectrogram")}
    names |= {
        f"neural_{i}_heldout.png" for i in ("flute", "violin", "trumpet")
    }  # docs/make_neural_images.py, run by it too
    names |= {"live_session.png"}  # docs/make_live_image.py, run by it too
    names |= {"serve.png"}  # docs/make_serve_image.py, run by it too
    names |= {"transfer_spectrograms.png"}  # docs/make_transfer_examples.py, run by it too
    assert names == {p.name for p in (ROOT / "docs" / "images").glob("*.png")}  # every picture comes from it
    made = make_images.make("saw_chord", *make_images.PICTURES["saw_chord"], folder=tmp_path)  # the quick one
    assert sorted(p.name for p in made) == ["saw_chord_graph.png", "saw_chord_spectrogram.png"]
    for path in made:
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size < 300_000
