"""A signature zoo: seven tiny ONNX models built with onnx.helper, each with the signature of a
published architecture, the patch mapping that runs it in ``onnx.model``, and a reference that
runs the same model directly with onnxruntime over the same signal.

Used by tests/test_onnx_zoo.py, tests/test_model_inspect.py and benchmarks/onnx_overhead.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

F32, F16, I64 = TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT64
SR = 16000


def save(nodes: list, name: str, inputs: list, outputs: list, path: Path) -> Path:
    """A checked opset-17 model of ``nodes`` at ``path``."""
    graph = helper.make_graph(nodes, name, inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def const(name: str, array: np.ndarray, dtype: type = np.float32) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(array, dtype), name))


def vi(name: str, kind: int, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, kind, shape)


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---- the models -------------------------------------------------------------------------------


def vad(path: Path) -> Path:
    """Silero-VAD style: input [batch, 64 + 512], state [2, batch, 128], sr int64 scalar ->
    output [batch, 1] (a probability per window), stateN [2, batch, 128]."""
    w = _rng(1).normal(0, 0.05, (576, 128))
    nodes = [
        const("W", w),
        const("zero", 0, np.int64),
        const("half", 0.5),
        const("k", 1e-5),
        const("ax0", [0], np.int64),
        helper.make_node("Gather", ["state", "zero"], ["h_prev"], axis=0),  # [B, 128]
        helper.make_node("MatMul", ["input", "W"], ["a"]),
        helper.make_node("Mul", ["h_prev", "half"], ["hp"]),
        helper.make_node("Add", ["a", "hp"], ["s"]),
        helper.make_node("Tanh", ["s"], ["h"]),
        helper.make_node("Unsqueeze", ["h", "ax0"], ["h1"]),
        helper.make_node("Unsqueeze", ["h_prev", "ax0"], ["hp1"]),
        helper.make_node("Concat", ["h1", "hp1"], ["stateN"], axis=0),
        helper.make_node("ReduceMean", ["h"], ["m"], axes=[1], keepdims=1),
        helper.make_node("Cast", ["sr"], ["srf"], to=F32),
        helper.make_node("Mul", ["srf", "k"], ["srs"]),
        helper.make_node("Add", ["m", "srs"], ["m2"]),
        helper.make_node("Sigmoid", ["m2"], ["output"]),
    ]
    return save(
        nodes,
        "vad",
        [vi("input", F32, ["batch", 576]), vi("state", F32, [2, "batch", 128]), vi("sr", I64, [])],
        [vi("output", F32, ["batch", 1]), vi("stateN", F32, [2, "batch", 128])],
        path,
    )


def crepe(path: Path) -> Path:
    """CREPE style: a 1024-sample window -> 360 pitch-bin activations."""
    nodes = [
        const("W", _rng(2).normal(0, 0.05, (1024, 360))),
        helper.make_node("MatMul", ["frames", "W"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["probabilities"]),
    ]
    return save(nodes, "crepe", [vi("frames", F32, ["batch", 1024])], [vi("probabilities", F32, ["batch", 360])], path)


RAVE_RATIO = 2048
RAVE_WAVE = np.sin(np.linspace(0, 6 * np.pi, RAVE_RATIO)).astype(np.float32)


def rave(path: Path) -> Path:
    """RAVE streaming style: audio [1, 1, T] -> [1, 1, T], T a multiple of the 2048 ratio; one latent
    (the mean of each 2048 chunk) decoded onto a fixed wave, plus half the input."""
    nodes = [
        const("chunk_shape", [1, -1, RAVE_RATIO], np.int64),
        const("flat", [1, 1, -1], np.int64),
        const("wave", RAVE_WAVE),
        const("eight", 8.0),
        const("half", 0.5),
        helper.make_node("Reshape", ["audio", "chunk_shape"], ["chunks"]),
        helper.make_node("ReduceMean", ["chunks"], ["z"], axes=[2], keepdims=1),
        helper.make_node("Mul", ["z", "eight"], ["z8"]),
        helper.make_node("Tanh", ["z8"], ["zt"]),
        helper.make_node("Mul", ["zt", "wave"], ["dec"]),
        helper.make_node("Mul", ["chunks", "half"], ["dry"]),
        helper.make_node("Add", ["dec", "dry"], ["mix"]),
        helper.make_node("Reshape", ["mix", "flat"], ["out"]),
    ]
    return save(nodes, "rave", [vi("audio", F32, [1, 1, "T"])], [vi("out", F32, [1, 1, "T"])], path)


LSTM_H, LSTM_LAYERS = 8, 2


def lstm(path: Path) -> Path:
    """A PyTorch nn.LSTM(1, 8, num_layers=2) export: input [batch, T], h0/c0 [layers, batch, hidden]
    -> output [batch, T] (a linear head), hn, cn."""
    rng, h = _rng(4), LSTM_H
    nodes = [
        const("ax0", [0], np.int64),
        const("ax1", [1], np.int64),
        const("ax2", [2], np.int64),
        const("s0", [0], np.int64),
        const("s1", [1], np.int64),
        const("s2", [2], np.int64),
        const("V", rng.normal(0, 0.5, (h, 1))),
        helper.make_node("Transpose", ["input"], ["xt"], perm=[1, 0]),
        helper.make_node("Unsqueeze", ["xt", "ax2"], ["seq"]),
    ]  # [T, B, 1]
    layer_in, hs, cs = "seq", [], []
    for layer in range(LSTM_LAYERS):
        n_in = 1 if layer == 0 else h
        nodes += [
            const(f"W{layer}", rng.normal(0, 0.5, (1, 4 * h, n_in))),
            const(f"R{layer}", rng.normal(0, 0.3, (1, 4 * h, h))),
            const(f"B{layer}", rng.normal(0, 0.1, (1, 8 * h))),
            helper.make_node("Slice", ["h0", f"s{layer}", f"s{layer + 1}", "ax0"], [f"h0_{layer}"]),
            helper.make_node("Slice", ["c0", f"s{layer}", f"s{layer + 1}", "ax0"], [f"c0_{layer}"]),
            helper.make_node(
                "LSTM",
                [layer_in, f"W{layer}", f"R{layer}", f"B{layer}", "", f"h0_{layer}", f"c0_{layer}"],
                [f"Y{layer}", f"hn{layer}", f"cn{layer}"],
                hidden_size=h,
            ),
            helper.make_node("Squeeze", [f"Y{layer}", "ax1"], [f"Ys{layer}"]),
        ]  # [T, B, H]
        layer_in = f"Ys{layer}"
        hs.append(f"hn{layer}")
        cs.append(f"cn{layer}")
    nodes += [
        helper.make_node("Concat", hs, ["hn"], axis=0),
        helper.make_node("Concat", cs, ["cn"], axis=0),
        helper.make_node("MatMul", [layer_in, "V"], ["y3"]),
        helper.make_node("Squeeze", ["y3", "ax2"], ["yt"]),
        helper.make_node("Transpose", ["yt"], ["output"], perm=[1, 0]),
    ]
    state = [LSTM_LAYERS, "batch", h]
    return save(
        nodes,
        "lstm",
        [vi("input", F32, ["batch", "T"]), vi("h0", F32, state), vi("c0", F32, state)],
        [vi("output", F32, ["batch", "T"]), vi("hn", F32, state), vi("cn", F32, state)],
        path,
    )


def half(path: Path) -> Path:
    """A float16 export: x float16 [batch, T], gain float16 [batch, 1] -> y = tanh(gain * x) float16."""
    nodes = [
        helper.make_node("Cast", ["x"], ["xf"], to=F32),
        helper.make_node("Cast", ["gain"], ["gf"], to=F32),
        helper.make_node("Mul", ["xf", "gf"], ["m"]),
        helper.make_node("Tanh", ["m"], ["t"]),
        helper.make_node("Cast", ["t"], ["y"], to=F16),
    ]
    return save(
        nodes,
        "half",
        [vi("x", F16, ["batch", "T"]), vi("gain", F16, ["batch", 1])],
        [vi("y", F16, ["batch", "T"])],
        path,
    )


NAM_TAPS = 16
NAM_W = _rng(6).normal(0, 0.4, (1, 1, NAM_TAPS)).astype(np.float32)


def nam(path: Path) -> Path:
    """NAM style: a 1-D [T] signal with no batch axis -> tanh(causal conv, 16 taps) [T - 15]:
    the model needs 15 samples of look-behind (context) for each output sample."""
    nodes = [
        const("ax01", [0, 1], np.int64),
        const("w", NAM_W),
        helper.make_node("Unsqueeze", ["x", "ax01"], ["x3"]),
        helper.make_node("Conv", ["x3", "w"], ["c"]),
        helper.make_node("Tanh", ["c"], ["t"]),
        helper.make_node("Squeeze", ["t", "ax01"], ["y"]),
    ]
    return save(nodes, "nam", [vi("x", F32, ["T"])], [vi("y", F32, ["T_out"])], path)


MULTI_W = np.array([10.0, -20.0, 5.0, 30.0], np.float32)


def multirate(path: Path) -> Path:
    """basic-pitch style: audio [batch, 2048, 1] -> notes [batch, 8, 4] (8 frames of 4 features per
    window) and contour [batch, 32, 1] (32 frames): two output frame rates from one call."""
    nodes = [
        const("s8", [0, 8, 256], np.int64),
        const("s32", [0, 32, 64], np.int64),
        const("w", MULTI_W),
        helper.make_node("Reshape", ["audio", "s8"], ["a8"]),
        helper.make_node("ReduceMean", ["a8"], ["m8"], axes=[2], keepdims=1),
        helper.make_node("Mul", ["m8", "w"], ["notes"]),
        helper.make_node("Reshape", ["audio", "s32"], ["a32"]),
        helper.make_node("ReduceMax", ["a32"], ["contour"], axes=[2], keepdims=1),
    ]
    return save(
        nodes,
        "multirate",
        [vi("audio", F32, ["batch", 2048, 1])],
        [vi("notes", F32, ["batch", 8, 4]), vi("contour", F32, ["batch", 32, 1])],
        path,
    )


# ---- references: the same model, run directly ---------------------------------------------------


def hold(frames: np.ndarray, hop: int) -> np.ndarray:
    """(calls, F) frames -> samples, each frame held over hop / F samples."""
    return np.repeat(frames, hop // frames.shape[1], axis=1).reshape(-1)


def linear(frames: np.ndarray, hop: int) -> np.ndarray:
    """(calls, F) frames -> samples: frame f lands at the end of its span, ramped from the frame before."""
    flat = np.concatenate([[0.0], frames.reshape(-1)])
    span = hop // frames.shape[1]
    u = np.arange(1, frames.size * span + 1) / span
    return np.interp(u, np.arange(flat.size), flat)


def delayed(signal: np.ndarray, latency: int, n: int) -> np.ndarray:
    """The stream a node with ``latency`` samples plays: zeros, then the signal."""
    return np.concatenate([np.zeros(latency), signal])[:n]


def windows(x: np.ndarray, hop: int, context: int) -> np.ndarray:
    """(calls, context + hop) windows of one lane: each hop after the context before it (zeros first)."""
    padded = np.concatenate([np.zeros(context, x.dtype), x])
    calls = len(x) // hop
    return np.stack([padded[k * hop : k * hop + context + hop] for k in range(calls)])


def ref_vad(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    s, n = _session(path), x.shape[1]
    out = []
    for lane in x:
        state = np.zeros((2, 1, 128), np.float32)
        probs = []
        for win in windows(lane, 512, 64):
            p, state = s.run(None, {"input": win[None], "state": state, "sr": np.array(SR, np.int64)})
            probs.append(p[0, 0])
        out.append(delayed(hold(np.array(probs)[:, None], 512), 512, n))
    return {"output": np.array(out)}


def ref_crepe(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    s, n = _session(path), x.shape[1]
    acts = np.stack([s.run(None, {"frames": windows(lane, 160, 864)})[0] for lane in x])  # (lanes, calls, 360)
    return {
        f"probabilities_{b}": np.stack([delayed(hold(a[:, b - 1 : b], 160), 160, n) for a in acts])
        for b in (1, 180, 360)
    }


def ref_rave(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    s, n = _session(path), x.shape[1]
    whole = n // RAVE_RATIO * RAVE_RATIO
    ys = [s.run(None, {"audio": lane[None, None, :whole]})[0].reshape(-1) for lane in x]
    return {"out": np.stack([delayed(y, RAVE_RATIO, n) for y in ys])}


def ref_lstm(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    zeros = np.zeros((LSTM_LAYERS, x.shape[0], LSTM_H), np.float32)
    return {"output": _session(path).run(None, {"input": x, "h0": zeros, "c0": zeros})[0]}


def ref_half(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    gain = np.full((x.shape[0], 1), 3.0, np.float16)
    return {"y": _session(path).run(None, {"x": x.astype(np.float16), "gain": gain})[0].astype(np.float32)}


def ref_nam(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    s = _session(path)
    pad = np.zeros(NAM_TAPS - 1, np.float32)
    return {"y": np.stack([s.run(None, {"x": np.concatenate([pad, lane])})[0] for lane in x])}


def ref_multirate(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    s, n = _session(path), x.shape[1]
    notes, contour = [], []
    for lane in x:
        got_n, got_c = s.run(None, {"audio": windows(lane, 2048, 0)[:, :, None]})  # (calls, 8, 4), (calls, 32, 1)
        notes.append(delayed(hold(got_n[:, :, 2], 2048), 2048, n))
        contour.append(delayed(linear(got_c[:, :, 0], 2048), 2048, n))
    return {"notes_3": np.array(notes), "contour": np.array(contour)}


@attrs.frozen
class ZooModel:
    """One zoo entry: how to build it, the node table that maps it, and its reference loop."""

    name: str
    build: Callable[[Path], Path]
    node: str  # the [nodes.net] body after type and model
    reference: Callable[[Path, np.ndarray], dict[str, np.ndarray]]
    samples: int
    lanes: int
    #: what `neuralgraph model inspect` must guess: tensor -> role (and "batch_axis" for states)
    guesses: dict[str, str]
    atol: float = 1e-6

    @property
    def audio_in(self) -> str:
        """The model's audio input (the port io.input feeds)."""
        return next(t for t, role in self.guesses.items() if role == "audio")

    def inputs_line(self) -> str:
        return f'{self.audio_in} = "src"\n'


ZOO = (
    ZooModel(
        "vad",
        vad,
        """rate = "frame"
frame_size = 512
context = 64
[nodes.net.tensors.input]
role = "audio"
batch_axis = 0
time_axis = 1
[nodes.net.tensors.state]
role = "state"
output = "stateN"
batch_axis = 1
init = 0.0
[nodes.net.tensors.sr]
role = "constant"
value = 16000
[nodes.net.tensors.output]
role = "control"
""",
        ref_vad,
        2048,
        2,
        {"input": "audio", "state": "state", "sr": "constant", "output": "control", "stateN": "state"},
    ),
    ZooModel(
        "crepe",
        crepe,
        """rate = "frame"
frame_size = 160
context = 864
[nodes.net.tensors.probabilities]
role = "control"
select = [1, 180, 360]
""",
        ref_crepe,
        1600,
        3,
        {"frames": "audio", "probabilities": "control"},
    ),
    ZooModel(
        "rave",
        rave,
        """rate = "frame"
frame_size = 2048
[nodes.net.tensors.audio]
batch_axis = 0
time_axis = 2
[nodes.net.tensors.out]
batch_axis = 0
time_axis = 2
""",
        ref_rave,
        3 * 2048 + 100,
        2,
        {"audio": "audio", "out": "audio"},
    ),
    ZooModel(
        "lstm",
        lstm,
        """rate = "stream"
[nodes.net.tensors.h0]
role = "state"
output = "hn"
batch_axis = 1
[nodes.net.tensors.c0]
role = "state"
output = "cn"
batch_axis = 1
""",
        ref_lstm,
        1500,
        3,
        {"input": "audio", "h0": "state", "c0": "state", "output": "audio", "hn": "state", "cn": "state"},
        atol=2e-6,
    ),
    ZooModel(
        "half",
        half,
        """rate = "stream"
gain = 3.0
[nodes.net.tensors.gain]
role = "control"
""",
        ref_half,
        1200,
        2,
        {"x": "audio", "gain": "control", "y": "audio"},
    ),
    ZooModel(
        "nam",
        nam,
        """rate = "stream"
context = 15
""",
        ref_nam,
        1300,
        2,
        {"x": "audio", "y": "audio"},
    ),
    ZooModel(
        "multirate",
        multirate,
        """rate = "frame"
[nodes.net.tensors.notes]
time_axis = 1
[nodes.net.tensors.contour]
interpolate = "linear"
""",
        ref_multirate,
        3 * 2048 + 50,
        2,
        {"audio": "audio", "notes": "audio", "contour": "audio"},
    ),
)
