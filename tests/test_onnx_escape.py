"""onnx.model inside a fused run (plugins/onnx_fused.py): its blocks are compiled lines that escape
to Python only for a model call (neuralgraph/_compile/fusion.py, driver.py). Fed by and feeding
fused neighbours, at block sizes that split calls and that do not, through the block-by-block
path and the offline many-block driver, the stream is bit for bit the unfused one; a model call
that fails is contained and reported by the node's name, as unfused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
from helpers import patch_toml
from onnx import TensorProto, helper
from onnx_zoo import SR, ZOO, const, save, vi

import neuralgraph as ng
from neuralgraph._compile.driver import Driver

#: hops: vad 512, crepe 160, rave and multirate 2048; nam (context) and half (float16 tensors, a
#: control input) are stream rate, one call per block
MODELS = ("vad", "crepe", "rave", "multirate", "nam", "half")
#: 64 and 512 divide the 512 and 2048 hops (whole blocks, or one call per block); 37 splits calls;
#: 512 holds several of crepe's 160-sample hops (escapes three or four times a block)
BLOCKS = (37, 64, 512)


def sandwich(tmp_path: Path, name: str, block: int, model_keys: str, lanes: int, port: str, audio_in: str) -> Path:
    """fixed lanes -> sine -> gain -> [the model] -> gain -> output: every step offers compiled code."""
    nodes = f"""[nodes.lanes]
type = "voices.fixed"
count = {lanes}
start = 110.0
ratio = 1.5
[nodes.osc]
type = "osc.sine"
freq = "lanes"
[nodes.pre]
type = "math.mul"
in = "osc"
gain = 0.8
[nodes.net]
type = "onnx.model"
{audio_in} = "pre"
{model_keys}
[nodes.post]
type = "math.mul"
in = "net.{port}"
gain = 0.5
[nodes.out]
type = "io.output"
channels = {lanes}
in = "post"
"""
    path = tmp_path / f"{name}_{block}.toml"
    path.write_text(patch_toml(nodes, name=name, sample_rate=SR, block_size=block))
    return path


def zoo_sandwich(tmp_path: Path, name: str, block: int) -> tuple[Path, float]:
    entry = next(e for e in ZOO if e.name == name)
    model = entry.build(tmp_path / f"{name}.onnx")
    port = next(iter(entry.reference(model, np.zeros((entry.lanes, 4096), np.float32))))
    keys = f'model = "{name}.onnx"\n{entry.node}'
    return sandwich(tmp_path, name, block, keys, entry.lanes, port, entry.audio_in), entry.samples / SR


@pytest.mark.parametrize("name", MODELS)
def test_a_model_between_fused_neighbours_equals_the_unfused_run_bit_for_bit(tmp_path, name):
    for block in BLOCKS:
        path, seconds = zoo_sandwich(tmp_path, name, block)
        fused = ng.Engine(ng.load_patch(path))
        (record,) = fused.plan.records  # one fused run: the model and its neighbours
        assert record.kind == "fused" and "net" in [m.name for m in record.members]
        chunked = fused.render(seconds)  # the offline driver, many blocks per compiled call
        assert isinstance(fused.plan._driver, Driver)
        fused.reset()
        by_block = np.concatenate(list(b.copy() for b in fused.stream(seconds)), axis=1)
        plain = ng.Engine(ng.load_patch(path), fuse=False).render(seconds)
        assert np.abs(plain).max() > 0.05, "the comparison is not between silences"
        np.testing.assert_array_equal(chunked, plain, err_msg=f"{name}: driver at block {block}")
        np.testing.assert_array_equal(by_block, plain, err_msg=f"{name}: block by block at block {block}")
        assert fused.faults() == []


@pytest.mark.parametrize("port", ["notes_3", "contour"])
def test_frames_held_or_ramped_in_the_lines_read_the_same_after_a_switch_to_process_mid_hop(tmp_path, port):
    """multirate's notes (8 frames held over 256 samples each) and contour (32 frames ramped over
    64) are made block by block from the model's frames in the fused lines, which leave the hop
    buffers stale. Mid-hop, the run is switched to its members' ``process`` (what a tap on a
    buffer reused inside the run does), and the node's snapshot taken there is loaded into the
    same node of an unfused engine at the same block: both read the hop from the same frames, so
    each stream is bit for bit a never-fused run's."""
    entry = next(e for e in ZOO if e.name == "multirate")
    entry.build(tmp_path / "multirate.onnx")
    keys = f'model = "multirate.onnx"\n{entry.node}'
    path = sandwich(tmp_path, "multirate", 64, keys, entry.lanes, port, entry.audio_in)
    seconds, head = entry.samples / SR, 2048 // 64 + 5  # one call made, 5 blocks into the next hop
    plain = ng.Engine(ng.load_patch(path), fuse=False).render(seconds)
    assert np.abs(plain[:, head * 64 :]).max() > 0.05
    fused = ng.Engine(ng.load_patch(path))
    blocks = fused.stream(seconds)
    got = [next(blocks).copy() for _ in range(head)]
    node = fused.plan.nodes["net"]
    assert node.cursor[4] == 1  # the lines made the call and left the hop buffers to a fallback
    saved = node.save_state()
    (record,) = fused.plan.records
    k = record.state.names.index("net")
    record.state.run_member_with(k, record.state.members[k].process)
    got += [b.copy() for b in blocks]
    assert not record.state.fused and node.cursor[4] == 0  # process filled the hop buffers
    np.testing.assert_array_equal(np.concatenate(got, axis=1), plain)
    unfused = ng.Engine(ng.load_patch(path), fuse=False)
    blocks = unfused.stream(seconds)
    got = [next(blocks).copy() for _ in range(head)]
    unfused.plan.nodes["net"].load_state(saved)
    got += [b.copy() for b in blocks]
    np.testing.assert_array_equal(np.concatenate(got, axis=1), plain)


def gather_model(path: Path) -> Path:
    """y = table[int(x * 2.5 + 2)] per sample, a window of 64: a value of x >= 0.8 makes an index
    out of the table's 4 entries, and onnxruntime fails the call (the probe on zeros passes)."""
    nodes = [
        const("k", np.float32(2.5)),
        const("b", np.float32(2.0)),
        const("table", np.array([-0.3, -0.1, 0.1, 0.3], np.float32)),
        helper.make_node("Mul", ["x", "k"], ["xk"]),
        helper.make_node("Add", ["xk", "b"], ["xb"]),
        helper.make_node("Cast", ["xb"], ["idx"], to=TensorProto.INT64),
        helper.make_node("Gather", ["table", "idx"], ["y"], axis=0),
    ]
    x, y = vi("x", TensorProto.FLOAT, ["B", 64]), vi("y", TensorProto.FLOAT, ["B", 64])
    return save(nodes, "gather", [x], [y], path)


@pytest.mark.parametrize("block", [37, 64])
def test_a_failing_model_call_is_contained_and_named_as_unfused(tmp_path, block):
    gather_model(tmp_path / "gather.onnx")
    keys = 'model = "gather.onnx"\nrate = "frame"\nframe_size = 64'
    path = sandwich(tmp_path, "gather", block, keys, 2, "y", "x")
    outcomes = []
    for fuse in (True, False):
        for whole in (True, False):  # the offline driver, and block by block
            engine = ng.Engine(ng.load_patch(path), fuse=fuse)
            assert len(engine.plan.records) == (1 if fuse else 6)
            audio = engine.render(0.25) if whole else np.concatenate([b.copy() for b in engine.stream(0.25)], axis=1)
            faults = engine.faults()
            assert [f.node for f in faults] == ["net"], faults
            assert "indices element out of data bounds" in str(faults[0].error)
            outcomes.append(audio)
    assert np.abs(outcomes[0][:, -1000:]).max() > 0.1  # the neighbours play on, the model passes its input
    for audio in outcomes[1:]:
        np.testing.assert_array_equal(audio, outcomes[0])


def test_float16_bits_convert_as_numpy_casts():
    """The lines cast to and from float16 through the bits (numba has no float16): every one of the
    65536 halves to float32, and 2^22 float32 bit patterns (random, and every exponent's edges,
    subnormals, infinities, NaN) to float16, equal numpy's casts bit for bit (an exhaustive run
    over all 2^32 float32 patterns also matched, 500 s: too long for the suite)."""
    from numba import njit

    from neuralgraph_plugins.onnx_fused import float_bits, half_bits

    @njit
    def to_half(f, out):  # pragma: no cover - compiled
        for i in range(f.size):
            out[i] = half_bits(np.int64(f[i]))

    @njit
    def to_float(h, out):  # pragma: no cover - compiled
        for i in range(h.size):
            out[i] = float_bits(np.int64(h[i]))

    halves = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    got = np.zeros(65536, np.uint32)
    to_float(halves, got)
    np.testing.assert_array_equal(got, halves.view(np.float16).astype(np.float32).view(np.uint32))
    edges = (np.arange(512, dtype=np.uint32)[:, None] << 23) + np.array(
        [0, 1, 0xFFF, 0x1000, 0x1001, 0x2000, 0x3000, 0x7FFFFF], np.uint32
    )
    rng = np.random.default_rng(16)
    floats = np.concatenate([edges.ravel(), rng.integers(0, 1 << 32, 1 << 22, dtype=np.uint64).astype(np.uint32)])
    out = np.zeros(floats.size, np.uint16)
    to_half(floats, out)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(out, floats.view(np.float32).astype(np.float16).view(np.uint16))


@pytest.mark.parametrize("block", [1, 37, 100, 256])
def test_an_escaping_node_between_fused_neighbours_resumes_where_it_stopped(load, block):
    """``test.stepper`` (tests/testnodes.py) stops its fused run every 100 samples for a Python
    call, in the middle of blocks or at their ends: the sine before it runs once per block (not
    again on resume), the gain after it sees every step, and the stream equals the unfused one
    bit for bit, block by block and through the offline driver."""
    nodes = {
        "osc": {"type": "osc.sine", "freq": 220.0},
        "step": {"type": "test.stepper", "in": "osc"},
        "vca": {"type": "math.mul", "in": "step", "gain": 0.02},
        "out": {"type": "io.output", "in": "vca"},
    }
    fused = ng.Engine(load(nodes), sample_rate=SR, block_size=block)
    assert [r.kind for r in fused.plan.records] == ["fused"]
    whole = fused.render(0.2)
    node = fused.plan.nodes["step"]
    assert node.calls == -(-len(whole[0]) // block) * block // 100  # whole blocks run
    fused.reset()
    by_block = np.concatenate([b.copy() for b in fused.stream(0.2)], axis=1)
    plain = ng.Engine(load(nodes), sample_rate=SR, block_size=block, fuse=False).render(0.2)
    sine = np.sin(2 * np.pi * 220.0 * np.arange(len(whole[0])) / SR)
    steps = np.arange(len(whole[0])) // 100
    np.testing.assert_allclose(plain[0], 0.02 * (sine + steps), atol=1e-5)  # what the patch means
    np.testing.assert_array_equal(whole, plain)
    np.testing.assert_array_equal(by_block, plain)


def test_the_contract_suite_runs_an_escaping_kernel_beside_process():
    from testnodes import Stepper

    from neuralgraph.testing import run_contract_suite

    report = run_contract_suite(Stepper, quick=True)
    assert report.ok, str(report)
    assert "kernel" in report.checks and not [n for n in report.notes if n.startswith("kernel")]


def test_the_profile_build_gives_the_model_run_to_the_model(tmp_path):
    """``neuralgraph bench`` splits a fused run's time by the clock read between members: the
    Python call a member escapes for is that member's time (else the model's run, most of the
    block, would be spread over the members around it)."""
    path, _ = zoo_sandwich(tmp_path, "nam", 128)
    engine = ng.Engine(ng.load_patch(path))
    (record,) = engine.plan.records
    step = record.state
    step.profile(True)
    for _ in range(200):
        engine.process()
    step.profile(False)
    names = [m.name for m in record.members]
    assert step.ticks[names.index("net")] > 0.5 * step.ticks.sum(), dict(zip(names, step.ticks.tolist()))
