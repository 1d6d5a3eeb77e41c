"""Kernel fusion (neuralgraph/_compile/fusion.py): same samples as unfused, faults contained and named,
no allocation per block, generated code cached on disk across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neuralgraph as ng
from neuralgraph._tools.profiling import hold_notes
from neuralgraph.testing import assert_no_allocations

ROOT = Path(__file__).resolve().parent.parent
SR = 48000
BENCH = [("p1_saw_filter.toml", 8), ("p2_fm.toml", 32), ("p3_peq.toml", 0)]


def render(
    patch: ng.Patch,
    *,
    fuse: bool,
    notes: int = 0,
    blocks: int = 200,
    block: int = 64,
    edits: dict[int, tuple[str, float]] | None = None,
) -> tuple[np.ndarray, ng.Engine]:
    engine = ng.Engine(patch, sample_rate=SR, block_size=block, fuse=fuse)
    if notes:
        hold_notes(engine, notes)
    out = []
    for b in range(blocks):
        if edits and b in edits:
            engine.set(*edits[b])
        out.append(engine.process().copy())
    return np.concatenate(out, axis=1), engine


def fused_names(engine: ng.Engine) -> list[str]:
    return [name for name in engine.plan.step_names if "(fused," in name]


@pytest.mark.parametrize("name,notes", BENCH)
@pytest.mark.parametrize("block", [64, 256])
def test_bench_patches_fused_equal_unfused(name, notes, block):
    patch = ng.load_patch(ROOT / "graphs" / "bench" / name)
    fused, engine = render(patch, fuse=True, notes=notes, block=block, blocks=100)
    plain, plain_engine = render(patch, fuse=False, notes=notes, block=block, blocks=100)
    assert fused_names(engine) and not fused_names(plain_engine)
    assert len(engine.plan.steps) < len(plain_engine.plan.steps)
    assert np.max(np.abs(plain)) > 0.01
    np.testing.assert_allclose(fused, plain, rtol=0, atol=2e-6)


MIXED = {
    "lfo": {"type": "osc.sine", "freq": 3.0},
    "osc": {"type": "osc.saw", "freq": [110.0, {"from": "lfo", "range": [-5.0, 5.0]}]},
    "noise": {"type": "noise.white", "amp": 0.1},
    "sum": {"type": "math.add", "a": "osc", "b": "noise"},  # no kernel: ends a run
    "lp": {"type": "filter.lowpass", "in": "sum", "cutoff": {"from": "lfo", "range": [300.0, 3000.0], "curve": "exp"}},
    "eq": {"type": "filter.peak", "in": "lp", "cutoff": 800.0, "gain_db": 6.0},
    "shelf": {"type": "filter.highshelf", "in": "eq", "cutoff": 4000.0, "gain_db": -3.0},
    "svf": {"type": "filter.bandpass", "in": "shelf", "cutoff": 1500.0, "q": 0.7},
    "vca": {"type": "math.mul", "in": ["svf", "eq"], "gain": 0.3},
    "out": {"type": "io.output", "channels": 2, "in": "vca"},
}


def test_mixed_chain_with_parameter_changes_fused_equals_unfused(load):
    # Engine.set on constant inputs of fused nodes (ramped control and audio inputs) and a live
    # parameter; the fused and unfused engines see the same edits at the same blocks
    edits = {20: ("eq.gain_db", -9.0), 40: ("lp.q", 4.0), 60: ("vca.gain", 0.1), 80: ("eq.cutoff", 2500.0)}
    fused, engine = render(load(MIXED), fuse=True, edits=edits)
    plain, _ = render(load(MIXED), fuse=False, edits=edits)
    assert fused_names(engine)
    np.testing.assert_allclose(fused, plain, rtol=0, atol=2e-6)
    # the edits were heard
    before, after = render(load(MIXED), fuse=True)[0], fused
    assert np.max(np.abs(before[:, 30 * 64 :] - after[:, 30 * 64 :])) > 1e-3


def _compiled(engine: ng.Engine) -> list[object]:
    """The compiled functions an engine runs: each fused run's, then the many-block driver's."""
    runs = [record.state.kernel for record in engine.plan.records if record.kind == "fused"]
    return runs + [engine.plan._driver.function]


def test_one_compiled_function_serves_every_block_size(load):
    # an array's width is read from the fused function's table, not written into its source:
    # the same patch (without a mix) at another block size compiles nothing new (the cold test
    # suite renders the same graphs at many block sizes)
    nodes = {
        "osc": {"type": "osc.saw", "freq": 110.0},
        "lp": {"type": "filter.lowpass", "in": "osc", "cutoff": 1200.0, "q": 2.0},
        "vca": {"type": "math.mul", "in": "lp", "gain": 0.3},
        "out": {"type": "io.output", "channels": 1, "in": "vca"},
    }
    first = None
    for block in (64, 100, 256):
        engine = ng.Engine(load(nodes), sample_rate=SR, block_size=block)
        audio = engine.render(0.05)
        assert fused_names(engine) and engine.plan._driver
        first = first or _compiled(engine)
        assert all(a is b for a, b in zip(_compiled(engine), first, strict=True))
        plain = render(load(nodes), fuse=False, block=block, blocks=audio.shape[1] // block)[0]
        np.testing.assert_array_equal(audio[:, : plain.shape[1]], plain)
        assert np.max(np.abs(audio)) > 0.01


def test_fused_mix_steps_map_with_scale_and_offset(load):
    """Inline linear mappings (scale and offset) of one and of two sources, and the output's
    1 -> 2 lane broadcast, compile into the fused run (inline.py) and compute what the numpy mix
    step computes."""
    nodes = {
        "lfo": {"type": "osc.sine", "freq": 3.0},
        "osc": {"type": "osc.sine", "freq": 220.0},
        "lp": {"type": "filter.lowpass", "in": "osc", "cutoff": {"from": "lfo", "range": [300.0, 3000.0]}},
        "vca": {
            "type": "math.mul",
            "in": "lp",
            "gain": [{"from": "lfo", "range": [0.2, 0.6]}, {"from": "osc", "range": [0.1, 0.3]}],
        },
        "out": {"type": "io.output", "in": "vca"},
    }
    fused, engine = render(load(nodes), fuse=True)
    plain, _ = render(load(nodes), fuse=False)
    (name,) = fused_names(engine)
    # lfo, osc, lp.cutoff (mix), lp, vca.gain (mix), vca, out.in (mix: the broadcast), out
    assert name == "lfo … out (fused, 8 nodes)"
    np.testing.assert_allclose(fused, plain, rtol=0, atol=2e-6)
    assert np.max(np.abs(plain)) > 0.1


def test_feedback_and_latency_patches_fuse_and_match(load):
    nodes = {
        "osc": {"type": "osc.sine", "freq": 440.0},
        "lat": {"type": "test.latent", "in": "osc"},
        "eq1": {
            "type": "filter.peak",
            "in": ["osc", {"from": "eq2", "feedback": True, "range": [-0.5, 0.5]}],
            "cutoff": 500.0,
            "gain_db": 3.0,
        },
        "eq2": {"type": "filter.peak", "in": "eq1", "cutoff": 900.0, "gain_db": -3.0},
        "mix": {"type": "math.add", "a": "eq2", "b": "lat"},
        "out": {"type": "io.output", "in": "mix"},
    }
    fused, engine = render(load(nodes), fuse=True)
    plain, plain_engine = render(load(nodes), fuse=False)
    assert engine.latency == plain_engine.latency > 0
    np.testing.assert_allclose(fused, plain, rtol=0, atol=2e-6)


def test_a_fault_inside_a_fused_run_is_contained_and_names_the_node(load):
    nodes = {
        "osc": {"type": "osc.sine", "freq": 1000.0},
        "eq1": {"type": "filter.peak", "in": "osc", "cutoff": 300.0, "gain_db": 3.0},
        "bad": {"type": "test.kernel_raiser", "after": 3, "in": "eq1"},
        "eq2": {"type": "filter.peak", "in": "bad", "cutoff": 3000.0, "gain_db": -3.0},
        "vca": {"type": "math.mul", "in": "eq2", "gain": 0.5},
        "out": {"type": "io.output", "in": "vca"},
    }
    engine = ng.Engine(load(nodes), sample_rate=SR, block_size=64)
    (fused,) = fused_names(engine)
    assert fused == "osc … out (fused, 7 nodes)"  # with the output's 1 -> 2 lane broadcast
    audio = engine.render(0.5)
    faults = engine.faults()
    assert [f.node for f in faults] == ["bad"] and "planted kernel fault" in str(faults[0].error)
    assert engine.faults() == []  # reported once
    # "bad" passes its input through from then on; the others keep running (unfused)
    plain = ng.Engine(
        load({**nodes, "bad": {"type": "test.raiser", "after": 10**3, "in": "eq1"}}),
        sample_rate=SR,
        block_size=64,
        fuse=False,
    ).render(0.5)
    np.testing.assert_allclose(audio[:, 64 * 10 :], plain[:, 64 * 10 :], rtol=0, atol=2e-6)
    assert np.max(np.abs(audio[:, -4800:])) > 0.1


@pytest.mark.parametrize("name,notes", BENCH)
def test_fused_blocks_do_not_allocate(name, notes):
    engine = ng.Engine(ng.load_patch(ROOT / "graphs" / "bench" / name), sample_rate=SR, block_size=64)
    if notes:
        hold_notes(engine, notes)
    assert fused_names(engine)
    engine.process()
    assert_no_allocations(engine.plan.run_block, calls=50)


def test_reset_keeps_fused_output_reproducible():
    engine = ng.Engine(ng.load_patch(ROOT / "graphs" / "bench" / "p3_peq.toml"), sample_rate=SR, block_size=64)
    first = engine.render(0.2)
    engine.plan.reset()
    np.testing.assert_array_equal(engine.render(0.2), first)
    assert all(
        step.__self__.fused
        for step, _, _ in engine.plan.steps
        if hasattr(step, "__self__") and type(step.__self__).__name__ == "FusedStep"
    )


PROBE = """
import json, sys
import neuralgraph as ng
from neuralgraph._compile.fusion import FusedStep
engine = ng.Engine(ng.load_patch(sys.argv[1]), sample_rate=48000, block_size=64)
fused = [p.__self__ for p, _, _ in engine.plan.steps if isinstance(getattr(p, "__self__", None), FusedStep)]
kernel = fused[0].kernel
if hasattr(kernel, "_cache_hits"):  # numba's JIT (NEURALGRAPH_AOT=0)
    print(json.dumps({"hits": sum(kernel._cache_hits.values()), "misses": sum(kernel._cache_misses.values())}))
else:  # a compiled module's function
    print(json.dumps({"numba": "numba" in sys.modules, "kernel": type(kernel).__name__}))
"""


def _probe(patch: str, env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, patch], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_generated_kernels_are_compiled_ahead_of_time_once_and_loaded_without_numba(tmp_path):
    env = {**os.environ, "NEURALGRAPH_CACHE_DIR": str(tmp_path / "cache")}
    patch = str(ROOT / "graphs" / "bench" / "p3_peq.toml")
    first = _probe(patch, env)
    modules = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache" / "aot").glob("*/ng_*")}
    assert first["kernel"] == "builtin_function_or_method" and modules  # built by the compile subprocess
    second = _probe(patch, env)
    # loaded from disk: no compilation, and no numba in the process at all
    assert second == {"numba": False, "kernel": "builtin_function_or_method"}
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cache" / "aot").glob("*/ng_*")} == modules


def test_without_ahead_of_time_compiling_kernels_are_cached_by_numba_for_the_next_process(tmp_path):
    env = {**os.environ, "NEURALGRAPH_CACHE_DIR": str(tmp_path / "cache"), "NEURALGRAPH_AOT": "0"}
    patch = str(ROOT / "graphs" / "bench" / "p3_peq.toml")
    first = _probe(patch, env)
    assert first["misses"] == 1 and first["hits"] == 0  # compiled, and written to the cache
    assert list((tmp_path / "cache" / "fused").glob("fused_*.py"))
    assert not list((tmp_path / "cache" / "aot").glob("*/ng_*"))
    second = _probe(patch, env)
    assert second == {"hits": 1, "misses": 0}  # loaded from disk: no compilation


def test_a_live_parameter_of_a_fused_node_still_takes_effect(load):
    nodes = {
        "noise": {"type": "noise.white"},
        "lp": {"type": "filter.onepole", "in": "noise", "cutoff": 200.0},
        "eq": {"type": "filter.peak", "in": "lp", "cutoff": 1000.0},
        "out": {"type": "io.output", "channels": 1, "in": "eq"},
    }
    edits = {10: ("lp.mode", "highpass")}
    fused, engine = render(load(nodes), fuse=True, edits=edits, blocks=40)
    plain, _ = render(load(nodes), fuse=False, edits=edits, blocks=40)
    assert fused_names(engine) == ["noise … out (fused, 4 nodes)"]
    np.testing.assert_allclose(fused, plain, rtol=0, atol=2e-6)
    # highpassed white noise has far more sample-to-sample difference than lowpassed
    d = np.abs(np.diff(fused[0]))
    assert d[64 * 20 :].mean() > 5 * d[64 : 64 * 9].mean()


def test_without_a_writable_cache_the_patch_runs_unfused(load, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("NEURALGRAPH_CACHE_DIR", str(blocker / "cache"))  # cannot be created
    nodes = {
        "noise": {"type": "noise.white"},
        "eq1": {"type": "filter.peak", "in": "noise", "cutoff": 700.0, "gain_db": 4.0},
        "eq2": {"type": "filter.lowshelf", "in": "eq1", "cutoff": 200.0, "gain_db": -4.0},
        "out": {"type": "io.output", "channels": 1, "in": "eq2"},
    }
    with pytest.warns(UserWarning, match="not fused"):
        engine = ng.Engine(load(nodes), sample_rate=32000, block_size=48)
    assert not fused_names(engine) and engine.plan.step_names == ["noise", "eq1", "eq2", "out"]
    assert np.max(np.abs(engine.render(0.1))) > 0.01


def test_generated_source_changes_when_a_member_kernel_module_changes(monkeypatch):
    from neuralgraph._compile import fusion
    from neuralgraph._nodes import aot
    from neuralgraph_plugins.filters import _biquad_kernel

    arrays = [np.zeros((1, 64), np.float32) for _ in range(2)]
    members = [
        (
            _biquad_kernel,
            (
                arrays[0],
                arrays[0],
                arrays[0],
                arrays[0],
                0,
                np.zeros((1, 2)),
                np.zeros((1, 3)),
                np.zeros((1, 5)),
                48000.0,
                arrays[1],
            ),
        )
    ]
    before = fusion.generate(members, np.zeros(1, np.int64))[0]
    monkeypatch.setitem(aot._stamps, "neuralgraph_plugins.filters", "0" * 16)  # as if the file changed
    after = fusion.generate(members, np.zeros(1, np.int64))[0]
    assert before != after and "neuralgraph_plugins.filters" in before


def test_midi_voices_fused_follows_notes_bends_and_live_settings(load):
    patch = load(
        {
            "keys": {"type": "midi.voices", "count": 8},
            "osc": {"type": "osc.saw", "freq": "keys.freq"},
            "lp": {"type": "filter.lowpass", "in": "osc", "cutoff": 1200.0, "q": 2.0},
            "vca": {"type": "math.mul", "in": "lp", "gain": 0.1},
            "mix": {"type": "voices.sum", "in": "vca"},
            "out": {"type": "io.output", "channels": 1, "in": "mix"},
        }
    )
    results = []
    for fuse in (True, False):
        engine = ng.Engine(patch, sample_rate=SR, block_size=64, fuse=fuse)
        assert bool(fused_names(engine)) == fuse
        blocks, voices = [], []
        for b in range(120):
            if b % 10 == 0:
                engine.note_on(40 + b // 5, 90)
            if b % 10 == 5 and b > 20:
                engine.note_off(40 + (b - 20) // 5)
            if b == 50:
                engine.send_midi(0xE0, 0, 100)  # pitch bend up
                engine.set("keys.bend_range", 7.0)
            if b == 80:
                engine.set("keys.mode", "mono")
            blocks.append(engine.process().copy())
            voices.append(engine.plan.nodes["keys"].active_voices)
        results.append((np.concatenate(blocks, axis=1), voices))
    (fused, fused_voices), (plain, plain_voices) = results
    assert fused_voices == plain_voices and max(fused_voices) >= 3
    np.testing.assert_allclose(fused, plain, rtol=0, atol=2e-6)


def test_the_copy_kernel_fills_a_control_signal_once_not_a_block_of_frames():
    """A copy into a control-rate buffer (one column) is fused with a block's ``frames``: the
    kernel must write that one column only (it wrote ``frames`` columns past it into the slab,
    which the fuzzer met as a crash once control outputs were mapped onto control inputs). The
    compiler's mix steps write their output's own width (``inline.py``): the test below."""
    from neuralgraph._nodes import kernels

    slab = np.zeros((1, 64), np.float32)
    out = slab[:, :1]  # the control input's buffer, with other signals after it
    kernels.copy_kernel(np.full((1, 1), 2.0, np.float32), out, 64)
    assert out[0, 0] == 2.0
    assert not slab[0, 1:].any()


def test_a_control_output_mapped_onto_a_control_input_renders_fused_as_unfused():
    """analysis.loudness (a control output) mapped onto a shelf's gain (a control input): the
    fused mix fills one value, and the render equals the unfused one."""
    patch = ng.load_patch(
        {
            "schema": 1,
            "nodes": {
                "mic": {"type": "osc.saw", "freq": 110.0},
                "level": {"type": "analysis.loudness", "in": "mic"},
                "eq": {"type": "filter.highshelf", "in": "mic", "gain_db": {"from": "level", "range": [-12.0, 6.0]}},
                "out": {"type": "io.output", "channels": 1, "in": "eq"},
            },
        }
    )
    fused, engine = render(patch, fuse=True, blocks=100)
    plain, plain_engine = render(patch, fuse=False, blocks=100)
    assert any("eq.gain_db (mix)" in name for name in fused_names(engine)) and not fused_names(plain_engine)
    assert engine.faults() == []
    np.testing.assert_allclose(fused, plain, rtol=0, atol=2e-6)


GRAPHS = sorted(
    p.relative_to(ROOT / "graphs").as_posix()
    for p in (ROOT / "graphs").rglob("*.toml")
    if not {"models", "tables"} & set(p.parts)
)


def _rounded_mix_members(engine: ng.Engine) -> bool:
    """Whether a fused run holds a mix term computed in another order than numpy's: an exp curve
    (LLVM's expf against numpy's vectorised exp) or a control-to-audio ramp (numpy's matmul)."""
    return any(
        t.exp or t.ramp for r in engine.plan.records for m in r.members if m.kind == "mix" for t in m.state.terms
    )


@pytest.mark.parametrize("name", GRAPHS)
def test_every_shipped_graph_fused_equals_unfused(name):
    """The fused plan gives the unfused plan's samples on every patch in graphs/: bit for bit, or
    within float32 rounding (1e-7 of full scale) where a fused mix holds an exp curve or a ramp."""
    patch = ng.load_patch(ROOT / "graphs" / name)
    # the input (io.input patches): a voiced tone with noise, so pitch trackers find a note
    t = np.arange(64 * 300) / SR
    tone = sum(np.sin(2 * np.pi * 220.0 * h * t) / h for h in range(1, 6))
    noise = (0.3 * tone + np.random.default_rng(7).uniform(-0.05, 0.05, (2, t.size))).astype(np.float32)
    outs, engines = [], []
    for fuse in (True, False):
        engine = ng.Engine(patch, sample_rate=SR, block_size=64, fuse=fuse)
        hold_notes(engine, 4)
        outs.append(engine.render(64 * 300 / SR, input=noise))
        engines.append(engine)
    fused, plain = outs
    assert np.max(np.abs(plain)) > 0.01  # the patch sounds: the comparison means something
    assert not fused_names(engines[1])
    if _rounded_mix_members(engines[0]):
        np.testing.assert_allclose(fused, plain, rtol=0, atol=1e-7 * max(1.0, float(np.max(np.abs(plain)))))
    else:
        np.testing.assert_array_equal(fused, plain)


def test_offline_render_runs_many_blocks_per_compiled_call_with_the_same_samples():
    """A plan made of fused runs renders offline through the many-block driver: the same samples
    as block by block, and the step timer still samples one block in 256 (slow-node warnings)."""
    patch = ng.load_patch(ROOT / "graphs" / "bench" / "per_voice" / "p2_fm.toml")
    chunked = ng.Engine(patch, sample_rate=SR, block_size=64)
    audio = chunked.render(1.0)
    blocks = ng.Engine(patch, sample_rate=SR, block_size=64)
    plain = np.concatenate([b.copy() for b in blocks.stream(1.0)], axis=1)
    assert chunked.plan._driver and blocks.plan._driver is None  # the driver ran, only in the first
    np.testing.assert_array_equal(audio, plain)
    assert np.max(np.abs(audio)) > 0.1
    assert chunked.frames_done == blocks.frames_done == audio.shape[1]
    assert chunked.step_timer.samples == blocks.step_timer.samples > 0


def test_offline_driver_hands_a_nan_to_the_diagnostic_mode_that_names_its_node(load):
    nodes = {
        "osc": {"type": "osc.sine", "freq": 220.0},
        "hot": {"type": "math.mul", "in": "osc", "gain": 1e30},
        "boom": {"type": "math.mul", "in": "hot", "gain": 1e30},  # overflows to Inf
        "out": {"type": "io.output", "channels": 1, "in": "boom"},
    }
    engine = ng.Engine(load(nodes), sample_rate=SR, block_size=64)
    audio = engine.render(0.5)
    assert engine.plan._driver  # the many-block loop ran until the guard met Inf
    blocks = ng.Engine(load(nodes), sample_rate=SR, block_size=64)
    plain = np.concatenate([b.copy() for b in blocks.stream(0.5)], axis=1)
    np.testing.assert_array_equal(audio, plain)
    assert np.isfinite(audio).all() and engine.plan.guard.non_finite == blocks.plan.guard.non_finite > 0
    assert engine.plan.diagnostic_blocks == blocks.plan.diagnostic_blocks > 0
    # diagnostic mode scans step by step: the run holding the overflow is named, as block by block
    assert (
        [b.node for b in engine.bad_values()] == [b.node for b in blocks.bad_values()] == ["osc … out (fused, 4 nodes)"]
    )
