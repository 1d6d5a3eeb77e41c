"""The neural drive (graphs/models/amp_gru.onnx): streaming GRU state, its distortion, and sox's real effect."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import neuralgraph as ng
from neuralgraph.plugin import Ports, PrepareContext
from neuralgraph_plugins.onnx_model import OnnxModel

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "graphs" / "models" / "amp_gru.onnx"
SR = 48000
SOX_CHAIN = ["overdrive", "14", "30", "lowpass", "3500"]  # what examples/train/train_amp.py learned


def saw(freq: float, level: float, frames: int) -> np.ndarray:
    phase = (freq * np.arange(frames) / SR) % 1.0
    return (level * (2.0 * phase - 1.0)).astype(np.float32)


def run_amp(x: np.ndarray, block: int) -> np.ndarray:
    """Stream ``x`` (1-D) through the model, block by block, as the engine does."""
    node = OnnxModel(model=str(MODEL), rate="stream")
    node.prepare(PrepareContext(sample_rate=SR, block_size=block, lanes=1, input_lanes={}, output_lanes={}))
    out = np.zeros((1, block), np.float32)
    y = np.zeros_like(x)
    for b in range(x.size // block):
        node.process(Ports({"x": x[None, b * block : (b + 1) * block]}), Ports({"y": out}), block)
        y[b * block : (b + 1) * block] = out[0]
    return y


def test_model_is_small_and_streams_with_state():
    assert MODEL.stat().st_size < 2_000_000
    node = OnnxModel(model=str(MODEL), rate="stream")
    assert list(node.inputs()) == ["x"] and list(node.outputs()) == ["y"]
    assert [(tm.name, tm.partner) for tm in node.map.inputs if tm.role == "state"] == [("state_in", "state_out")]


def test_output_does_not_depend_on_the_block_size():
    # the GRU state is carried across calls: 64-sample and 512-sample blocks give the same audio
    x = saw(110.0, 0.5, 4096)
    np.testing.assert_allclose(run_amp(x, 64), run_amp(x, 512), atol=2e-5)


def test_it_distorts_a_sine_into_harmonics():
    x = (0.6 * np.sin(2 * np.pi * 250.0 * np.arange(24000) / SR)).astype(np.float32)
    y = run_amp(x, 128)[4800:]
    mag = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    freqs = np.fft.rfftfreq(y.size, 1.0 / SR)
    level = lambda f: mag[np.abs(freqs - f) < 10].max()
    harmonics = np.sqrt(sum(level(250.0 * k) ** 2 for k in range(2, 8)))
    assert harmonics / level(250.0) > 0.1  # more than 10 % THD: it is a drive, not a gain


@pytest.mark.skipif(shutil.which("sox") is None, reason="needs the sox command line (apt-get install sox)")
@pytest.mark.parametrize("freq, level", [(110.0, 0.5), (440.0, 0.8)])
def test_model_matches_the_real_sox_effect(tmp_path, freq, level):
    x = saw(freq, level, SR // 4)
    sf.write(str(tmp_path / "dry.wav"), x, SR, subtype="FLOAT")
    subprocess.run(["sox", "-V1", "-D", str(tmp_path / "dry.wav"), str(tmp_path / "wet.wav"), *SOX_CHAIN], check=True)
    wet, _ = sf.read(str(tmp_path / "wet.wav"), dtype="float32")
    y = run_amp(x, 128)
    tail = slice(2400, x.size)  # past the first 50 ms
    esr = np.sum((y[tail] - wet[tail]) ** 2) / np.sum(wet[tail] ** 2)
    dry_esr = np.sum((x[tail] - wet[tail]) ** 2) / np.sum(wet[tail] ** 2)
    # measured: model ESR 0.3-0.4 %, the dry signal 28-31 %
    assert esr < 0.03
    assert esr < 0.1 * dry_esr


def test_neural_drive_patch_renders():
    engine = ng.Engine(ng.load_patch(ROOT / "graphs" / "neural_drive.toml"))
    audio = engine.render(0.5)
    assert engine.plan.latency == 0
    assert 0.05 < np.sqrt(np.mean(audio**2)) and np.abs(audio).max() < 1.0
