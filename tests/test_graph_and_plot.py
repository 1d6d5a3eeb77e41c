"""``neuralgraph graph`` (DOT text, SVG/PNG through Graphviz) and ``render --plot`` (matplotlib)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import neuralgraph as ng
from neuralgraph import Registry
from neuralgraph._tools import cli
from neuralgraph._tools.drawing import draw_patch, patch_to_dot
from neuralgraph.plugin import Input, NeuralgraphError, Node, Output, Ports, Rate, hookimpl

ROOT = Path(__file__).resolve().parent.parent
HAS_DOT = shutil.which("dot") is not None
HAS_MPL = importlib.util.find_spec("matplotlib") is not None
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# An echo built from a delay whose output comes back into its own input: the feedback edge.
FEEDBACK_PATCH = {
    "schema": 1,
    "name": "Echo loop",
    "nodes": {
        "keys": {"type": "midi.voices", "count": 3},
        "osc": {"type": "osc.saw", "freq": "keys.freq"},
        "env": {"type": "env.adsr", "gate": "keys.gate"},
        "vca": {"type": "math.mul", "in": "osc", "gain": {"from": "env", "range": [0.0, 0.5]}},
        "sum": {"type": "voices.sum", "in": "vca"},
        "loop": {"type": "math.add", "a": "sum", "b": {"from": "dly", "feedback": True}},
        "dly": {"type": "fx.delay", "in": "loop", "time_ms": 120.0, "mix": 1.0},
        "out": {"type": "io.output", "channels": 2, "in": "loop"},
    },
}


def neuralgraph(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "neuralgraph", *args], capture_output=True, text=True, cwd=cwd, check=False
    )


def edge_lines(dot: str) -> list[str]:
    return [line.strip() for line in dot.splitlines() if " -> " in line]


def test_dot_has_every_node_and_connection_with_rate_styles_and_feedback():
    patch = ng.load_patch(FEEDBACK_PATCH)
    dot = patch_to_dot(patch)
    for name, spec in patch.spec.nodes.items():
        assert re.search(rf'^\s+"{name}" \[label=<.*<b>{name}</b>.*{re.escape(spec.type)}', dot, re.MULTILINE), name
    edges = edge_lines(dot)
    assert len(edges) == len(patch.topology.edges) == 9
    for e in patch.topology.edges:
        assert any(
            line.startswith(f'"{e.src}":"out_{e.src_port}":e -> "{e.dst}":"in_{e.dst_port}":w') for line in edges
        ), e
    feedback = [line for line in edges if "feedback (1 block)" in line]
    assert feedback == [line for line in edges if line.startswith('"dly"')]
    assert 'color="#c53030"' in feedback[0] and "constraint=false" in feedback[0]
    # keys.freq -> osc carries 3 voice lanes; the envelope's mapping is shown on its edge
    freq = next(line for line in edges if line.startswith('"keys":"out_freq"'))
    assert 'label="×3"' in freq and "style=dashed" not in freq
    gain = next(line for line in edges if line.startswith('"env"'))
    assert "→ [0, 0.5]" in gain
    # node boxes: lane counts and the values the patch writes, with units
    assert (
        "midi.voices · 1 → 3 lanes" in dot
        and "voices.sum · 3 → 1 lanes" in dot
        and "time_ms = 120 ms" in dot
        and "channels = 2" in dot
    )


class Trigger(Node):
    """Passes the engine's MIDI on as an events output (for the drawing test)."""

    type_name = "test.trigger"
    midi = Input(rate=Rate.EVENTS, source="midi", doc="MIDI in.")
    out = Output(rate=Rate.EVENTS, doc="The same events.")

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        pass


class TriggerPlugin:
    @staticmethod
    @hookimpl
    def ng_register_nodes(register) -> None:
        register(Trigger)


def test_control_and_events_edges_are_styled_apart_from_audio():
    registry = Registry.load(plugins={"trigger": TriggerPlugin()})
    patch = ng.load_patch(
        {
            "schema": 1,
            "name": "styles",
            "nodes": {
                "trig": {"type": "test.trigger"},
                "keys": {"type": "midi.voices", "count": 1, "midi": "trig"},
                "osc": {"type": "osc.saw", "freq": "keys.freq"},
                "lfo": {"type": "lfo", "rate": 0.5},
                "eq": {"type": "filter.peak", "in": "osc", "cutoff": {"from": "lfo", "range": [200.0, 2000.0]}},
                "out": {"type": "io.output", "in": "eq"},
            },
        },
        registry=registry,
    )
    edges = edge_lines(patch_to_dot(patch))
    assert len(edges) == 5

    def line(src: str, dst: str) -> str:
        return next(x for x in edges if x.startswith(f'"{src}"') and f'-> "{dst}"' in x)

    assert "style=dotted" in line("trig", "keys")  # events
    assert "style=dashed" in line("lfo", "eq")  # into a control-rate input: once per block
    for src, dst in (("keys", "osc"), ("osc", "eq"), ("eq", "out")):  # audio
        assert "style=" not in line(src, dst) and "penwidth=1.6" in line(src, dst)


def test_numbered_ports_between_two_nodes_draw_as_one_bus():
    patch = ng.load_patch(ROOT / "graphs" / "neural_flute.toml")
    dot = patch_to_dot(patch)
    edges = edge_lines(dot)
    bus = [line for line in edges if line.startswith('"decoder":"out_harm_bus"')]
    assert len(bus) == 1 and 'label="32 ports  ×4"' in bus[0] and '"harmonic":"in_amp_bus"' in bus[0]
    assert "harm_1 … 32" in dot and "amp_1 … 32" in dot and "noise_1 … 16" in dot
    assert "ddsp_flute.onnx" in dot and str(ROOT) not in dot  # a model path is drawn by its file name


def test_unknown_suffix_is_a_clear_error(tmp_path):
    patch = ng.load_patch(FEEDBACK_PATCH)
    with pytest.raises(NeuralgraphError, match=r"drawing.jpg.*use one of .dot, .gv, .svg, .png, .pdf"):
        draw_patch(patch, tmp_path / "drawing.jpg")


def test_graph_command_writes_dot_and_prints_it(tmp_path, capsys):
    out = tmp_path / "chord.dot"
    run = neuralgraph("graph", str(ROOT / "graphs" / "saw_chord.toml"), "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert "7 nodes, 6 connections" in run.stdout
    text = out.read_text()
    assert text.startswith("digraph patch {") and '"chord":"out_out":e -> "swell":"in_in":w' in text
    assert cli.main(["graph", str(ROOT / "graphs" / "saw_chord.toml"), "--set", "root.freq=110"]) == 0
    assert "freq = 110 Hz" in capsys.readouterr().out  # no -o: the DOT text on stdout


def test_graph_command_reports_patch_errors_with_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('schema = 1\nname = "x"\n[nodes.out]\ntype = "io.output"\nin = "nowhere"\n')
    assert cli.main(["graph", str(bad), "-o", str(tmp_path / "bad.svg")]) == 2
    assert "NG120" in capsys.readouterr().err and not (tmp_path / "bad.svg").exists()


def test_without_graphviz_the_message_names_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH where there is no `dot`
    assert cli.main(["graph", str(ROOT / "graphs" / "saw_chord.toml"), "-o", str(tmp_path / "x.svg")]) == 1
    err = capsys.readouterr().err
    assert "needs Graphviz's `dot` program" in err and "apt-get install graphviz" in err
    assert not (tmp_path / "x.svg").exists()
    # DOT text needs no Graphviz
    assert cli.main(["graph", str(ROOT / "graphs" / "saw_chord.toml"), "-o", str(tmp_path / "x.dot")]) == 0


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz `dot` is not installed (apt-get install graphviz)")
@pytest.mark.parametrize("patch_file", sorted(p.name for p in (ROOT / "graphs").glob("*.toml")))
def test_every_example_patch_draws_as_svg(tmp_path, patch_file, capsys):
    out = tmp_path / "patch.svg"
    assert cli.main(["graph", str(ROOT / "graphs" / patch_file), "-o", str(out)]) == 0, capsys.readouterr().err
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    titles = {el.text for el in root.iter() if el.tag.endswith("title")}
    patch = ng.load_patch(ROOT / "graphs" / patch_file)
    assert set(patch.spec.nodes) <= titles  # Graphviz titles each node's group with its name


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz `dot` is not installed (apt-get install graphviz)")
def test_graph_png(tmp_path):
    out = tmp_path / "loop.png"
    draw_patch(ng.load_patch(FEEDBACK_PATCH), out)
    assert out.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.skipif(not HAS_MPL, reason="matplotlib is not installed (pip install 'neuralgraph[plot]')")
def test_render_plot_writes_a_png_with_the_title(tmp_path):
    from PIL import Image  # matplotlib depends on Pillow

    wav, png = tmp_path / "chord.wav", tmp_path / "chord.png"
    run = neuralgraph(
        "render",
        str(ROOT / "graphs" / "saw_chord.toml"),
        "-o",
        str(wav),
        "--seconds",
        "0.3",
        "--plot",
        str(png),
        "--set",
        "root.freq=110",
    )
    assert run.returncode == 0, run.stderr
    assert f"wrote {png}" in run.stdout or "waveform and spectrogram" in run.stdout
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == (1000, 600)
        # not a blank canvas: the spectrogram's colours cover many distinct values
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 500


def test_plot_title_carries_patch_name_and_settings():
    from neuralgraph._tools.plotting import title_for

    assert (
        title_for("Saw chord", ["saw_chord.toml", "48000 Hz", "block 128"])
        == "Saw chord · saw_chord.toml · 48000 Hz · block 128"
    )


def test_render_plot_without_matplotlib_says_what_to_install(tmp_path, capsys, monkeypatch):
    # as on an install without the `plot` extra: `import matplotlib` fails
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code = cli.main(
        [
            "render",
            str(ROOT / "graphs" / "saw_chord.toml"),
            "-o",
            str(tmp_path / "x.wav"),
            "--seconds",
            "0.1",
            "--plot",
            str(tmp_path / "x.png"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "--plot needs matplotlib" in err and "pip install 'neuralgraph[plot]'" in err
    assert not (tmp_path / "x.wav").exists()  # it says so before spending time on the render
