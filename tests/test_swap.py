"""Engine.swap: state carries over, values glide as engine.set makes them, structure crossfades."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from analysis import peak_frequency
from helpers import saw_voices

import neuralgraph as ng

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
SR = 48000


def filter_and_model(cutoff: float, trim: float = 0.5) -> dict:
    """A saw through a lowpass (filter memory) into the GRU amp model (recurrent state)."""
    return {
        "schema": 1,
        "nodes": {
            "osc": {"type": "osc.saw", "freq": 110.0},
            "lpf": {"type": "filter.lowpass", "in": "osc", "cutoff": cutoff, "q": 2.0},
            "amp": {"type": "onnx.model", "model": "models/amp_gru.onnx", "rate": "stream", "x": "lpf"},
            "trim": {"type": "math.mul", "in": "amp", "gain": trim},
            "out": {"type": "io.output", "channels": 1, "in": "trim"},
        },
    }


def load(data: dict) -> ng.Patch:
    return ng.load_patch(data, base_dir=ROOT / "graphs")


def run(engine: ng.Engine, blocks: int) -> np.ndarray:
    return np.concatenate([engine.process().copy() for _ in range(blocks)], axis=1)


def test_a_param_only_swap_equals_engine_set_at_the_same_block():
    a = ng.Engine(load(filter_and_model(800.0)), SR, 128)
    b = ng.Engine(load(filter_and_model(800.0)), SR, 128)
    before_a, before_b = run(a, 37), run(b, 37)
    assert np.array_equal(before_a, before_b)
    a.set("lpf.cutoff", 2500.0)
    report = b.swap(load(filter_and_model(2500.0)))
    assert report.changed == ("lpf.cutoff",) and report.fade_s == 0.0
    assert set(report.kept) == {"osc", "lpf", "amp", "trim", "out"}
    after_a, after_b = run(a, 40), run(b, 40)
    assert np.abs(after_a).max() > 0.05
    assert np.array_equal(after_a, after_b)  # filter memory, model state, phase: all carried over
    # and that state matters: the same patch started afresh sounds different over those blocks
    fresh = run(ng.Engine(load(filter_and_model(2500.0)), SR, 128), 40)
    assert np.abs(fresh - after_b).max() > 0.05


def with_post(data: dict) -> dict:
    """The same sound through one more node (gain 1.0) before the output: a structural change."""
    nodes = {k: dict(v) for k, v in data["nodes"].items()}
    nodes["post"] = {"type": "math.mul", "in": nodes["out"]["in"], "gain": 1.0}
    nodes["out"]["in"] = "post"
    return {**data, "nodes": nodes}


def test_a_structural_swap_carries_filter_memory_and_model_state():
    a = ng.Engine(load(filter_and_model(800.0)), SR, 128)
    b = ng.Engine(load(filter_and_model(800.0)), SR, 128)
    run(a, 37), run(b, 37)
    report = b.swap(load(with_post(filter_and_model(800.0))), fade=0.01)
    assert report.added == ("post",) and "amp" in report.kept and "lpf" in report.kept and report.fade_s > 0
    after_a, after_b = run(a, 40), run(b, 40)
    assert np.abs(after_a).max() > 0.05
    # through the fade and after it, the new plan continues the old one: the state was carried
    assert np.abs(after_a - after_b).max() < 1e-6
    fresh = run(ng.Engine(load(with_post(filter_and_model(800.0))), SR, 128), 40)
    assert np.abs(fresh - after_b).max() > 0.05


def test_a_live_parameter_change_glides_like_set():
    def patch(gain_db: float) -> dict:
        return {
            "schema": 1,
            "nodes": {
                "osc": {"type": "osc.sine", "freq": 500.0},
                "eq": {"type": "filter.peak", "in": "osc", "cutoff": 500.0, "gain_db": gain_db},
                "out": {"type": "io.output", "channels": 1, "in": "eq"},
            },
        }

    a, b = ng.Engine(load(patch(0.0)), SR, 64), ng.Engine(load(patch(0.0)), SR, 64)
    run(a, 10), run(b, 10)
    a.set("eq.gain_db", -12.0)
    assert b.swap(load(patch(-12.0))).changed == ("eq.gain_db",)
    assert np.array_equal(run(a, 30), run(b, 30))


def test_a_held_midi_voice_keeps_sounding_across_a_swap():
    def patch(gain: float) -> dict:
        return saw_voices(4, gain)

    a, b = ng.Engine(load(patch(0.5)), SR, 128), ng.Engine(load(patch(0.5)), SR, 128)
    c = ng.Engine(load(patch(0.5)), SR, 128)
    for e in (a, b, c):
        e.note_on(57, 100)
        run(e, 20)
    a.set("lvl.gain", 0.25)
    b.swap(load(patch(0.25)))  # values only
    c.swap(load(with_post(patch(0.5))))  # structural: the voice allocator's state is copied
    out_a, out_b, out_c = run(a, 40), run(b, 40), run(c, 40)
    assert np.array_equal(out_a, out_b)
    assert peak_frequency(out_b[0, 2000:], SR) == pytest.approx(220.0, abs=1.0)  # the A3 still sounds
    assert peak_frequency(out_c[0, 2000:], SR) == pytest.approx(220.0, abs=1.0)
    assert np.abs(out_c).max() > 0.4  # still held at full level after the fade
    c.note_off(57)
    assert np.abs(run(c, 200)[0, -1000:]).max() < 1e-3  # and the note-off finds it


def test_added_and_removed_nodes_crossfade_and_kept_nodes_stay_continuous():
    one = {
        "schema": 1,
        "nodes": {"osc": {"type": "osc.sine", "freq": 300.0}, "out": {"type": "io.output", "channels": 1, "in": "osc"}},
    }
    two = {
        "schema": 1,
        "nodes": {
            "osc": {"type": "osc.sine", "freq": 300.0},
            "half": {"type": "math.mul", "in": "osc", "gain": 0.5},
            "out": {"type": "io.output", "channels": 1, "in": "half"},
        },
    }
    engine = ng.Engine(load(one), SR, 64)
    before = run(engine, 50)
    report = engine.swap(load(two), fade=0.02)
    assert (
        report.added == ("half",) and report.kept == ("osc", "out") and report.fade_s == pytest.approx(0.02, abs=0.002)
    )
    after = run(engine, 100)
    x = np.concatenate([before, after], axis=1)[0]
    swap_at = before.shape[1]
    fade = int(report.fade_s * SR)
    # the level moves from 1.0 to 0.5 over the fade, never a step: the sine's own largest step bounds every step
    own = np.abs(np.diff(before[0])).max()
    assert np.abs(np.diff(x)).max() <= own * 1.01
    assert np.abs(x[swap_at + fade + 64 :]).max() == pytest.approx(0.5, abs=0.01)
    # phase kept: the new output is exactly half of the old oscillator continued
    reference = run(ng.Engine(load(one), SR, 64), 150)[0]
    assert np.allclose(x[swap_at + fade :], 0.5 * reference[swap_at + fade :], atol=1e-6)
    assert engine._swap is None  # the fade is over; the old plan waits for the control thread
    engine.collect()
    assert engine._retired is None


def test_an_unchanged_patch_is_not_swapped(write_patch):
    text = 'schema = 1\n[nodes.osc]\ntype = "osc.sine"\nfreq = 440.0\n[nodes.out]\ntype = "io.output"\nin = "osc"\n'
    engine = ng.Engine(ng.load_patch(write_patch(text)), SR, 64)
    plan = engine.plan
    report = engine.swap(ng.load_patch(write_patch("# only a comment\n\n" + text)))
    assert report.kept == () and engine._swap is None
    engine.process()
    assert engine.plan is plan


def test_a_swap_cannot_change_the_channel_count():
    one = {
        "schema": 1,
        "nodes": {"osc": {"type": "osc.sine"}, "out": {"type": "io.output", "channels": 1, "in": "osc"}},
    }
    two = {
        "schema": 1,
        "nodes": {"osc": {"type": "osc.sine"}, "out": {"type": "io.output", "channels": 2, "in": "osc"}},
    }
    engine = ng.Engine(load(one), SR, 64)
    with pytest.raises(ng.ParameterError, match="2 output channels and the playing one 1"):
        engine.swap(load(two))
    assert engine._swap is None


def test_set_after_a_swap_reaches_the_new_plan():
    engine = ng.Engine(load(filter_and_model(800.0)), SR, 128)
    run(engine, 5)
    engine.swap(load(with_post(filter_and_model(800.0))))
    engine.set("lpf.cutoff", 3000.0)  # looked up in the old plan, applied in the new one
    run(engine, 5)
    assert "post" in engine.plan.nodes  # the new plan plays
    cutoff = engine._targets[engine._target_index["lpf.cutoff"]]  # the new plan's input ramp
    assert cutoff.target == 3000.0


def test_the_switch_block_allocates_no_buffers():
    """The block that performs the swap (state transfer included) stays under the zero-allocation tolerance."""
    from neuralgraph.testing import DEFAULT_TOLERANCE

    engine = ng.Engine(load(filter_and_model(800.0)), SR, 4096)
    run(engine, 3)
    engine.swap(load(with_post(filter_and_model(1600.0))))
    assert engine._swap is not None  # a new plan, state transfer and all
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        engine.process()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < DEFAULT_TOLERANCE


def test_scalar_state_carries_over_in_a_structural_swap():
    from neuralgraph.plugin import Node, Output

    class BlockCounter(Node):
        """Outputs how many blocks it has run: its state is a plain Python int."""

        type_name = "swaptest.block_counter"
        out = Output(span=(0.0, 1e9))

        def prepare(self, ctx) -> None:
            self.count = 0

        def process(self, ins, outs, frames) -> None:
            outs.out.fill(float(self.count))
            self.count += 1

        def reset(self) -> None:
            self.count = 0

    ng.register(BlockCounter)
    data = {
        "schema": 1,
        "nodes": {"n": {"type": "swaptest.block_counter"}, "out": {"type": "io.output", "channels": 1, "in": "n"}},
    }
    engine = ng.Engine(ng.load_patch(data), SR, 64, ceiling=np.inf)
    run(engine, 10)
    assert engine.swap(ng.load_patch(with_post(data)), fade=0.0).kept == ("n", "out")
    out = run(engine, 5)
    assert out[0, ::64].tolist() == [10.0, 11.0, 12.0, 13.0, 14.0]


def test_a_swap_while_a_backend_plays_compiles_below_the_audio_thread_and_restores_the_policy():
    """The new plan is built at SCHED_FIFO 1 while a backend plays (the thread holds the GIL the
    audio callback needs: parked by the scheduler, it makes xruns), at normal priority otherwise."""
    import os

    from neuralgraph.plugin import Input, Node, Output, RealtimeGuard

    built_under: list[int] = []

    class PolicyProbe(Node):
        """Passes its input through; records the scheduling policy it was prepared under."""

        type_name = "swaptest.policy_probe"
        in_ = Input(init=0.0)
        out = Output(span=(-1.0, 1.0))

        def prepare(self, ctx) -> None:
            built_under.append(os.sched_getscheduler(0))

        def process(self, ins, outs, frames) -> None:
            np.copyto(outs.out, ins.in_)

    ng.register(PolicyProbe)
    base = {"osc": {"type": "osc.sine", "freq": 440.0}, "out": {"type": "io.output", "channels": 1, "in": "osc"}}
    probed = {**base, "probe": {"type": "swaptest.policy_probe", "in": "osc"}}
    probed["out"] = {**base["out"], "in": "probe"}
    engine = ng.Engine(ng.load_patch({"schema": 1, "nodes": base}), SR, 64)
    engine.swap(ng.load_patch({"schema": 1, "nodes": probed}), fade=0.0)  # nothing plays
    run(engine, 2)
    guard = RealtimeGuard()
    guard.enter()  # as a backend does when it starts playing
    try:
        engine.swap(ng.load_patch(with_post({"schema": 1, "nodes": probed})), fade=0.0)  # built anew
        after = os.sched_getscheduler(0)
    finally:
        guard.exit()
    assert built_under[-2] == os.SCHED_OTHER  # offline: untouched
    assert after == os.SCHED_OTHER  # restored when the swap returned
    if os.geteuid() == 0:  # root (CI) may use SCHED_FIFO; elsewhere only with an rtprio limit
        assert built_under[-1] == os.SCHED_FIFO


def test_the_replaced_plan_is_freed_by_collect_without_a_garbage_collection():
    """Its steps refer back to it; left as cyclic garbage, a full collection (which holds the GIL
    the audio callback needs for milliseconds) would have to free it."""
    import gc
    import weakref

    engine = ng.Engine(load(filter_and_model(800.0)), SR, 128)
    run(engine, 3)
    engine.swap(load(with_post(filter_and_model(800.0))), fade=0.01)
    run(engine, 10)  # the fade is over
    old_plan = weakref.ref(engine._retired.old_plan)
    old_node = weakref.ref(old_plan().nodes["lpf"])
    gc.disable()
    try:
        engine.collect()
        assert old_plan() is None and old_node() is None
    finally:
        gc.enable()
    assert "post" in engine.plan.nodes and np.isfinite(run(engine, 2)).all()  # the new plan plays on


def sine_chain(links: int) -> dict:
    """``links`` sines into gains, summed: a patch with many small objects to build."""
    nodes: dict = {f"s{i}": {"type": "osc.sine", "freq": 100.0 + i} for i in range(links)}
    nodes |= {f"g{i}": {"type": "math.mul", "in": f"s{i}", "gain": 0.01} for i in range(links)}
    nodes["out"] = {"type": "io.output", "channels": 1, "in": [f"g{i}" for i in range(links)]}
    return {"schema": 1, "nodes": nodes}


@pytest.mark.parametrize("playing", [True, False])
def test_while_playing_a_swap_leaves_nothing_for_the_collector_to_scan(playing):
    """The objects a live edit builds are frozen while audio plays (RealtimeGuard): collector
    passes over them held the GIL the audio callback needs for 5 to 20 ms. Frozen, they are
    still freed by reference counting: the replaced plan goes when it is released."""
    import gc
    import weakref

    from neuralgraph.plugin import RealtimeGuard

    guard = RealtimeGuard()
    if playing:
        guard.enter()
    try:
        engine = ng.Engine(ng.load_patch(sine_chain(300)), SR, 128)
        run(engine, 3)
        engine.swap(ng.load_patch(sine_chain(301)), fade=0.01)
        run(engine, 10)
        old_node = weakref.ref(engine._retired.old_plan.nodes["s0"])
        engine.collect()
        assert old_node() is None  # freed by reference counting, frozen or not
        scanned = {id(o) for o in gc.get_objects()}  # what a collector pass goes over (not the frozen)
        left = sum(id(node) in scanned for node in engine.plan.nodes.values())
    finally:
        guard.exit()
    assert left == (0 if playing else len(engine.plan.nodes)), left
