"""The registry's index: a render imports only the plugins its patch uses, and the index never
hides a change to what is installed or to a plugin's source."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import neuralgraph as ng

PROBE = """
import sys
import neuralgraph as ng
registry = ng.Registry.load()
before = sorted(m for m in sys.modules if m.startswith(("neuralgraph_plugins.", "tones")))
names = sorted(registry.node_types)
print(";".join(before))
print(";".join(names))
"""


def _run(code: str, env: dict[str, str]) -> list[str]:
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return run.stdout.splitlines()


def _distribution(site: Path, name: str, type_name: str) -> Path:
    """An installed distribution ``name`` whose module registers one oscillator as ``type_name``."""
    module = site / f"{name}.py"
    module.write_text(
        textwrap.dedent(
            f"""
            from neuralgraph.plugin import Node, Output, hookimpl

            class Tone(Node):
                type_name = {type_name!r}
                out = Output()

            @hookimpl
            def ng_register_nodes(register):
                register(Tone)
            """
        )
    )
    dist = site / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[neuralgraph]\n{name} = {name}\n")
    return module


def _env(tmp_path: Path, site: Path) -> dict[str, str]:
    return dict(os.environ, NEURALGRAPH_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(site))


def test_a_load_after_the_first_imports_no_plugin_until_a_name_is_used(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _distribution(site, "tones", "x.tone")
    env = _env(tmp_path, site)
    first_imported, first_names = _run(PROBE, env)
    assert "neuralgraph_plugins.filters" in first_imported.split(";")  # the full load imports all
    second_imported, second_names = _run(PROBE, env)
    assert second_imported == ""  # the index stood in for every import
    assert second_names == first_names and "x.tone" in second_names.split(";")

    use = PROBE + "print(registry.node_class('osc.saw').__name__, registry.node_class('x.tone').__name__)\n"
    use += "print(';'.join(sorted(m for m in sys.modules if m.startswith(('neuralgraph_plugins.', 'tones')))))\n"
    *_, classes, imported = _run(use, env)
    assert classes == "SawOsc Tone"
    assert imported == "neuralgraph_plugins.oscillators;tones"


def test_an_edited_plugin_or_a_new_distribution_is_read_again(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    module = _distribution(site, "tones", "x.tone")
    env = _env(tmp_path, site)
    _run(PROBE, env)
    _run(PROBE, env)  # from the index

    module.write_text(module.read_text().replace("'x.tone'", "'x.tone_two'"))
    os.utime(module, ns=(module.stat().st_atime_ns, module.stat().st_mtime_ns + 10**9))
    names = _run(PROBE, env)[1].split(";")
    assert "x.tone_two" in names and "x.tone" not in names

    _distribution(site, "chimes", "x.chime")  # installed beside it: the folder changed
    names = _run(PROBE, env)[1].split(";")
    assert {"x.tone_two", "x.chime"} <= set(names)


def test_a_render_from_the_index_sounds_like_one_from_the_full_load(tmp_path):
    graphs = Path(__file__).resolve().parent.parent / "graphs"
    (tmp_path / "site").mkdir()
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))  # a new path layout: a new index, warm kernels
    outs = []
    for k in range(2):  # the first process loads every plugin, the second reads the index
        out = tmp_path / f"chord{k}.wav"
        cmd = [sys.executable, "-m", "neuralgraph", "render", str(graphs / "saw_chord.toml"), "-o", str(out)]
        subprocess.run([*cmd, "--seconds", "0.5"], capture_output=True, env=env, check=True)
        outs.append(ng.read_audio(out)[0])
    assert outs[0].shape == (2, 24000) and np.abs(outs[0]).max() > 0.1
    np.testing.assert_array_equal(outs[0], outs[1])
