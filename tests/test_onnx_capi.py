"""onnx.model's calls made from the fused lines through onnxruntime's C API (plugins/onnx_capi.py):
the model opened a second time through the wheel's libonnxruntime, bound to the node's own
arrays, run by compiled code with no return to Python. Every fused zoo model takes that path,
plays exactly what the Python session plays, and a failing run is the node's contained fault."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
from helpers import patch_toml
from onnx_zoo import SR, ZOO
from test_onnx_escape import MODELS, gather_model, sandwich
from test_onnx_model import steady_state_allocations
from test_onnx_zoo import zoo_patch

import neuralgraph as ng

ROOT = Path(__file__).resolve().parent.parent


def render(path: Path, seconds: float, x: np.ndarray) -> tuple[np.ndarray, ng.Engine, list[int]]:
    """The render, its engine, and where the model node's escapes were answered (its cursor's
    hop position at each)."""
    engine = ng.Engine(ng.load_patch(path))
    step = next(r.state for r in engine.plan.records if r.kind == "fused" and "net" in r.state.names)
    k, node, escapes = step.names.index("net"), engine.plan.nodes["net"], []
    escape = step.escapes[k]
    step.escapes[k] = lambda: (escapes.append(node.pos), escape())
    return engine.render(seconds, input=x), engine, escapes


def engine_warmup_runs(path: Path) -> int:
    """The runs an engine makes while it is built (its warm-up blocks, before a reset)."""
    return int(ng.Engine(ng.load_patch(path)).plan.nodes["net"].capi.status[1])


@pytest.mark.parametrize("name", MODELS)
def test_every_fused_zoo_model_runs_through_the_c_api_as_the_python_session_does(tmp_path, name, monkeypatch):
    """At odd and even blocks, with 2 or 3 lanes: every call is made from compiled code (no
    escape; the C session counts as many runs as the Python session makes when the lines escape
    to it for each call, ``NEURALGRAPH_ONNX_CAPI=0``), and the output equals that patch's sample
    for sample."""
    entry = next(e for e in ZOO if e.name == name)
    port = next(
        iter(entry.reference(entry.build(tmp_path / f"{name}.onnx"), np.zeros((entry.lanes, 4096), np.float32)))
    )
    x = np.random.default_rng(3).uniform(-0.8, 0.8, (entry.lanes, entry.samples)).astype(np.float32)
    seconds = entry.samples / SR
    for block in (1, 37, 64, 512):
        path = zoo_patch(tmp_path, entry, port, block)
        monkeypatch.setenv("NEURALGRAPH_ONNX_CAPI", "1")
        got, engine, escapes = render(path, seconds, x)
        node = engine.plan.nodes["net"]
        assert node.capi is not None, node.capi_reason
        assert escapes == []
        runs = node.capi.status[1] - engine_warmup_runs(path)
        monkeypatch.setenv("NEURALGRAPH_ONNX_CAPI", "0")
        want, python, calls = render(path, seconds, x)
        assert python.plan.nodes["net"].capi is None
        assert len(calls) >= entry.samples // node.hop  # the Python session's calls, one per escape
        assert node.capi.status[0] == 0 and runs == len(calls), f"{name} at block {block}"
        assert np.abs(want).max() > 0.05, "the comparison is not between silences"
        np.testing.assert_array_equal(got, want, err_msg=f"{name} at block {block}")


def test_the_loaded_library_is_the_installed_onnxruntime():
    """The C API comes from the wheel's own shared library: its version string is the Python
    package's, and the API version the field indices were taken from is served."""
    import onnxruntime

    from neuralgraph_plugins import onnx_capi

    api = onnx_capi.api()
    assert api is not None, onnx_capi.unavailable()
    assert api.version == onnxruntime.__version__


@pytest.mark.parametrize("block", [37, 64])
def test_a_failing_run_through_the_c_api_is_contained_and_named(tmp_path, block):
    """The gather model fails once the sine reaches an index past its table: the compiled run
    gets onnxruntime's status, escapes, and the node is faulted by its name with onnxruntime's
    message (the status released), while the neighbours play on, as the unfused run does."""
    gather_model(tmp_path / "gather.onnx")
    path = sandwich(tmp_path, "gather", block, 'model = "gather.onnx"\nrate = "frame"\nframe_size = 64', 2, "y", "x")
    engine = ng.Engine(ng.load_patch(path))
    node = engine.plan.nodes["net"]
    assert node.capi is not None
    audio = np.concatenate([b.copy() for b in engine.stream(0.25)], axis=1)
    faults = engine.faults()
    assert [f.node for f in faults] == ["net"]
    assert "indices element out of data bounds" in str(faults[0].error)
    assert node.capi.status[0] == 0 and node.capi.status[1] > 0  # ran from compiled code, then failed
    plain = ng.Engine(ng.load_patch(path), fuse=False).render(0.25)
    np.testing.assert_array_equal(audio, plain)


def test_worker_and_block_rate_models_keep_the_python_session(tmp_path):
    """A worker's calls run on its thread, and a block-rate model's in process(): neither opens
    a C session, and each says why."""
    lstm = next(e for e in ZOO if e.name == "lstm")
    lstm.build(tmp_path / "lstm.onnx")
    body = f'model = "lstm.onnx"\n{lstm.inputs_line()}{lstm.node}'.replace(
        'rate = "stream"', 'rate = "stream"\nworker = true'
    )
    from test_onnx_zoo import node_patch

    engine = ng.Engine(ng.load_patch(node_patch(tmp_path, "worker", lstm.lanes, 64, body, '"net.output"')))
    node = engine.plan.nodes["net"]
    assert node.capi is None and "worker" in node.capi_reason
    flute = ng.Engine(ng.load_patch(ROOT / "graphs" / "neural_flute.toml"))
    models = [n for n in flute.plan.nodes.values() if getattr(n, "type_name", "") == "onnx.model"]
    assert models and all(n.capi is None and "block-rate" in n.capi_reason for n in models)


@pytest.mark.parametrize("name", ["multirate", "half"])
def test_blocks_that_run_the_model_through_the_c_api_allocate_nothing(tmp_path, name):
    entry = next(e for e in ZOO if e.name == name)
    port = next(
        iter(entry.reference(entry.build(tmp_path / f"{name}.onnx"), np.zeros((entry.lanes, 4096), np.float32)))
    )
    engine = ng.Engine(ng.load_patch(zoo_patch(tmp_path, entry, port, 37)))
    assert engine.plan.nodes["net"].capi is not None
    engine.plan.input[:] = 0.25
    steady_state_allocations(engine.process)


def test_a_compiled_module_runs_the_model_through_the_c_api(tmp_path, monkeypatch):
    """The fused function built ahead of time by numba.pycc (what a playing process loads, with
    no numba) calls the C API through the table's addresses, read at run time: built into an
    empty cache, it makes every call and plays what the JIT's build of the same source plays."""
    from neuralgraph._nodes import aot

    entry = next(e for e in ZOO if e.name == "vad")
    entry.build(tmp_path / "vad.onnx")
    # a block size no other test uses: a source this process compiled before is not built again
    path = zoo_patch(tmp_path, entry, "output", 45)
    x = np.random.default_rng(4).uniform(-0.8, 0.8, (entry.lanes, entry.samples)).astype(np.float32)
    played = []
    for build in ("1", "0"):  # the compiled module, then numba's JIT
        monkeypatch.setenv(aot.ENV, build)
        monkeypatch.setenv("NEURALGRAPH_CACHE_DIR", str(tmp_path / f"cache{build}"))
        engine = ng.Engine(ng.load_patch(path))
        step = next(r.state for r in engine.plan.records if r.kind == "fused" and "net" in r.state.names)
        assert type(step.kernel).__name__ == ("builtin_function_or_method" if build == "1" else "CPUDispatcher")
        capi = engine.plan.nodes["net"].capi
        before = int(capi.status[1])
        played.append(engine.render(entry.samples / SR, input=x))
        assert capi.status[1] - before == entry.samples // 512  # a call per 512-sample hop, all made by the lines
    assert np.abs(played[0]).max() > 0.05
    np.testing.assert_array_equal(played[0], played[1])


def test_a_block_rate_model_whose_block_is_its_run_runs_through_the_c_api(tmp_path, monkeypatch):
    """The flute decoder with every tensor a port's array (one lane: f0 from a fixed voice,
    loudness a constant, the 48 outputs bound onto the node's port buffers): its block is the
    model's run alone, made from compiled code over the plan's own arrays, once per block; its
    outputs equal the Python session's block for block. With more lanes the outputs need a
    transposing gather, and ``process`` keeps the block."""
    import shutil

    shutil.copy(ROOT / "graphs" / "models" / "ddsp_flute.onnx", tmp_path / "flute.onnx")
    nodes = """[nodes.lanes]
type = "voices.fixed"
count = 1
start = 220.0
[nodes.net]
type = "onnx.model"
model = "flute.onnx"
f0 = "lanes"
loudness = -30.0
[nodes.out]
type = "io.output"
in = "lanes"
"""
    path = tmp_path / "flute.toml"
    path.write_text(patch_toml(nodes, name="flute", sample_rate=SR, block_size=64))
    blocks = []
    for capi in ("1", "0"):
        monkeypatch.setenv("NEURALGRAPH_ONNX_CAPI", capi)
        engine = ng.Engine(ng.load_patch(path))
        node = engine.plan.nodes["net"]
        assert "net" not in engine.plan.step_names if capi == "1" else node.capi is None
        before = 0 if node.capi is None else int(node.capi.status[1])
        got = []
        for _ in range(20):
            engine.process()
            got.append(node.owned.copy())
        if capi == "1":
            assert node.capi.status[1] - before == 20
        blocks.append(np.stack(got))
    assert np.abs(blocks[0][:, :32]).max() > 0  # harmonic levels come out
    np.testing.assert_array_equal(blocks[0], blocks[1])


FRESH_PROCESS = """
import json, sys
import numpy as np
import neuralgraph as ng
path, seconds = sys.argv[1], float(sys.argv[2])
x = np.load(sys.argv[3])
engine = ng.Engine(ng.load_patch(path))
step = next(r.state for r in engine.plan.records if r.kind == "fused" and "net" in r.state.names)
played = engine.render(seconds, input=x)
np.save(sys.argv[4], played)
fused = {"numba": "numba" in sys.modules, "kernel": type(step.kernel).__name__}
unfused = ng.Engine(ng.load_patch(path), fuse=False)  # its warm-up block runs process()
from neuralgraph_plugins import onnx_buffers
ready = [len(getattr(getattr(onnx_buffers, k), "signatures", [])) for k in ("resample", "shift_back")]
print(json.dumps({"fused": fused, "unfused_ready": ready}))
"""


def test_a_fused_frame_rate_model_plays_from_compiled_modules_without_numba(tmp_path):
    """multirate (interpolated and held outputs at another rate) fused: a fresh process builds the
    engine and renders with no numba imported (its Python path's helpers are compiled only where
    that path runs), so the fused run is its compiled module, not numba's JIT dispatcher whose
    type checks cost about 0.1 us a block; it plays what a direct onnxruntime loop gives. An
    unfused plan of the same patch has those helpers compiled by the time it is built (its
    warm-up block, which makes no call: the hop is 2048 samples), not in a played block."""
    import json
    import subprocess
    import sys

    entry = next(e for e in ZOO if e.name == "multirate")
    x = np.random.default_rng(5).uniform(-0.8, 0.8, (entry.lanes, entry.samples)).astype(np.float32)
    want = entry.reference(entry.build(tmp_path / "multirate.onnx"), x)
    port = "contour"
    np.save(tmp_path / "x.npy", x)
    path = zoo_patch(tmp_path, entry, port, 128)
    args = [str(path), str(entry.samples / SR), str(tmp_path / "x.npy"), str(tmp_path / "played.npy")]
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS, *args], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["fused"] == {"numba": False, "kernel": "builtin_function_or_method"}, done.stderr
    assert all(report["unfused_ready"]), report  # interpolation and its frame shift, compiled
    played = np.load(tmp_path / "played.npy")
    np.testing.assert_allclose(played, want[port], atol=entry.atol, rtol=0)
    assert np.abs(want[port]).max() > 0.05


def test_the_memory_estimate_counts_the_c_api_session(tmp_path, monkeypatch):
    """Each onnxruntime session holds the model's weights: a node that may open the C API's
    session beside its Python one declares the model's size twice, one that cannot (a worker, or
    ``NEURALGRAPH_ONNX_CAPI=0``) once, and the fused plan does open it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnx_zoo import vi

    weights = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "wide",
        [vi("x", TensorProto.FLOAT, ["batch", 512])],
        [vi("y", TensorProto.FLOAT, ["batch", 512])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "wide.onnx"))
    size = (tmp_path / "wide.onnx").stat().st_size
    assert size > weights.nbytes
    cls = ng.default_registry().node_class("onnx.model")
    params = {"model": str(tmp_path / "wide.onnx"), "rate": "frame"}
    both = cls(**params).memory_bytes(SR, 64, 2)
    worker = cls(model=str(tmp_path / "wide.onnx"), rate="stream", worker=True).memory_bytes(SR, 512, 2)
    monkeypatch.setenv("NEURALGRAPH_ONNX_CAPI", "0")
    python_only = cls(**params).memory_bytes(SR, 64, 2)
    assert both - python_only == size
    assert size < python_only < 2 * size and worker < 2 * size
    monkeypatch.setenv("NEURALGRAPH_ONNX_CAPI", "1")
    from test_onnx_zoo import node_patch

    engine = ng.Engine(
        ng.load_patch(
            node_patch(tmp_path, "wide", 2, 64, 'model = "wide.onnx"\nrate = "frame"\nx = "src"\n', '"net.y"')
        )
    )
    assert engine.plan.nodes["net"].capi is not None


def test_outputs_nothing_reads_are_left_unwritten_until_a_tap_asks_for_one(tmp_path):
    """The multirate patch reads only ``notes_3``: the fused lines write that port alone (the
    other four are named unwritten and their buffers stay silent), and a tap on ``contour``
    attached mid-render runs the node's own process from then on, so the tap gets what a direct
    onnxruntime loop gives, and the output stays the same as an untapped render's."""
    entry = next(e for e in ZOO if e.name == "multirate")
    x = np.random.default_rng(5).uniform(-0.8, 0.8, (entry.lanes, entry.samples)).astype(np.float32)
    want = entry.reference(entry.build(tmp_path / "multirate.onnx"), x)
    path = zoo_patch(tmp_path, entry, "notes_3", 64)
    engine = ng.Engine(ng.load_patch(path))
    step = next(r.state for r in engine.plan.records if r.kind == "fused" and "net" in r.state.names)
    assert step.unwritten(step.names.index("net")) == {"notes_1", "notes_2", "notes_4", "contour"}
    half = entry.samples // 2 // 64
    taps = []
    got = engine.render(
        entry.samples / SR,
        input=x,
        on_block=lambda b: taps.append(engine.tap("net.contour", 1.0)) if b == half else None,
    )
    np.testing.assert_allclose(got, want["notes_3"], atol=entry.atol, rtol=0)
    start = (half + 1) * 64  # the tap hears the blocks after the one it was attached in
    tapped = taps[0].read(max_frames=2 * entry.samples).data[:, : entry.samples - start]
    assert tapped.shape[1] == entry.samples - start
    np.testing.assert_allclose(tapped, want["contour"][:, start:], atol=entry.atol, rtol=0)
    assert np.abs(tapped).max() > 0.05  # the comparison is not between silences
    untapped = ng.Engine(ng.load_patch(path)).render(entry.samples / SR, input=x)
    np.testing.assert_array_equal(got, untapped)
    fresh = ng.Engine(ng.load_patch(path))
    fresh.render(entry.samples / SR, input=x)
    buffers = fresh.plan.nodes["net"].output_buffers()
    assert np.abs(buffers["notes_3"]).max() > 0.05
    assert not any(np.any(buffers[p]) for p in ("notes_1", "notes_2", "notes_4", "contour"))
