"""The live Python session: register node classes inline, patches from strings and dicts,
render() to an Audio array, Jupyter representations."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
import soundfile
from analysis import peak_frequency
from helpers import saw_voices

import neuralgraph as ng
from neuralgraph.plugin import Input, Node, Output, Ports, PrepareContext
from neuralgraph.testing import check_node

SR = 48000
FOLDED = """schema = 1
[nodes.osc]
type = "osc.sine"
freq = 200.0
[nodes.fold]
type = "session.fold_test"
in = "osc"
drive = 3.0
[nodes.out]
type = "io.output"
channels = 1
in = "fold"
"""


def make_fold(doc: str = "A sine wavefolder."):
    class Fold(Node):
        __doc__ = doc
        type_name = "session.fold_test"
        bypass = "thru"
        in_ = Input(init=0.0, doc="The signal.")
        drive = Input(init=1.0, min=0.0, max=50.0, doc="How hard the signal is folded.")
        out = Output(span=(-1.0, 1.0), doc="sin(drive * in).")

        def prepare(self, ctx: PrepareContext) -> None:
            self.scratch = np.zeros((ctx.lanes, ctx.block_size), np.float32)

        def process(self, ins: Ports, outs: Ports, frames: int) -> None:
            np.multiply(ins.in_, ins.drive, out=self.scratch)
            np.sin(self.scratch, out=outs.out)

    return Fold


def test_a_registered_inline_class_plays_in_a_patch_written_as_a_string():
    fold = ng.register(make_fold())
    audio = ng.render(ng.Patch.from_string(FOLDED), 0.5)
    assert isinstance(audio, ng.Audio) and audio.sample_rate == SR and audio.shape == (1, SR // 2)
    t = np.arange(SR // 2) / SR
    expected = np.sin(3.0 * np.sin(2 * np.pi * 200.0 * t))
    assert np.abs(audio[0] - expected).max() < 2e-3  # the folded sine, sample for sample
    assert peak_frequency(audio[0], SR) == pytest.approx(200.0, abs=0.5)  # fold keeps the fundamental
    # the contract suite runs on it like on any plugin's node
    report = check_node(fold)
    assert "0 failure(s)" in str(report)


def test_running_the_cell_again_replaces_the_class_but_a_plugin_name_is_refused():
    first = ng.register(make_fold("first"))
    second = ng.register(make_fold("second"))
    assert ng.default_registry().node_class("session.fold_test") is second is not first
    with pytest.raises(ng.PluginError, match="'osc.saw' is registered by two plugins: 'oscillators'"):

        @ng.register(name="osc.saw")
        class Clash(make_fold()):
            pass


def test_from_string_errors_point_into_the_text():
    with pytest.raises(ng.PatchError) as info:
        ng.Patch.from_string(FOLDED.replace("session.fold_test", "session.fold_tset") + "[nodes.x\n")
    text = str(info.value)
    assert re.search(r"<string>:\d+:\d+: NG100 invalid TOML", text), text
    with pytest.raises(
        ng.PatchError, match=r"<string>:6:8: NG110 nodes.fold.type: unknown node type `session.fold_tset`"
    ):
        ng.register(make_fold())
        ng.Patch.from_string(FOLDED.replace("session.fold_test", "session.fold_tset"))


def test_from_dict_and_render_with_settings_and_notes():
    patch = ng.Patch.from_dict(saw_voices(2, 1.0))
    audio = ng.render(patch, 0.5, notes=[(69, 100)], set={"lvl.gain": 0.25})
    assert peak_frequency(audio[0], SR) == pytest.approx(440.0, abs=1.0)
    rms = float(np.sqrt(np.mean(audio[0, SR // 4 :].astype(np.float64) ** 2)))
    assert rms == pytest.approx(0.25 / 3**0.5, rel=0.05)  # a saw at a quarter of full scale
    with pytest.raises(TypeError, match="takes a mapping"):
        ng.Patch.from_dict("schema = 1")


def test_jupyter_shows_audio_as_a_player_and_a_patch_as_its_drawing():
    ng.register(make_fold())
    audio = ng.render(FOLDED, 0.25)
    html = audio._repr_html_()
    assert html.startswith('<div><audio controls src="data:audio/wav;base64,')
    wav = base64.b64decode(re.search(r"base64,([^\"]+)", html).group(1))
    data, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    assert rate == SR and data.shape == (SR // 4,)
    assert np.abs(data - audio[0]).max() < 1.0 / 32767 + 1e-6  # 16-bit for every browser
    assert "0.25 s, 1 ch, 48000 Hz" in html
    svg = ng.Patch.from_string(FOLDED)._repr_svg_()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for name in ("osc", "fold", "out", "session.fold_test"):
        assert name in svg
