"""The compiled plan and the engine: order, buffers, mixing, mapping, latency, set, faults."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from analysis import peak_frequency, raw_engine, raw_render

import neuralgraph as ng
from neuralgraph.testing import AllocationError, assert_no_allocations

SR = 48000


def chain(n: int) -> dict:
    nodes = {"osc": {"type": "osc.sine", "freq": 1000.0}}
    prev = "osc"
    for i in range(n):
        nodes[f"g{i}"] = {"type": "math.mul", "in": prev, "gain": 1.0}
        prev = f"g{i}"
    nodes["out"] = {"type": "io.output", "channels": 1, "in": prev}
    return nodes


def test_sine_renders_at_its_frequency(load):
    engine = ng.Engine(load(chain(0)), sample_rate=SR, block_size=64)
    audio = engine.render(1.0)
    assert audio.shape == (1, SR) and audio.dtype == np.float32
    assert peak_frequency(audio[0], SR) == pytest.approx(1000.0, abs=0.5)
    assert np.max(np.abs(audio)) == pytest.approx(1.0, abs=1e-3)


def test_buffers_are_reused_along_a_chain(load):
    engine = ng.Engine(load(chain(20)), sample_rate=SR, block_size=64)
    # 22 outputs, but only a producer and its consumer are live at once, plus the pinned output
    assert engine.plan.buffer_count == 3


def test_depth_first_order_keeps_producers_next_to_consumers(load):
    nodes = {
        "a": {"type": "osc.sine"},
        "b": {"type": "osc.sine"},
        "a2": {"type": "math.mul", "in": "a"},
        "b2": {"type": "math.mul", "in": "b"},
        "sum": {"type": "math.add", "a": "a2", "b": "b2"},
        "out": {"type": "io.output", "in": "sum"},
    }
    assert load(nodes).topology.order == ("a", "a2", "b", "b2", "sum", "out")


def test_fan_in_list_sums_sources_and_constants(load):
    nodes = {
        "l": {"type": "test.level", "value": 0.25},
        "out": {"type": "io.output", "channels": 1, "in": ["l", "l", 0.125]},
    }
    audio = ng.Engine(load(nodes), sample_rate=SR, block_size=32).render(0.01)
    assert np.allclose(audio[:, 64:], 0.625)


@pytest.mark.parametrize("curve,expected", [("lin", 7.5), ("exp", 100.0 * (10000.0 / 100.0) ** 0.75)])
def test_mapping_maps_the_source_span(load, curve, expected):
    # test.level's span is 0..1; 0.75 maps to 3/4 of the range (on a log scale for exp)
    nodes = {
        "l": {"type": "test.level", "value": 0.75},
        "m": {
            "type": "math.add",
            "a": {"from": "l", "range": [0.0, 10.0] if curve == "lin" else [100.0, 10000.0], "curve": curve},
        },
        "out": {"type": "io.output", "channels": 1, "in": "m"},
    }
    audio = ng.Engine(load(nodes), ceiling=float("inf"), sample_rate=SR, block_size=32).render(0.01)
    assert audio[0, -1] == pytest.approx(expected, rel=1e-5)


def test_control_into_audio_is_ramped_across_the_block(load):
    nodes = {
        "l": {"type": "test.level", "value": 0.0},
        "out": {"type": "io.output", "channels": 1, "in": "l"},
    }
    engine = ng.Engine(load(nodes), sample_rate=SR, block_size=8)
    engine.process()
    engine.set("l.value", 0.8)  # ramp_ms 20 -> reaches 0.8 over 960 frames of control blocks
    blocks = [engine.process().copy() for _ in range(130)]
    first = blocks[0][0]
    assert np.all(np.diff(first) > 0), "a control step must reach audio as a ramp, not a jump"
    assert blocks[-1][0, -1] == pytest.approx(0.8, abs=1e-6)


def test_feedback_edge_reads_the_previous_block(load):
    nodes = {
        "acc": {"type": "math.add", "a": 0.001, "b": {"from": "acc", "feedback": True}},
        "out": {"type": "io.output", "channels": 1, "in": "acc"},
    }
    engine = ng.Engine(load(nodes), sample_rate=SR, block_size=16)
    values = [engine.process()[0, 0] for _ in range(5)]
    # block k sees block k-1's output: 0.001, 0.002, ... (one block of delay, never zeros)
    assert values == pytest.approx([0.001, 0.002, 0.003, 0.004, 0.005], abs=1e-7)
    assert engine.faults() == []


def test_feedback_edge_is_one_block_late_also_from_a_node_earlier_in_the_order(load):
    """`src` runs before `late` (a plain edge orders them), so reading its buffer directly would
    give this block's value; the feedback edge must still give the previous block's."""
    nodes = {
        "src": {"type": "math.add", "a": 0.001, "b": {"from": "src", "feedback": True}},
        "late": {"type": "math.add", "a": {"from": "src", "feedback": True}, "b": "src"},
        "out": {"type": "io.output", "channels": 1, "in": "late"},
    }
    engine = raw_engine(load(nodes), SR, 16)
    values = [engine.process()[0, 0] for _ in range(4)]
    # previous block's src plus this block's: 0 + 0.001, 0.001 + 0.002, ...
    assert values == pytest.approx([0.001, 0.003, 0.005, 0.007], abs=1e-7)


def test_latency_of_one_path_is_compensated_on_the_other(load):
    nodes = {
        "imp": {"type": "test.impulse"},
        "slow": {"type": "test.latent", "samples": 37, "in": "imp"},
        "sum": {"type": "math.add", "a": "imp", "b": "slow"},
        "out": {"type": "io.output", "channels": 1, "in": "sum"},
    }
    engine = raw_engine(load(nodes), SR, 16)  # the default ceiling (1.0) would hide a lost path
    assert engine.latency == 37
    audio = raw_render(engine, 0.01)
    # both paths arrive together: one impulse of height 2 at frame 37
    assert np.flatnonzero(audio[0]).tolist() == [37]
    assert audio[0, 37] == 2.0


def test_one_lane_broadcasts_to_every_channel(load):
    nodes = {"l": {"type": "test.level", "value": 0.5}, "out": {"type": "io.output", "channels": 4, "in": "l"}}
    audio = ng.Engine(load(nodes), sample_rate=SR, block_size=16).render(0.01)
    assert audio.shape[0] == 4 and np.allclose(audio[:, 32:], 0.5)


def test_set_ramps_an_input_and_reports_bad_targets(load):
    engine = ng.Engine(load(chain(1)), sample_rate=SR, block_size=64)
    engine.render(0.05)
    engine.set("g0.gain", 0.5)
    audio = engine.render(0.1)
    assert np.max(np.abs(audio[0, -2000:])) == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(ng.ParameterError, match=r"no node `os`.*did you mean `osc`"):
        engine.set("os.freq", 1.0)
    with pytest.raises(ng.ParameterError, match="connected"):
        engine.set("g0.in", 1.0)
    with pytest.raises(ng.ParameterError, match="must be <= 100000"):
        engine.set("osc.freq", 1e9)
    with pytest.raises(ng.ParameterError, match="cannot change while running"):
        engine.set("out.channels", 1)


def test_set_now_leaves_the_engine_as_a_fresh_one_built_with_the_value(load):
    """Batch rendering re-uses one engine: set_now + reset must equal a new engine, even mid-ramp."""
    nodes = chain(1)
    engine = ng.Engine(load(nodes), sample_rate=SR, block_size=64)
    engine.set("g0.gain", 0.25)
    engine.render(0.001)  # one block: the gain's ramp is still in progress
    engine.set_now("g0.gain", 0.5)
    engine.set_now("osc.freq", 440.0)
    engine.reset()
    nodes["g0"]["gain"], nodes["osc"]["freq"] = 0.5, 440.0
    fresh = ng.Engine(load(nodes), sample_rate=SR, block_size=64)
    assert np.array_equal(engine.render(0.05), fresh.render(0.05))
    with pytest.raises(ng.ParameterError, match="connected"):
        engine.set_now("g0.in", 1.0)
    with pytest.raises(ng.ParameterError, match="must be <= 100000"):
        engine.set_now("osc.freq", 1e9)


def test_set_ramps_linearly_over_the_inputs_ramp_ms(load):
    nodes = {"m": {"type": "math.mul", "in": 1.0, "gain": 0.0}, "out": {"type": "io.output", "channels": 1, "in": "m"}}
    engine = raw_engine(load(nodes), SR, 64)
    ramp = int(round(engine.plan.nodes["m"].inputs()["gain"].ramp_ms * SR / 1000))
    assert ramp == 960  # 20 ms
    engine.render(0.01)
    engine.set("m.gain", 1.0)
    audio = raw_render(engine, 0.03)[0]
    np.testing.assert_allclose(audio[:ramp], np.arange(1, ramp + 1) / ramp, rtol=0, atol=1e-5)
    assert np.all(audio[ramp:] == 1.0)


def test_set_from_another_thread_lands_at_a_block_boundary(load):
    engine = ng.Engine(load(chain(0)), sample_rate=SR, block_size=64)
    worker = threading.Thread(target=lambda: [engine.set("osc.freq", 500.0 + i) for i in range(200)])
    worker.start()
    worker.join()
    audio = engine.render(1.0)
    assert peak_frequency(audio[0, SR // 2 :], SR) == pytest.approx(699.0, abs=1.0)


def test_a_faulting_node_is_bypassed_and_the_rest_keeps_sounding(load):
    nodes = {
        "osc": {"type": "osc.sine", "freq": 1000.0},
        "bad": {"type": "test.raiser", "after": 3, "in": "osc"},
        "good": {"type": "osc.sine", "freq": 3000.0},
        "sum": {"type": "math.add", "a": "bad", "b": "good"},
        "out": {"type": "io.output", "channels": 1, "in": "sum"},
    }
    engine = ng.Engine(load(nodes), sample_rate=SR, block_size=64)
    audio = engine.render(0.5)
    faults = engine.faults()
    assert [f.node for f in faults] == ["bad"] and "planted fault" in str(faults[0].error)
    assert peak_frequency(audio[0, 4800:], SR) == pytest.approx(3000.0, abs=1.0)
    assert engine.faults() == []  # reported once


def test_inputs_are_read_only(load):
    nodes = {
        "osc": {"type": "osc.sine"},
        "w": {"type": "test.input_writer", "in": "osc"},
        "out": {"type": "io.output", "in": "w"},
    }
    engine = ng.Engine(load(nodes), sample_rate=SR, block_size=64)
    engine.process()
    (fault,) = engine.faults()
    assert fault.node == "w" and "read-only" in str(fault.error)


def test_nan_inf_and_overs_never_reach_the_output(load):
    nodes = {"p": {"type": "test.poison"}, "out": {"type": "io.output", "in": "p"}}
    engine = ng.Engine(load(nodes), sample_rate=SR, block_size=64)
    block = engine.process()
    assert np.all(np.isfinite(block)) and np.max(np.abs(block)) <= 1.0
    assert block[0, 0] == 0.0 and block[0, 3] == 0.0 and block[0, 2] == 1.0
    assert engine.plan.guard.non_finite == 4 and engine.plan.guard.clipped == 2  # NaN, Inf; 1e6 per channel


@pytest.mark.parametrize("ceiling, expected", [(1.0, 1.0), (2.0, 1.5), (0.5, 0.5)])
def test_the_guard_limits_to_its_ceiling_exactly(load, ceiling, expected):
    nodes = {"l": {"type": "test.level", "value": 1.5}, "out": {"type": "io.output", "channels": 1, "in": "l"}}
    engine = ng.Engine(load(nodes), sample_rate=SR, block_size=16, ceiling=ceiling)
    engine.process()  # test.level ramps in over its first block
    clipped = engine.plan.guard.clipped
    assert np.all(engine.process() == np.float32(expected))
    assert engine.plan.guard.clipped - clipped == (16 if ceiling < 1.5 else 0)
    assert engine.plan.guard.peak == 1.5


def test_render_plays_a_reset_engine_identically(load):
    engine = ng.Engine(load(chain(2)), sample_rate=SR, block_size=64)
    first = engine.render(0.1)
    engine.reset()
    assert np.array_equal(first, engine.render(0.1))


def test_steady_state_blocks_allocate_nothing(load):
    nodes = chain(5)
    nodes["lfo"] = {"type": "osc.sine", "freq": 3.0}
    nodes["mod"] = {"type": "math.mul", "in": "g4", "gain": {"from": "lfo", "range": [0.2, 0.8], "curve": "exp"}}
    nodes["saw"] = {"type": "osc.saw", "freq": 110.0}
    nodes["mx"] = {"type": "mix", "count": 2, "in_1": "mod", "in_2": "saw", "gain_2": 0.3}
    nodes["fb"] = {"type": "math.add", "a": "mx", "b": {"from": "fb", "feedback": True}}
    nodes["out"] = {"type": "io.output", "channels": 2, "in": ["fb", "l"]}
    nodes["l"] = {"type": "test.level", "value": 0.1}
    engine = ng.Engine(load(nodes), sample_rate=SR, block_size=4096)
    engine.set("osc.freq", 500.0)  # a ramp in progress must not allocate either
    assert_no_allocations(engine.process, calls=40)


def test_diagnostic_blocks_allocate_nothing(load):
    """The blocks that look for the node emitting NaN run in the audio thread too."""
    nodes = chain(3)
    nodes["p"] = {"type": "test.poison"}  # NaN and Inf in every block: diagnosis stays on
    nodes["sum"] = {"type": "math.add", "a": "g2", "b": "p"}
    nodes["out"] = {"type": "io.output", "channels": 1, "in": "sum"}
    engine = ng.Engine(load(nodes), sample_rate=SR, block_size=4096)
    engine.process()
    assert engine.plan.diagnostic
    assert_no_allocations(engine.process, calls=40)
    assert engine.plan.diagnostic_blocks > 40
    assert [(b.node, b.non_finite, b.subnormal) for b in engine.bad_values()] == [
        ("p", 2 * engine.plan.diagnostic_blocks, engine.plan.diagnostic_blocks)
    ]


def test_engine_state_round_trip_replays_bit_for_bit(load):
    """save_state, render A, load_state, render B: A == B, through feedback, delays, mappings
    and a constant ramp in progress."""
    nodes = chain(2)
    nodes["lfo"] = {"type": "osc.sine", "freq": 3.0}
    nodes["lpf"] = {
        "type": "filter.lowpass",
        "in": "g1",
        "cutoff": {"from": "lfo", "range": [200.0, 4000.0], "curve": "exp"},
    }
    nodes["late"] = {"type": "test.latent", "in": "osc"}
    nodes["fb"] = {"type": "math.add", "a": "lpf", "b": {"from": "fb", "feedback": True}}
    nodes["mx"] = {"type": "math.add", "a": "fb", "b": "late"}
    nodes["out"] = {"type": "io.output", "channels": 1, "in": "mx"}
    engine = ng.Engine(load(nodes), sample_rate=SR, block_size=64)
    engine.render(0.05)
    engine.set("osc.freq", 300.0)
    engine.process()  # the ramp is under way when the state is saved
    saved = engine.save_state()
    first = engine.render(0.1)
    engine.load_state(saved)
    second = engine.render(0.1)
    np.testing.assert_array_equal(first, second)
    assert np.abs(first).max() > 0.05
    fresh = ng.Engine(load(nodes), sample_rate=SR, block_size=64)
    fresh.load_state(saved)  # another engine of the same patch continues from the snapshot
    np.testing.assert_array_equal(fresh.render(0.1), first)
    other = ng.Engine(load(chain(1)), sample_rate=SR, block_size=64)
    with pytest.raises(ValueError, match="another patch"):
        other.load_state(saved)


def test_the_allocation_check_trips_on_a_node_that_allocates(load):
    nodes = {
        "osc": {"type": "osc.sine"},
        "a": {"type": "test.allocating", "in": "osc"},
        "out": {"type": "io.output", "in": "a"},
    }
    engine = ng.Engine(load(nodes), sample_rate=SR, block_size=4096)
    with pytest.raises(AllocationError, match="allocated up to|made a numpy array"):
        assert_no_allocations(engine.process, calls=10)


@pytest.mark.parametrize("block", [1, 64])
@pytest.mark.parametrize("fuse", [True, False])
def test_the_allocation_check_sees_one_small_array_per_block_at_any_block_size(load, block, fuse):
    """1 KB per block hides under a byte tolerance (numba's argument boxing alone is 1-2 KB per
    block); counted numpy allocations see it at block 1 as at block 64."""
    nodes = {
        "osc": {"type": "osc.sine"},
        "lpf": {"type": "filter.lowpass", "in": "osc"},
        "a": {"type": "test.allocating_1k", "in": "lpf"},
        "out": {"type": "io.output", "in": "a"},
    }
    engine = ng.Engine(load(nodes), sample_rate=SR, block_size=block, fuse=fuse)
    with pytest.raises(AllocationError, match="made a numpy array of 1024 bytes in 10 of 10 calls"):
        assert_no_allocations(engine.process, calls=10)
    clean = ng.Engine(
        load({**nodes, "a": {"type": "math.mul", "in": "lpf"}}), sample_rate=SR, block_size=block, fuse=fuse
    )
    assert_no_allocations(clean.process, calls=10)
