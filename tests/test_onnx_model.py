"""onnx.model: real ONNX models built here with onnx.helper, run through onnxruntime and the engine."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper
from scipy.signal import lfilter

import neuralgraph as ng
from neuralgraph.plugin import Ports, PrepareContext, Rate
from neuralgraph.testing import assert_no_allocations
from neuralgraph_plugins.onnx_model import OnnxModel

SR = 48000
F32 = TensorProto.FLOAT


def save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def const(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(array, np.float32), name))


def gain_model(path: Path, batch: str | int = "N") -> Path:
    """Block rate: y = x * [2, -3] on a [batch, 2] tensor."""
    nodes = [const("g", np.array([2.0, -3.0])), helper.make_node("Mul", ["x", "g"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "gain",
        [helper.make_tensor_value_info("x", F32, [batch, 2])],
        [helper.make_tensor_value_info("y", F32, [batch, 2])],
    )
    return save(graph, path)


def tanh_model(path: Path) -> Path:
    """Stream: out = tanh(drive * in) per sample, two audio inputs."""
    nodes = [helper.make_node("Mul", ["in", "drive"], ["m"]), helper.make_node("Tanh", ["m"], ["out"])]
    graph = helper.make_graph(
        nodes,
        "tanh",
        [helper.make_tensor_value_info("in", F32, ["N", "T"]), helper.make_tensor_value_info("drive", F32, ["N", "T"])],
        [helper.make_tensor_value_info("out", F32, ["N", "T"])],
    )
    return save(graph, path)


FIR = np.array([0.5, -0.25, 0.125, 0.0625], np.float32)


def fir_model(path: Path) -> Path:
    """Stream with state: a 4-tap FIR whose last 3 input samples are carried in state_in/state_out."""
    taps = len(FIR)
    nodes = [
        helper.make_node("Concat", ["state_in", "x"], ["cat"], axis=1),  # [N, 3 + T]
        helper.make_node("Unsqueeze", ["cat", "ax1"], ["cat3"]),  # [N, 1, 3 + T]
        const("w", FIR[::-1].reshape(1, 1, taps)),  # Conv is a correlation: flip the taps
        helper.make_node("Conv", ["cat3", "w"], ["y3"]),  # [N, 1, T]
        helper.make_node("Squeeze", ["y3", "ax1"], ["y"]),
        helper.make_node("Slice", ["cat", "start", "end", "ax1"], ["state_out"]),  # last 3 samples
        helper.make_node("Constant", [], ["ax1"], value=helper.make_tensor("ax1v", TensorProto.INT64, [1], [1])),
        helper.make_node(
            "Constant", [], ["start"], value=helper.make_tensor("sv", TensorProto.INT64, [1], [-(taps - 1)])
        ),
        helper.make_node("Constant", [], ["end"], value=helper.make_tensor("ev", TensorProto.INT64, [1], [2**62])),
    ]
    nodes = nodes[-3:] + nodes[:-3]
    graph = helper.make_graph(
        nodes,
        "fir",
        [
            helper.make_tensor_value_info("x", F32, ["N", "T"]),
            helper.make_tensor_value_info("state_in", F32, ["N", taps - 1]),
        ],
        [
            helper.make_tensor_value_info("y", F32, ["N", "T"]),
            helper.make_tensor_value_info("state_out", F32, ["N", taps - 1]),
        ],
    )
    return save(graph, path)


H = 4
RNG = np.random.default_rng(7)
W_IN = RNG.normal(0, 0.8, (1, H)).astype(np.float32)
W_REC = RNG.normal(0, 0.5, (H, H)).astype(np.float32)
B_REC = RNG.normal(0, 0.1, (H,)).astype(np.float32)
V_OUT = RNG.normal(0, 0.7, (H, 1)).astype(np.float32)


def rnn_model(path: Path, batch: str | int = "N") -> Path:
    """Block rate recurrent cell: h' = tanh(x W + h U + b), y = h' v; h is state_in/state_out."""
    nodes = [
        const("wi", W_IN),
        const("wr", W_REC),
        const("b", B_REC),
        const("v", V_OUT),
        helper.make_node("MatMul", ["x", "wi"], ["a"]),
        helper.make_node("MatMul", ["state_in", "wr"], ["r"]),
        helper.make_node("Add", ["a", "r"], ["s"]),
        helper.make_node("Add", ["s", "b"], ["s2"]),
        helper.make_node("Tanh", ["s2"], ["state_out"]),
        helper.make_node("MatMul", ["state_out", "v"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "rnn",
        [
            helper.make_tensor_value_info("x", F32, [batch, 1]),
            helper.make_tensor_value_info("state_in", F32, [batch, H]),
        ],
        [
            helper.make_tensor_value_info("y", F32, [batch, 1]),
            helper.make_tensor_value_info("state_out", F32, [batch, H]),
        ],
    )
    return save(graph, path)


def rnn_reference(xs: np.ndarray) -> np.ndarray:
    h = np.zeros((xs.shape[0], H), np.float32)
    ys = np.zeros_like(xs)
    for i in range(xs.shape[1]):
        h = np.tanh(xs[:, i : i + 1] @ W_IN + h @ W_REC + B_REC)
        ys[:, i] = (h @ V_OUT)[:, 0]
    return ys


# ONNX GRU op over the block's samples (the per-sample recurrent "amp" form)
GH = 6
G_W = RNG.normal(0, 0.6, (1, 3 * GH, 1)).astype(np.float32)
G_R = RNG.normal(0, 0.4, (1, 3 * GH, GH)).astype(np.float32)
G_B = RNG.normal(0, 0.1, (1, 6 * GH)).astype(np.float32)
G_V = RNG.normal(0, 0.6, (GH, 1)).astype(np.float32)


def gru_model(path: Path) -> Path:
    """Stream GRU: x [N, T] -> GRU(hidden 6) per sample -> linear -> y [N, T]; h in state_in/out [N, 6]."""
    nodes = [
        const("W", G_W),
        const("R", G_R),
        const("B", G_B),
        const("V", G_V),
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0]),  # [T, N]
        helper.make_node("Unsqueeze", ["xt", "ax2"], ["seq"]),  # [T, N, 1]
        helper.make_node("Unsqueeze", ["state_in", "ax0"], ["h0"]),  # [1, N, H]
        helper.make_node("GRU", ["seq", "W", "R", "B", "", "h0"], ["Y", "Yh"], hidden_size=GH),
        helper.make_node("Squeeze", ["Yh", "ax0"], ["state_out"]),
        helper.make_node("Squeeze", ["Y", "ax1"], ["Ys"]),  # [T, N, H]
        helper.make_node("MatMul", ["Ys", "V"], ["yt3"]),  # [T, N, 1]
        helper.make_node("Squeeze", ["yt3", "ax2"], ["yt"]),
        helper.make_node("Transpose", ["yt"], ["y"], perm=[1, 0]),
    ]
    for name, axis in (("ax0", 0), ("ax1", 1), ("ax2", 2)):
        nodes.insert(
            0,
            helper.make_node(
                "Constant", [], [name], value=helper.make_tensor(name + "v", TensorProto.INT64, [1], [axis])
            ),
        )
    graph = helper.make_graph(
        nodes,
        "gru",
        [
            helper.make_tensor_value_info("x", F32, ["N", "T"]),
            helper.make_tensor_value_info("state_in", F32, ["N", GH]),
        ],
        [
            helper.make_tensor_value_info("y", F32, ["N", "T"]),
            helper.make_tensor_value_info("state_out", F32, ["N", GH]),
        ],
    )
    return save(graph, path)


def gru_reference(x: np.ndarray) -> np.ndarray:
    """ONNX GRU (gates z, r, h; linear_before_reset = 0) in numpy, one sample at a time."""
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))
    Wz, Wr, Wh = np.split(G_W[0], 3)
    Rz, Rr, Rh = np.split(G_R[0], 3)
    Wbz, Wbr, Wbh, Rbz, Rbr, Rbh = np.split(G_B[0], 6)
    h = np.zeros((x.shape[0], GH), np.float64)
    y = np.zeros(x.shape, np.float64)
    for t in range(x.shape[1]):
        xt = x[:, t : t + 1].astype(np.float64)
        z = sig(xt @ Wz.T + h @ Rz.T + Wbz + Rbz)
        r = sig(xt @ Wr.T + h @ Rr.T + Wbr + Rbr)
        hh = np.tanh(xt @ Wh.T + (r * h) @ Rh.T + Rbh + Wbh)
        h = (1 - z) * hh + z * h
        y[:, t] = (h @ G_V)[:, 0]
    return y


def frame_model(path: Path, frame: int = 64) -> Path:
    graph = helper.make_graph(
        [const("half", np.array(0.5)), helper.make_node("Mul", ["x", "half"], ["y"])],
        "frame",
        [helper.make_tensor_value_info("x", F32, ["N", frame])],
        [helper.make_tensor_value_info("y", F32, ["N", frame])],
    )
    return save(graph, path)


def write_patch(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "patch.toml"
    path.write_text(f'schema = 1\nname = "t"\n[engine]\nsample_rate = {SR}\nblock_size = 64\n' + body)
    return path


def run_node(node: OnnxModel, inputs: dict[str, np.ndarray], lanes: int, block: int, blocks: int) -> dict[str, list]:
    """Drive a node directly, block by block, over (lanes, blocks * width) input arrays."""
    rate_width = 1 if node.rate == "block" else block
    ctx = PrepareContext(sample_rate=SR, block_size=block, lanes=lanes, input_lanes={}, output_lanes={})
    node.prepare(ctx)
    outs_arrays = {p: np.zeros((lanes, rate_width), np.float32) for p in node.outputs()}
    outs = Ports(outs_arrays)
    got: dict[str, list] = {p: [] for p in outs_arrays}
    for b in range(blocks):
        ins = Ports({p: a[:, b * rate_width : (b + 1) * rate_width] for p, a in inputs.items()})
        node.process(ins, outs, block)
        for p, a in outs_arrays.items():
            got[p].append(a.copy())
    return {p: np.concatenate(v, axis=1) for p, v in got.items()}


# ---- ports from the signature ---------------------------------------------------------------


def test_ports_follow_the_model_signature(tmp_path):
    node = OnnxModel(model=str(gain_model(tmp_path / "g.onnx")))
    assert list(node.inputs()) == ["x_1", "x_2"]
    assert list(node.outputs()) == ["y_1", "y_2"]
    assert all(d.rate is Rate.CONTROL for d in node.inputs().values())
    rnn = OnnxModel(model=str(rnn_model(tmp_path / "r.onnx")))
    assert list(rnn.inputs()) == ["x"] and list(rnn.outputs()) == ["y"]  # state gets no port
    stream = OnnxModel(model=str(tanh_model(tmp_path / "t.onnx")), rate="stream")
    assert list(stream.inputs()) == ["in", "drive"]
    assert stream.inputs()["in"].rate is Rate.AUDIO


def test_block_gain_model_in_a_patch_scales_a_sine(tmp_path):
    gain_model(tmp_path / "gain.onnx")
    patch = write_patch(
        tmp_path,
        """
[nodes.net]
type = "onnx.model"
model = "gain.onnx"
x_1 = 0.25
x_2 = 0.1
[nodes.osc]
type = "osc.sine"
freq = 1000.0
[nodes.vca]
type = "math.mul"
in = "osc"
gain = "net.y_1"
[nodes.vca2]
type = "math.mul"
in = "osc"
gain = "net.y_2"
[nodes.out]
type = "io.output"
channels = 1
in = ["vca", "vca2"]
""",
    )
    audio = ng.Engine(ng.load_patch(patch)).render(0.05)
    tail = audio[0, 1200:]  # after the first block's gain ramp
    peak = np.abs(tail).max()
    assert peak == pytest.approx(0.25 * 2.0 - 0.1 * 3.0, rel=0.01)  # 0.2


def test_stream_tanh_model_matches_numpy(tmp_path):
    tanh_model(tmp_path / "tanh.onnx")
    patch = write_patch(
        tmp_path,
        """
[nodes.src]
type = "io.input"
channels = 1
[nodes.shaper]
type = "onnx.model"
model = "tanh.onnx"
rate = "stream"
in = "src"
drive = 3.0
[nodes.out]
type = "io.output"
channels = 1
in = "shaper"
""",
    )
    x = (0.9 * np.sin(2 * np.pi * 440.0 * np.arange(960) / SR)).astype(np.float32)[None, :]
    audio = ng.Engine(ng.load_patch(patch)).render(960 / SR, input=x)[0]
    np.testing.assert_allclose(audio, np.tanh(3.0 * x[0]), atol=2e-4)


def test_stream_state_carries_fir_history_across_blocks(tmp_path):
    node = OnnxModel(model=str(fir_model(tmp_path / "fir.onnx")), rate="stream")
    x = np.random.default_rng(1).normal(size=(2, 64 * 5)).astype(np.float32)
    y = run_node(node, {"x": x}, lanes=2, block=64, blocks=5)["y"]
    np.testing.assert_allclose(y, lfilter(FIR, [1.0], x, axis=1), atol=1e-5)
    node.reset()  # state zeroed: the first block again equals a fresh filter
    y2 = run_node(node, {"x": x[:, :64]}, lanes=2, block=64, blocks=1)["y"]
    np.testing.assert_allclose(y2, lfilter(FIR, [1.0], x[:, :64], axis=1), atol=1e-5)


def test_recurrent_block_state_matches_numpy_per_lane(tmp_path):
    xs = np.random.default_rng(3).uniform(-1, 1, (3, 40)).astype(np.float32)
    expected = rnn_reference(xs)
    for batch in ("N", 1):  # lanes as the batch, then one call per lane
        node = OnnxModel(model=str(rnn_model(tmp_path / f"rnn_{batch}.onnx", batch)))
        assert node.map.batched is (batch == "N")
        got = run_node(node, {"x": xs}, lanes=3, block=32, blocks=40)["y"]
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert len(node.bindings) == (1 if batch == "N" else 3)


def test_gru_op_stream_model_matches_numpy_gru(tmp_path):
    node = OnnxModel(model=str(gru_model(tmp_path / "gru.onnx")), rate="stream")
    x = np.random.default_rng(5).uniform(-1, 1, (2, 32 * 4)).astype(np.float32)
    got = run_node(node, {"x": x}, lanes=2, block=32, blocks=4)["y"]
    np.testing.assert_allclose(got, gru_reference(x), atol=1e-4)


def test_batch_lanes_keep_their_own_values(tmp_path):
    node = OnnxModel(model=str(gain_model(tmp_path / "g.onnx")))
    x1 = np.array([[1.0], [2.0], [3.0], [4.0]], np.float32)
    got = run_node(node, {"x_1": x1, "x_2": -x1}, lanes=4, block=16, blocks=1)
    np.testing.assert_allclose(got["y_1"], 2.0 * x1)
    np.testing.assert_allclose(got["y_2"], 3.0 * x1)


#: io.input -> onnx.model (frame.onnx, rate frame) -> io.output, one channel
FRAME_PATCH = """
[nodes.src]
type = "io.input"
channels = 1
[nodes.net]
type = "onnx.model"
model = "frame.onnx"
rate = "frame"
x = "src"
[nodes.out]
type = "io.output"
channels = 1
in = "net"
"""


def test_frame_rate_buffers_and_declares_latency(tmp_path):
    frame_model(tmp_path / "frame.onnx", frame=64)
    patch = write_patch(tmp_path, FRAME_PATCH)
    engine = ng.Engine(ng.load_patch(patch), block_size=48)  # frames straddle blocks
    assert engine.plan.latency == 64
    x = np.random.default_rng(2).uniform(-1, 1, (1, 960)).astype(np.float32)
    audio = engine.render(960 / SR, input=x)[0]
    np.testing.assert_allclose(audio[64:], 0.5 * x[0, :-64], atol=1e-6)
    assert not audio[:64].any()


def steady_state_allocations(run) -> None:
    """assert_no_allocations after 256 traced calls. Measured: under tracemalloc, onnxruntime 1.32's
    run_with_iobinding shows ~124 bytes of new traced memory per call for the first 20-90 traced
    calls (more for bigger graphs), then none at all over thousands of calls: a pool of blocks
    recycled one per run, whose pre-tracing blocks are freed untraced. Flat afterwards = no leak."""
    tracemalloc.start()
    try:
        for _ in range(256):
            run()
        assert_no_allocations(run)
    finally:
        tracemalloc.stop()


def test_process_allocates_nothing(tmp_path):
    node = OnnxModel(model=str(rnn_model(tmp_path / "rnn.onnx")))
    ctx = PrepareContext(sample_rate=SR, block_size=4096, lanes=8, input_lanes={}, output_lanes={})
    node.prepare(ctx)
    ins = Ports({"x": np.ones((8, 1), np.float32)})
    outs = Ports({"y": np.zeros((8, 1), np.float32)})
    steady_state_allocations(lambda: node.process(ins, outs, 4096))
    stream = OnnxModel(model=str(fir_model(tmp_path / "fir.onnx")), rate="stream")
    stream.prepare(ctx)
    ins = Ports({"x": np.ones((8, 4096), np.float32)})
    outs = Ports({"y": np.zeros((8, 4096), np.float32)})
    steady_state_allocations(lambda: stream.process(ins, outs, 4096))


# ---- bad models -----------------------------------------------------------------------------


def load_error(tmp_path: Path, body: str) -> ng.PatchError:
    with pytest.raises(ng.PatchError) as info:
        ng.load_patch(write_patch(tmp_path, body))
    return info.value


def test_not_onnx_file_is_a_patch_problem_with_the_path(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"RIFF....WAVEfmt this is not a model")
    err = load_error(
        tmp_path, '[nodes.net]\ntype = "onnx.model"\nmodel = "junk.onnx"\n[nodes.out]\ntype = "io.output"\nin = 0.0\n'
    )
    assert err.codes == ["NG117"]
    text = str(err)
    assert "junk.onnx" in text and "not a loadable ONNX model" in text
    assert "patch.toml:8:9 nodes.net.model" in text.replace(": NG117", "")  # the `model` key's line
    assert str(tmp_path / "junk.onnx") not in text  # the path as written in the patch, not where it resolved


def test_missing_model_file_is_reported(tmp_path):
    err = load_error(
        tmp_path, '[nodes.net]\ntype = "onnx.model"\nmodel = "nope.onnx"\n[nodes.out]\ntype = "io.output"\nin = 0.0\n'
    )
    assert err.codes == ["NG116"] and "nope.onnx" in str(err)


def test_wrong_signature_names_expected_and_actual(tmp_path):
    gru_model(tmp_path / "gru.onnx")  # [N, T] dynamic time axis: not a block-rate model
    err = load_error(
        tmp_path, '[nodes.net]\ntype = "onnx.model"\nmodel = "gru.onnx"\n[nodes.out]\ntype = "io.output"\nin = 0.0\n'
    )
    text = str(err)
    assert err.codes == ["NG117"]
    assert "gru.onnx" in text and "dynamic feature axis" in text
    assert "[batch, K] with K static" in text  # expected
    assert "x: float [?, ?]" in text and "state_out: float [?, 6]" in text  # actual


def test_wrong_type_and_unpaired_state_are_rejected(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "int",
        [helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, ["N", 1])],
    )
    node = OnnxModel(model=str(save(graph, tmp_path / "int.onnx")))  # int64 is cast at the boundary
    got = run_node(node, {"x": np.array([[2.7, -3.2, 7.0]], np.float32)}, lanes=1, block=16, blocks=3)
    np.testing.assert_array_equal(got["y"], [[2.0, -3.0, 7.0]])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "u8",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, ["N", 1])],
    )
    with pytest.raises(ValueError, match=r"tensor 'x' is tensor\(uint8\)"):
        OnnxModel(model=str(save(graph, tmp_path / "u8.onnx")))
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"]), helper.make_node("Identity", ["state_in"], ["h"])],
        "half",
        [helper.make_tensor_value_info("x", F32, ["N", 1]), helper.make_tensor_value_info("state_in", F32, ["N", 2])],
        [helper.make_tensor_value_info("y", F32, ["N", 1]), helper.make_tensor_value_info("h", F32, ["N", 2])],
    )
    with pytest.raises(ValueError, match="unpaired state tensor.*state_in"):
        OnnxModel(model=str(save(graph, tmp_path / "half.onnx")))


def test_frame_size_must_match_a_static_frame_axis(tmp_path):
    path = str(frame_model(tmp_path / "f.onnx", frame=64))
    with pytest.raises(ValueError, match=r"frame axis is 64 but frame_size = 128"):
        OnnxModel(model=path, rate="frame", frame_size=128)


def test_stream_model_with_a_fixed_time_axis_must_match_the_block_size(tmp_path):
    frame_model(tmp_path / "fixed.onnx", frame=64)  # [N, 64]: a stream model only for 64-sample blocks
    patch = write_patch(
        tmp_path,
        '[nodes.net]\ntype = "onnx.model"\nmodel = "fixed.onnx"\nrate = "stream"\n'
        '[nodes.out]\ntype = "io.output"\nchannels = 1\nin = "net"\n',
    )
    assert ng.Engine(ng.load_patch(patch), block_size=64).render(0.01).shape == (1, 480)
    with pytest.raises(ng.CompileError) as info:
        ng.Engine(ng.load_patch(patch), block_size=128)
    assert info.value.codes == ["NG117"]
    assert "static time axis of 64 samples but the block size is 128" in str(info.value)


# ---- worker thread ----------------------------------------------------------------------------


def settle(node: OnnxModel) -> None:
    """Test-side synchronisation: let the worker finish what it was handed (not an assertion on time)."""
    node._worker.wait_idle()


def test_worker_delivers_the_synchronous_result_one_block_later(tmp_path):
    xs = np.random.default_rng(3).uniform(-1, 1, (2, 30)).astype(np.float32)
    expected = rnn_reference(xs)
    node = OnnxModel(model=str(rnn_model(tmp_path / "rnn.onnx")), worker=True)
    node.prepare(PrepareContext(sample_rate=SR, block_size=64, lanes=2, input_lanes={}, output_lanes={}))
    assert node.latency == 64
    out = np.zeros((2, 1), np.float32)
    got = []
    for b in range(30):
        node.process(Ports({"x": xs[:, b : b + 1]}), Ports({"y": out}), 64)
        got.append(out.copy())
        settle(node)
    got = np.concatenate(got, axis=1)
    assert not got[:, 0].any()  # nothing computed before the first block
    np.testing.assert_allclose(got[:, 1:], expected[:, :-1], atol=1e-5)  # state carried by the worker
    assert node.late_blocks == 0 and node.dropped_blocks == 0
    node.reset()
    node.process(Ports({"x": xs[:, :1]}), Ports({"y": out}), 64)
    settle(node)
    node.process(Ports({"x": xs[:, 1:2]}), Ports({"y": out}), 64)
    np.testing.assert_allclose(out, expected[:, :1], atol=1e-5)  # reset zeroed the state


def test_worker_stream_in_a_patch_declares_one_block_of_latency(tmp_path):
    fir_model(tmp_path / "fir.onnx")
    patch = write_patch(
        tmp_path,
        '[nodes.src]\ntype = "io.input"\nchannels = 1\n'
        '[nodes.net]\ntype = "onnx.model"\nmodel = "fir.onnx"\nrate = "stream"\n'
        'worker = true\nx = "src"\n'
        '[nodes.out]\ntype = "io.output"\nchannels = 1\nin = "net"\n',
    )
    assert ng.Engine(ng.load_patch(patch), block_size=128).plan.latency == 128


def slow_model(path: Path, size: int = 512, chain: int = 4) -> Path:
    """y = x + 0 * mean(M^chain scaled by mean(x)): tens of ms per call, input-dependent (no folding)."""
    m = (np.random.default_rng(0).normal(0, 1 / np.sqrt(size), (size, size))).astype(np.float32)
    nodes = [
        const("m", m),
        const("zero", np.array(0.0)),
        helper.make_node("ReduceMean", ["x"], ["mx"], keepdims=0),
        helper.make_node("Mul", ["m", "mx"], ["p0"]),
    ]
    for i in range(chain):
        nodes.append(helper.make_node("MatMul", [f"p{i}", "m"], [f"p{i + 1}"]))
    nodes += [
        helper.make_node("ReduceMean", [f"p{chain}"], ["s"], keepdims=0),
        helper.make_node("Mul", ["s", "zero"], ["z"]),
        helper.make_node("Add", ["x", "z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("x", F32, ["N", 1])],
        [helper.make_tensor_value_info("y", F32, ["N", 1])],
    )
    return save(graph, path)


def test_a_late_worker_result_holds_the_last_value_and_is_counted(tmp_path):
    node = OnnxModel(model=str(slow_model(tmp_path / "slow.onnx")), worker=True)
    node.prepare(PrepareContext(sample_rate=SR, block_size=64, lanes=1, input_lanes={}, output_lanes={}))
    out = np.zeros((1, 1), np.float32)
    node.process(Ports({"x": np.full((1, 1), 0.5, np.float32)}), Ports({"y": out}), 64)
    settle(node)
    node.process(Ports({"x": np.full((1, 1), 0.7, np.float32)}), Ports({"y": out}), 64)
    assert out[0, 0] == pytest.approx(0.5)  # on time: the previous block's result
    # back to back: the model takes far longer than the microseconds between these calls
    node.process(Ports({"x": np.full((1, 1), 0.9, np.float32)}), Ports({"y": out}), 64)
    assert node.late_blocks == 1
    assert out[0, 0] == pytest.approx(0.5)  # held, not garbage
    node.process(Ports({"x": np.full((1, 1), 0.2, np.float32)}), Ports({"y": out}), 64)
    assert node.late_blocks + node.dropped_blocks >= 2  # still busy: late again, and no slot free
    settle(node)
    node.process(Ports({"x": np.full((1, 1), 0.3, np.float32)}), Ports({"y": out}), 64)
    assert out[0, 0] in (pytest.approx(0.7), pytest.approx(0.9))  # a real result again
    node.reset()


def test_worker_is_refused_for_frame_rate(tmp_path):
    with pytest.raises(ValueError, match="worker = true works with rate 'block' or 'stream'"):
        OnnxModel(model=str(frame_model(tmp_path / "f.onnx")), rate="frame", worker=True)
