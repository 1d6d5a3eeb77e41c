"""``neuralgraph model inspect``: the zoo's signatures are read and their roles guessed right, and
the ``--patch`` it writes renders through ``neuralgraph render``."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
from onnx_zoo import ZOO

from neuralgraph._io.audiofile import read_audio, write_audio
from neuralgraph._tools.cli import main
from neuralgraph_plugins.onnx_inspect import inspect_model


@pytest.mark.parametrize("entry", ZOO, ids=[e.name for e in ZOO])
def test_inspect_guesses_the_zoo_roles_and_its_patch_renders(tmp_path, capsys, entry):
    model = entry.build(tmp_path / f"{entry.name}.onnx")
    report = inspect_model(model)
    assert {g.tensor.name: g.role for g in report.guesses} == entry.guesses
    patch = tmp_path / f"{entry.name}.toml"
    assert main(["model", "inspect", str(model), "--patch", str(patch)]) == 0
    printed = capsys.readouterr().out
    for g in report.guesses:  # every tensor is listed with its dtype, shape and guess
        assert f"{g.tensor.name}" in printed and f"guess: {g.role}" in printed
    assert "opset ai.onnx 17" in printed and "KB" in printed
    text = patch.read_text()
    assert text.count("# guess:") >= len(report.guesses) + 1  # a comment on each tensor and the rate
    rate = report.sample_rate
    t = np.arange(int(0.3 * rate)) / rate
    write_audio(tmp_path / "in.wav", (0.5 * np.sin(2 * np.pi * 220 * t))[None].astype(np.float32), rate, "float")
    wav = tmp_path / "out.wav"
    assert main(["render", str(patch), "--input", str(tmp_path / "in.wav"), "--tail", "0", "-o", str(wav)]) == 0
    audio, got_rate = read_audio(wav)
    assert got_rate == rate and audio.shape == (1, t.size) and np.isfinite(audio).all()


def test_inspect_reads_state_axes_ratios_and_context(tmp_path):
    by_name = {e.name: inspect_model(e.build(tmp_path / f"{e.name}.onnx")) for e in ZOO}
    vad, lstm = by_name["vad"], by_name["lstm"]
    assert (vad.guess("state").partner, vad.guess("state").batch_axis) == ("stateN", 1)
    assert vad.guess("sr").value == 16000 and vad.sample_rate == 16000
    assert [(lstm.guess(n).partner, lstm.guess(n).batch_axis) for n in ("h0", "c0")] == [("hn", 1), ("cn", 1)]
    rave = by_name["rave"]
    assert (rave.rate, rave.frame_size, rave.guess("audio").time_axis) == ("frame", 2048, 2)
    assert (by_name["nam"].rate, by_name["nam"].context, by_name["nam"].guess("x").batch_axis) == ("stream", 15, None)
    notes = by_name["multirate"].guess("notes")
    assert (notes.time_axis, notes.feature_axis) == (1, 2)
    assert by_name["crepe"].guess("probabilities").feature_axis == 1


def test_inspect_of_a_file_that_is_not_a_model(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert main(["model", "inspect", str(bad)]) == 1
    assert "is not a loadable ONNX model" in capsys.readouterr().err
