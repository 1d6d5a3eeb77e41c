"""The neural drive streams exactly: its output does not depend on how the signal is cut into calls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import neuralgraph as ng
from neuralgraph.plugin import Ports, PrepareContext
from neuralgraph_plugins.onnx_model import OnnxModel

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "graphs" / "models" / "amp_gru.onnx"
SR = 48000
N = 2800


def signal() -> np.ndarray:
    """A level-swept saw with a sine on top: the drive's state (memory) matters all along."""
    t = np.arange(N) / SR
    saw = 2.0 * ((110.0 * t) % 1.0) - 1.0
    return ((0.2 + 0.6 * t / t[-1]) * saw + 0.2 * np.sin(2 * np.pi * 1234.0 * t)).astype(np.float32)


def through_node(x: np.ndarray, block: int) -> np.ndarray:
    """``x`` through one onnx.model node at ``block`` samples per call (tail zero-padded)."""
    node = OnnxModel(model=str(MODEL), rate="stream")
    node.prepare(PrepareContext(sample_rate=SR, block_size=block, lanes=1, input_lanes={}, output_lanes={}))
    blocks = -(-x.size // block)
    padded = np.zeros(blocks * block, np.float32)
    padded[: x.size] = x
    out = np.zeros((1, block), np.float32)
    y = np.zeros_like(padded)
    for b in range(blocks):
        node.process(Ports({"x": padded[None, b * block : (b + 1) * block]}), Ports({"y": out}), block)
        y[b * block : (b + 1) * block] = out[0]
    return y[: x.size]


@pytest.fixture(scope="module")
def whole() -> np.ndarray:
    """The whole signal in one call of a node whose block is the signal's length."""
    return through_node(signal(), N)


@pytest.mark.parametrize("block", [1, 7, 100, 127, 333, 700])
def test_node_output_at_any_block_size_equals_the_whole_signal_output(whole, block):
    np.testing.assert_allclose(through_node(signal(), block), whole, atol=2e-5)


def test_a_random_partition_carrying_the_state_equals_the_whole_signal_output(whole):
    # the engine's blocks are all one size; here the model itself is driven with random cuts
    # (1..700 samples), state_out fed back as state_in, as onnx.model does between calls
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    hidden = session.get_inputs()[1].shape[1]
    rng = np.random.default_rng(4)
    x, pos, state, parts = signal(), 0, np.zeros((1, hidden), np.float32), []
    sizes = []
    while pos < N:
        n = int(min(rng.integers(1, 701), N - pos))
        y, state = session.run(None, {"x": x[None, pos : pos + n], "state_in": state})
        parts.append(y[0])
        sizes.append(n)
        pos += n
    assert len(set(sizes)) > 3 and 1 <= min(sizes) and max(sizes) <= 700
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=2e-5)


def test_without_the_state_the_partition_would_show(whole):
    # the check above can fail: resetting the state at every cut changes the output audibly
    y = np.concatenate([through_node(part, part.size) for part in np.split(signal(), [700, 1400, 2100])])
    assert np.max(np.abs(y - whole)) > 1e-3


@pytest.mark.parametrize("block", [64, 256])
def test_engine_renders_the_drive_patch_identically_at_any_block_size(block):
    # the shipped patch (LFO-swept saw into the model) through the engine, vs block 128
    reference = ng.Engine(ng.load_patch(ROOT / "graphs" / "neural_drive.toml"), block_size=128).render(0.1)
    audio = ng.Engine(ng.load_patch(ROOT / "graphs" / "neural_drive.toml"), block_size=block).render(0.1)
    n = min(reference.shape[1], audio.shape[1])
    np.testing.assert_allclose(audio[:, :n], reference[:, :n], atol=1e-4)
