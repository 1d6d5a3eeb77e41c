"""``neuralgraph render`` removes the patch's declared latency by default, so the file lines up with
``--input`` sample for sample; ``--no-latency-compensation`` keeps the raw stream."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
from test_onnx_model import FRAME_PATCH, SR, frame_model, write_patch

from neuralgraph._io.audiofile import read_audio, write_audio
from neuralgraph._tools.cli import main


def test_render_aligns_a_frame_model_with_its_input(tmp_path, capsys):
    frame_model(tmp_path / "frame.onnx", frame=64)  # y = 0.5 x in frames of 64: 64 samples of latency
    patch = write_patch(tmp_path, FRAME_PATCH)
    x = np.random.default_rng(5).uniform(-0.9, 0.9, (1, 1000)).astype(np.float32)
    write_audio(tmp_path / "in.wav", x, SR, "float")
    common = [str(patch), "--input", str(tmp_path / "in.wav"), "--tail", "0", "--block-size", "48"]
    assert main(["render", *common, "-o", str(tmp_path / "aligned.wav")]) == 0
    assert "removed the patch's declared latency of 64 samples (1.33 ms)" in capsys.readouterr().out
    aligned, _ = read_audio(tmp_path / "aligned.wav")
    np.testing.assert_allclose(aligned, 0.5 * x, atol=1e-7)  # every sample, the last 64 included
    assert main(["render", *common, "--no-latency-compensation", "-o", str(tmp_path / "raw.wav")]) == 0
    assert "latency compensation" not in capsys.readouterr().out
    raw, _ = read_audio(tmp_path / "raw.wav")
    assert raw.shape == x.shape and not raw[:, :64].any()
    np.testing.assert_allclose(raw[:, 64:], 0.5 * x[:, :-64], atol=1e-7)


def test_render_aligned_lines_the_output_up_with_its_input_in_memory(tmp_path):
    import neuralgraph as ng

    frame_model(tmp_path / "frame.onnx", frame=64)
    engine = ng.Engine(ng.load_patch(write_patch(tmp_path, FRAME_PATCH)), block_size=48)
    x = np.random.default_rng(6).uniform(-0.9, 0.9, (1, 960)).astype(np.float32)
    audio, removed = ng.render_aligned(engine, 960 / SR, input=x)
    assert removed == 64 and audio.shape == (1, 960)
    np.testing.assert_allclose(audio, 0.5 * x, atol=1e-7)  # every sample: no leading silence, no short tail
