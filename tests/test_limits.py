"""Limits: the node count, the compile-time memory estimate against what ``prepare`` really
allocates, the settings' sources, and the benchmark that raises the node limit on purpose."""

from __future__ import annotations

import importlib.util
import tracemalloc
from pathlib import Path

import pytest

import neuralgraph as ng
from neuralgraph._patch.config import Limits, load_limits
from neuralgraph.plugin import Node, PrepareContext

ROOT = Path(__file__).resolve().parent.parent
SR, BLOCK = 48000, 128


def prepared_bytes(node: Node, lanes: int, sample_rate: int = SR) -> int:
    """The peak memory ``prepare`` allocates, as tracemalloc (which sees numpy) measures it."""
    ctx = PrepareContext(
        sample_rate=sample_rate,
        block_size=BLOCK,
        lanes=lanes,
        input_lanes={p: lanes for p in node.inputs()},
        output_lanes=dict(node.output_lanes(lanes)),
        patch_dir=ROOT,
    )
    tracemalloc.start()
    try:
        node.prepare(ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize(
    ("type_name", "params", "lanes"),
    [
        ("fx.delay", {"max_ms": 5000.0}, 8),
        ("fx.chorus", {}, 16),
        ("fx.reverb", {}, 2),
        ("fx.limiter", {"lookahead_ms": 100.0}, 8),
        ("osc.wavetable", {"table": str(ROOT / "graphs" / "tables" / "organ.npy")}, 1),
        ("onnx.model", {"model": str(ROOT / "graphs" / "models" / "amp_gru.onnx"), "rate": "stream"}, 16),
    ],
)
def test_memory_estimate_matches_what_prepare_allocates(type_name, params, lanes):
    cls = ng.default_registry().node_class(type_name)
    estimate = cls(**params).memory_bytes(SR, BLOCK, lanes)
    measured = prepared_bytes(cls(**params), lanes)
    # the estimate must not miss what matters, nor cry wolf: within a factor of two, give or
    # take the small fixed state (indices, bindings) it leaves out
    assert measured / 2 - 64 * 1024 <= estimate <= 2 * measured + 64 * 1024, (estimate, measured)


def test_the_delay_estimate_grows_with_time_lanes_and_rate():
    delay = ng.default_registry().node_class("fx.delay")(max_ms=60000.0)
    assert delay.memory_bytes(192000, BLOCK, 128) == pytest.approx(60 * 192000 * 128 * 4, rel=1e-3)
    assert delay.memory_bytes(48000, BLOCK, 1) * 4 == pytest.approx(delay.memory_bytes(192000, BLOCK, 1), rel=1e-3)


def test_a_node_declares_no_memory_by_default():
    assert Node().memory_bytes(SR, BLOCK, 8) == 0


def test_budget_names_the_setting_and_biggest_consumers(tmp_path):
    nodes = {f"d{i}": {"type": "fx.delay", "in": "osc", "max_ms": 10000.0} for i in range(3)}
    nodes |= {
        "osc": {"type": "osc.sine"},
        "mix": {"type": "math.add", "a": "d0", "b": "d1"},
        "out": {"type": "io.output", "in": ["mix", "d2"]},
    }
    patch = ng.load_patch({"schema": 1, "nodes": nodes}, memory_budget_mb=1)
    with pytest.raises(ng.CompileError) as info:
        ng.Engine(patch, sample_rate=SR, block_size=BLOCK)
    (problem,) = info.value.problems
    assert problem.code == "NG127" and problem.path in {"nodes.d0", "nodes.d1", "nodes.d2"}
    assert "more than the memory budget of 1 MiB" in problem.message
    assert problem.message.count("(fx.delay, 1 lane) 1.8 MiB") == 3
    assert "memory_budget_mb" in problem.hint
    ng.Engine(ng.load_patch({"schema": 1, "nodes": nodes}, memory_budget_mb=16), sample_rate=SR, block_size=BLOCK)


def test_limits_refuse_nonsense_settings(tmp_path):
    with pytest.raises(ng.NeuralgraphError, match="max_nodes must be a whole number of at least 1"):
        Limits(max_nodes=0)
    config = tmp_path / "config.toml"
    config.write_text("[limits]\nmax_node = 5\n", encoding="utf-8")
    with pytest.raises(ng.NeuralgraphError, match="unknown setting limits.max_node"):
        load_limits(environ={}, paths=[config])
    config.write_text("[limits]\nallow_outside_paths = 1\n", encoding="utf-8")
    with pytest.raises(ng.NeuralgraphError, match="allow_outside_paths must be true or false"):
        load_limits(environ={}, paths=[config])


def test_limits_precedence_config_then_env_then_arguments(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[limits]\nmax_nodes = 50\nmemory_budget_mb = 100\n", encoding="utf-8")
    assert load_limits(environ={}, paths=[]) == Limits()
    assert load_limits(environ={}, paths=[config]) == Limits(max_nodes=50, memory_budget_mb=100)
    env = {"NEURALGRAPH_MAX_NODES": "60", "NEURALGRAPH_ALLOW_OUTSIDE_PATHS": "yes"}
    assert load_limits(environ=env, paths=[config]) == Limits(60, 100, True)
    assert load_limits(environ=env, paths=[config], max_nodes=70, allow_outside_paths=None) == Limits(70, 100, True)


def test_paths_inside_the_patch_folder_still_load(tmp_path):
    """Subfolders and `..` that stays inside are fine; only leaving the folder is refused."""
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "t.npy").write_bytes((ROOT / "graphs" / "tables" / "organ.npy").read_bytes())
    patch = tmp_path / "p.toml"
    patch.write_text(
        'schema = 1\n[nodes.o]\ntype = "osc.wavetable"\ntable = "tables/../tables/t.npy"\n'
        '[nodes.out]\ntype = "io.output"\nin = "o"\n',
        encoding="utf-8",
    )
    loaded = ng.load_patch(patch)
    assert loaded.spec.nodes["o"].params["table"] == str((tmp_path / "tables" / "t.npy").resolve())


def test_an_empty_file_parameter_means_no_file(tmp_path):
    patch = ng.load_patch(
        {"schema": 1, "nodes": {"o": {"type": "osc.wavetable", "table": ""}, "out": {"type": "io.output", "in": "o"}}}
    )
    assert patch.spec.nodes["o"].params["table"] == ""
    assert ng.Engine(patch, sample_rate=SR, block_size=BLOCK).render(0.01).any()


def test_the_compile_scaling_benchmark_raises_the_node_limit_on_purpose():
    spec = importlib.util.spec_from_file_location("compile_scaling", ROOT / "benchmarks" / "compile_scaling.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    data = bench.patch_data(10000)
    assert len(data["nodes"]) > Limits().max_nodes
    with pytest.raises(ng.PatchValidationError, match="NG126"):
        ng.load_patch(data)
    load, build = bench.measure(10000)
    assert load > 0 and build > 0
