"""The signature zoo through ``onnx.model``: seven published model signatures, mapped in the patch
and unmodified, rendered through the engine with several lanes at odd block sizes, equal sample for
sample to the same model run directly by onnxruntime over the same signal."""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import pytest

pytest.importorskip("onnx")
from helpers import patch_toml
from onnx import TensorProto, helper
from onnx_zoo import SR, ZOO, ZooModel, const, save, vi

import neuralgraph as ng

BLOCKS = (1, 37, 64, 512)


def node_patch(tmp_path: Path, name: str, lanes: int, block: int, node: str, out: str) -> Path:
    """io.input (``lanes`` channels) -> [nodes.net] (``node``: its keys and tables) -> io.output."""
    path = tmp_path / f"{name}.toml"
    nodes = f"""[nodes.src]
type = "io.input"
channels = {lanes}
[nodes.out]
type = "io.output"
channels = {lanes}
in = {out}
[nodes.net]
type = "onnx.model"
{node}"""
    path.write_text(patch_toml(nodes, name=name, sample_rate=SR, block_size=block))
    return path


def zoo_patch(tmp_path: Path, entry: ZooModel, port: str, block: int) -> Path:
    entry.build(tmp_path / f"{entry.name}.onnx")
    return node_patch(
        tmp_path,
        f"{entry.name}_{port}",
        entry.lanes,
        block,
        f'model = "{entry.name}.onnx"\n{entry.inputs_line()}{entry.node}',
        f'"net.{port}"',
    )


@pytest.mark.parametrize("entry", ZOO, ids=[e.name for e in ZOO])
def test_zoo_model_equals_a_direct_onnxruntime_loop(tmp_path, entry):
    x = np.random.default_rng(11).uniform(-0.8, 0.8, (entry.lanes, entry.samples)).astype(np.float32)
    expected = entry.reference(entry.build(tmp_path / f"{entry.name}.onnx"), x)
    for port, want in expected.items():
        for block in BLOCKS:
            engine = ng.Engine(ng.load_patch(zoo_patch(tmp_path, entry, port, block)))
            got = engine.render(entry.samples / SR, input=x)
            assert got.shape == want.shape
            np.testing.assert_allclose(
                got, want, atol=entry.atol, rtol=0, err_msg=f"{entry.name}.{port} at block {block}"
            )
            assert np.abs(want).max() > 0.05  # the comparison is not between silences


def test_crepe_feature_axis_becomes_one_port_per_bin(tmp_path):
    from neuralgraph_plugins.onnx_model import OnnxModel

    entry = next(e for e in ZOO if e.name == "crepe")
    node = OnnxModel(
        model=str(entry.build(tmp_path / "c.onnx")),
        rate="frame",
        frame_size=160,
        context=864,
        tensors={"probabilities": {"role": "control"}},
    )
    assert list(node.outputs())[:2] == ["probabilities_1", "probabilities_2"] and len(node.outputs()) == 360
    assert list(node.inputs()) == ["frames"]


def test_frame_models_declare_their_hop_as_latency(tmp_path):
    for name, latency in (("vad", 512), ("crepe", 160), ("rave", 2048), ("lstm", 0), ("nam", 0)):
        entry = next(e for e in ZOO if e.name == name)
        port = next(
            iter(entry.reference(entry.build(tmp_path / f"{name}.onnx"), np.zeros((entry.lanes, 2048), np.float32)))
        )
        engine = ng.Engine(ng.load_patch(zoo_patch(tmp_path, entry, port, 64)))
        assert engine.latency == latency, name


@pytest.mark.parametrize(
    "name",
    [
        "vad",
        "multirate",
        "half",
        "nam",
        "lstm",
    ],
)
def test_mapped_models_allocate_nothing_per_block(tmp_path, name):
    """Casts (int64 constant, float16), context rings, state pairs on axis 1 and resampled outputs
    all run in buffers made in prepare: the engine's block allocates nothing."""
    from test_onnx_model import steady_state_allocations

    entry = next(e for e in ZOO if e.name == name)
    port = next(
        iter(entry.reference(entry.build(tmp_path / f"{name}.onnx"), np.zeros((entry.lanes, 4096), np.float32)))
    )
    for block in (37, 64):  # 64 divides every hop here: every block is one compiled copy
        engine = ng.Engine(ng.load_patch(zoo_patch(tmp_path, entry, port, block)))
        engine.plan.input[:] = 0.25
        steady_state_allocations(engine.process)


@pytest.mark.parametrize("name", ["vad", "multirate"])
def test_frame_rate_blocks_in_a_plan_run_compiled_and_leave_it_only_for_calls(tmp_path, name, monkeypatch):
    """In a plan, a frame-rate model's blocks are compiled lines in a fused run (onnx_fused.py),
    which make the model's call themselves through onnxruntime's C API (onnx_capi.py), or with
    ``NEURALGRAPH_ONNX_CAPI=0`` return to Python only where a call is due: over 4 hops, the call
    is made exactly once per hop either way. The stream equals, bit for bit, the unfused node's at
    block 64 (whole blocks) and at block 37 (blocks that calls split)."""
    entry = next(e for e in ZOO if e.name == name)
    port = next(
        iter(entry.reference(entry.build(tmp_path / f"{name}.onnx"), np.zeros((entry.lanes, 4096), np.float32)))
    )
    x = np.random.default_rng(5).uniform(-0.8, 0.8, (entry.lanes, entry.samples)).astype(np.float32)
    for capi in ("0", "1"):
        monkeypatch.setenv("NEURALGRAPH_ONNX_CAPI", capi)
        engine = ng.Engine(ng.load_patch(zoo_patch(tmp_path, entry, port, 64)))
        node = engine.plan.nodes["net"]
        fused = [r for r in engine.plan.records if r.kind == "fused" and any(m.name == "net" for m in r.members)]
        assert len(fused) == 1 and "net" not in engine.plan.step_names
        calls = []
        step = fused[0].state
        k = [m.name for m in fused[0].members].index("net")
        escape = step.escapes[k]
        step.escapes[k] = lambda: (calls.append(node.pos), escape())
        for _ in range(4 * node.hop // 64):
            engine.process()
        step.escapes[k] = escape
        if capi == "1":  # made in the lines: no escape at all
            assert calls == [] and node.capi.status.tolist() == [0, 4]
        else:  # once per hop, after the hop's last block (its position back to 0)
            assert calls == [0] * 4 and node.capi is None
    engine.reset()
    whole = engine.render(entry.samples / SR, input=x)
    for block, fuse in ((64, False), (37, True), (37, False)):
        other = ng.Engine(ng.load_patch(zoo_patch(tmp_path, entry, port, block)), fuse=fuse)
        assert np.abs(whole).max() > 0.05
        np.testing.assert_array_equal(whole, other.render(entry.samples / SR, input=x), err_msg=f"{block} {fuse}")


def test_flute_runs_from_its_own_buffers_in_a_plan():
    """The flute's 48 control outputs are the node's own (ports, lanes, 1) array, which the model
    writes into: the plan reads them in place."""
    engine = ng.Engine(ng.load_patch(Path(__file__).parent.parent / "graphs" / "neural_flute.toml"))
    node = engine.plan.nodes["decoder"]
    assert node.owned is not None and node.owned.shape == (48, 4, 1)
    _, ins, outs = engine.plan.steps[engine.plan.step_names.index("decoder")]
    assert outs["harm_1"] is node.output_buffers()["harm_1"] and outs["noise_16"].base is node.owned
    assert node._plan_ins is ins and node._plan_outs is outs  # the plan's calls copy nothing port by port
    engine.note_on(69, velocity=100)
    for _ in range(20):
        engine.process()
    harm = node.owned[:32, :, 0]
    assert harm[:, 0].max() > 0 and np.isfinite(harm).all()


def test_mapped_state_snapshot_and_reset_replay_exactly(tmp_path):
    """VAD-style state on axis 1, the context ring and the hop position survive save/load; reset
    returns to the state right after prepare."""
    entry = next(e for e in ZOO if e.name == "vad")
    engine = ng.Engine(ng.load_patch(zoo_patch(tmp_path, entry, "output", 37)))
    x = np.random.default_rng(4).uniform(-0.8, 0.8, (entry.lanes, 3000)).astype(np.float32)
    first = engine.render(3000 / SR, input=x)
    node = engine.plan.nodes["net"]
    saved = node.save_state()
    later = engine.render(3000 / SR, input=x[:, ::-1].copy())
    node.load_state(saved)
    again = engine.render(3000 / SR, input=x[:, ::-1].copy())
    np.testing.assert_array_equal(later, again)
    engine.reset()
    np.testing.assert_array_equal(engine.render(3000 / SR, input=x), first)


def test_worker_runs_a_mapped_lstm_one_block_late(tmp_path):
    """worker = true with (h, c) state on axis 1: the same stream, one block later."""
    entry = next(e for e in ZOO if e.name == "lstm")
    x = np.random.default_rng(8).uniform(-0.8, 0.8, (entry.lanes, 640)).astype(np.float32)
    want = entry.reference(entry.build(tmp_path / "lstm.onnx"), x)["output"]
    path = zoo_patch(tmp_path, entry, "output", 64)
    path.write_text(path.read_text().replace('rate = "stream"', 'rate = "stream"\nworker = true'))
    engine = ng.Engine(ng.load_patch(path))
    assert engine.latency == 64
    got = np.zeros_like(want)
    engine.reset()  # from a known start: no request in flight
    for b in range(10):  # block by block, letting the worker finish each request (test-side sync)
        engine._feed_input(x, b * 64)
        got[:, b * 64 : (b + 1) * 64] = engine.process()
        engine.plan.nodes["net"]._worker.wait_idle()
    np.testing.assert_allclose(got[:, 64:], want[:, :-64], atol=2e-6)
    assert engine.plan.nodes["net"].late_blocks == 0


def test_a_real_pytorch_lstm_export_equals_torch(tmp_path):
    """tests/data/torch_lstm.onnx is the docs' PyTorch export (nn.LSTM, 2 layers, (h, c) on batch
    axis 1), unmodified; through onnx.model it gives what torch itself gives, at any block size."""
    data = Path(__file__).parent / "data"
    (tmp_path / "lstm.onnx").write_bytes((data / "torch_lstm.onnx").read_bytes())
    want = np.load(data / "torch_lstm_y.npy")
    x = np.random.default_rng(3).uniform(-0.8, 0.8, (2, 1000)).astype(np.float32)
    entry = next(e for e in ZOO if e.name == "lstm")
    for block in BLOCKS:
        engine = ng.Engine(
            ng.load_patch(zoo_patch(tmp_path, attrs.evolve(entry, build=lambda p: p, lanes=2), "output", block))
        )
        np.testing.assert_allclose(engine.render(1000 / SR, input=x), want, atol=1e-5, rtol=0)


def test_bool_int32_and_float64_tensors_are_cast_at_the_boundary(tmp_path):
    """y (float64) = x * gate (bool control) + offset (int32 constant), scaled by 0.1 on the way out."""
    nodes = [
        helper.make_node("Cast", ["x"], ["xd"], to=TensorProto.DOUBLE),
        helper.make_node("Cast", ["gate"], ["gd"], to=TensorProto.DOUBLE),
        helper.make_node("Cast", ["offset"], ["od"], to=TensorProto.DOUBLE),
        helper.make_node("Mul", ["xd", "gd"], ["m"]),
        helper.make_node("Add", ["m", "od"], ["y"]),
    ]
    save(
        nodes,
        "dtypes",
        [
            vi("x", TensorProto.FLOAT, ["N", "T"]),
            vi("gate", TensorProto.BOOL, ["N", 1]),
            vi("offset", TensorProto.INT32, [1]),
        ],
        [vi("y", TensorProto.DOUBLE, ["N", "T"])],
        tmp_path / "dtypes.onnx",
    )
    path = node_patch(
        tmp_path,
        "dtypes",
        2,
        37,
        """model = "dtypes.onnx"
rate = "stream"
x = "src"
gate = 0.5
[nodes.net.tensors.gate]
role = "control"
[nodes.net.tensors.offset]
role = "constant"
value = [-3]
[nodes.net.tensors.y]
scale = 0.1             # keeps the result inside the output's +-1 ceiling
""",
        '"net.y"',
    )
    x = np.random.default_rng(9).uniform(-0.5, 0.5, (2, 500)).astype(np.float32)
    got = ng.Engine(ng.load_patch(path)).render(500 / SR, input=x)
    np.testing.assert_allclose(got, 0.1 * (x - 3.0), atol=1e-6)  # gate 0.5 -> true; offset -3 as int32


def test_a_windowed_model_beside_a_dry_path_is_aligned_by_the_compiler(tmp_path):
    """A frame model with look-behind (window 32 + 64, output the hop's 64 samples halved) declares
    64 samples of latency; the dry path summed with it is delayed to match: 1.5 x, 64 late."""
    nodes = [
        const("s", [32], np.int64),
        const("e", [96], np.int64),
        const("a", [1], np.int64),
        const("h", 0.5),
        helper.make_node("Slice", ["w", "s", "e", "a"], ["hop"]),
        helper.make_node("Mul", ["hop", "h"], ["y"]),
    ]
    save(
        nodes,
        "win",
        [vi("w", TensorProto.FLOAT, ["N", 96])],
        [vi("y", TensorProto.FLOAT, ["N", 64])],
        tmp_path / "win.onnx",
    )
    path = node_patch(
        tmp_path, "win", 1, 37, 'model = "win.onnx"\nrate = "frame"\ncontext = 32\nw = "src"\n', '["src", "net.y"]'
    )
    engine = ng.Engine(ng.load_patch(path))
    assert engine.latency == 64
    x = np.random.default_rng(12).uniform(-0.5, 0.5, (1, 700)).astype(np.float32)
    got = engine.render(700 / SR, input=x)
    np.testing.assert_allclose(got[:, 64:], 1.5 * x[:, :-64], atol=1e-6)
    assert not got[:, :64].any()
