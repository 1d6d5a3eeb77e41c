"""env.adsr / env.ar, lfo, control.smooth and control.slew against analytic references.

Signals are fed through a real patch: an ``io.input`` node carries the test signal (gates with
edges on chosen frames), ``Engine.render(input=...)`` feeds it block by block.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from analysis import raw_engine, raw_render

import neuralgraph as ng

SR = 48000


def render(
    nodes: dict,
    source: np.ndarray | None = None,
    *,
    seconds: float | None = None,
    block: int = 256,
    channels: int = 1,
    sample_rate: int = SR,
) -> tuple[np.ndarray, ng.Engine]:
    """Render ``nodes`` (their last stage named ``y``) with ``source`` on io.input ``src``."""
    nodes = dict(nodes)
    if source is not None:
        source = np.atleast_2d(np.asarray(source, np.float32))
        nodes["src"] = {"type": "io.input", "channels": source.shape[0]}
        seconds = source.shape[1] / sample_rate
    nodes["out"] = {"type": "io.output", "channels": channels, "in": "y"}
    engine = raw_engine(ng.load_patch({"schema": 1, "nodes": nodes}), sample_rate, block)
    return raw_render(engine, seconds, input=source), engine


def gate(length: int, *spans: tuple[int, int], lanes: int = 1) -> np.ndarray:
    """A gate signal that is 1 on each half-open frame span [on, off)."""
    g = np.zeros((lanes, length), np.float32)
    for on, off in spans:
        g[:, on:off] = 1.0
    return g


def adsr(**params) -> dict:
    return {"y": {"type": "env.adsr", "gate": "src", **params}}


# ---- env.adsr ------------------------------------------------------------------------------------


def test_linear_adsr_segments_land_on_their_frames():
    on, off = 1000, 6000  # both mid-block at block 256
    n_a, n_d, n_r = 480, 960, 2400  # 10, 20, 50 ms at 48 kHz
    audio, _ = render(
        adsr(attack_ms=10.0, decay_ms=20.0, sustain=0.6, release_ms=50.0, curve="lin"), gate(10000, (on, off))
    )
    y = audio[0].astype(np.float64)
    assert np.all(y[:on] == 0.0)
    # the edge frame is the first attack step; the attack's last step is exactly 1
    assert y[on] == pytest.approx(1.0 / n_a, rel=1e-5)
    assert y[on + n_a - 2] < 1.0 and y[on + n_a - 1] == 1.0
    assert np.allclose(y[on : on + n_a], np.arange(1, n_a + 1) / n_a, atol=1e-6)
    # decay: 1 -> sustain in n_d frames, then the sustain level exactly
    decay_end = on + n_a + n_d - 1
    assert y[decay_end - 1] > 0.6
    assert np.all(y[decay_end:off] == np.float32(0.6))
    # release: from 0.6 to 0 in n_r frames from the falling edge's frame
    assert y[off] == pytest.approx(0.6 - 0.6 / n_r, rel=1e-5)
    assert y[off + n_r - 2] > 0.0 and np.all(y[off + n_r - 1 :] == 0.0)


def test_exponential_adsr_follows_the_rc_curve_and_keeps_segment_times():
    on, off = 700, 7000
    n_a, n_d, n_r = 480, 1440, 4800
    sustain = 0.5
    audio, _ = render(
        adsr(attack_ms=10.0, decay_ms=30.0, sustain=sustain, release_ms=100.0, curve="exp"), gate(14000, (on, off))
    )
    y = audio[0].astype(np.float64)
    # attack: an exponential aimed 30 % past 1, arriving at 1 on its last step
    r = 0.3
    c = (r / (1 + r)) ** (1 / n_a)
    k = np.arange(1, n_a + 1)
    expected = (1 + r) * (1 - c**k)
    assert np.allclose(y[on : on + n_a], expected, atol=1e-5)
    assert y[on + n_a - 2] < 1.0 and y[on + n_a - 1] == 1.0
    # decay reaches the sustain level exactly after n_d frames and stays there
    assert np.all(y[on + n_a + n_d - 1 : off] == np.float32(sustain))
    assert y[on + n_a + n_d - 2] > sustain
    # release: y + r*y0 decays with time constant n_r / ln((1 + r) / r), r = 0.001
    r = 0.001
    seg = y[off : off + n_r // 2] + r * sustain
    slope = np.polyfit(np.arange(1, len(seg) + 1), np.log(seg), 1)[0]
    tau_expected = n_r / math.log((1 + r) / r)
    assert -1.0 / slope == pytest.approx(tau_expected, rel=1e-3)
    print(f"release time constant {-1000.0 / slope / SR:.3f} ms (expected {1000 * tau_expected / SR:.3f} ms)")
    assert y[off + n_r - 2] > 0.0 and np.all(y[off + n_r - 1 :] == 0.0)


@pytest.mark.parametrize("block", [1, 64, 100, 256])
def test_gate_edges_act_on_their_frame_whatever_the_block_size(block):
    # edges on block boundaries and inside blocks; the result must not depend on the block size
    g = gate(3000, (63, 64 + 700), (1280, 1281), (2001, 2600))
    audio, _ = render(adsr(attack_ms=2.0, decay_ms=5.0, sustain=0.5, release_ms=4.0), g, block=block)
    reference, _ = render(adsr(attack_ms=2.0, decay_ms=5.0, sustain=0.5, release_ms=4.0), g, block=3000)
    assert np.array_equal(audio, reference)
    y = audio[0]
    for edge in (63, 2001):
        assert y[edge - 1] == 0.0 or y[edge - 1] < y[edge]  # rises on the edge frame itself
    assert y[62] == 0.0 and y[63] > 0.0
    assert y[763] == np.float32(0.5) and y[764] < y[763]  # the falling edge at 764 releases on frame 764
    assert y[1279] == 0.0 and y[1280] > 0.0 and y[1281] < y[1280]  # a one-frame gate: one attack step


def test_retrigger_restarts_the_attack_from_the_current_level():
    n_a = 480
    g = gate(6000, (100, 2000), (2200, 5000))  # gate again 200 frames into the release
    audio, _ = render(adsr(attack_ms=10.0, decay_ms=10.0, sustain=0.8, release_ms=100.0, curve="lin"), g)
    y = audio[0]
    level = y[2199]
    assert 0.5 < level < 0.8
    assert y[2200] > level  # continues upward from where it was: no drop, no click
    assert y[2200] - level == pytest.approx((1.0 - level) / n_a, rel=1e-4)
    assert y[2200 + n_a - 1] == 1.0
    hard, _ = render(
        adsr(attack_ms=10.0, decay_ms=10.0, sustain=0.8, release_ms=100.0, curve="lin", hard_retrigger=True), g
    )
    assert hard[0, 2200] == pytest.approx(1.0 / n_a, rel=1e-4)


def test_lanes_run_their_own_envelopes():
    g = np.zeros((2, 4000), np.float32)
    g[0, 500:3000] = 1.0
    g[1, 1500:2000] = 1.0
    audio, _ = render(adsr(attack_ms=1.0, decay_ms=1.0, sustain=0.5, release_ms=1.0, curve="lin"), g, channels=2)
    assert audio[0, 499] == 0.0 and audio[0, 500] > 0.0 and audio[1, 1499] == 0.0 and audio[1, 1500] > 0.0
    assert audio[1, 1000] == 0.0 and audio[0, 1000] == np.float32(0.5)
    assert np.all(audio[1, 2048:] == 0.0) and audio[0, 2500] == np.float32(0.5)


def test_live_times_apply_to_later_segments():
    g = gate(20000, (100, 3000), (10000, 15000))
    nodes = adsr(attack_ms=10.0, decay_ms=10.0, sustain=1.0, release_ms=10.0, curve="lin")
    nodes["src"] = {"type": "io.input", "channels": 1}
    nodes["out"] = {"type": "io.output", "channels": 1, "in": "y"}
    engine = ng.Engine(ng.load_patch({"schema": 1, "nodes": nodes}), sample_rate=SR, block_size=500)
    first = engine.render(5000 / SR, input=g[:, :5000])
    engine.set("y.attack_ms", 20.0)
    second = engine.render(15000 / SR, input=g[:, 5000:])
    assert first[0, 100 + 479] == 1.0 and first[0, 100 + 478] < 1.0
    assert second[0, 5000 + 959] == 1.0 and second[0, 5000 + 958] < 1.0  # 20 ms = 960 frames now


@pytest.mark.parametrize("curve", ["lin", "exp"])
@pytest.mark.parametrize(
    "stage, param, spans, change_at, end_level",
    [
        ("release", "release_ms", ((100, 1000),), 1000 + 4800, 0.0),  # gate off at 1000, 2 s release
        ("attack", "attack_ms", ((100, 200000),), 100 + 4800, 1.0),
        ("decay", "decay_ms", ((100, 200000),), 100 + 240 + 4800, 0.5),  # attack 5 ms, then the decay
    ],
)
def test_a_live_segment_time_changes_the_running_segment(curve, stage, param, spans, change_at, end_level):
    # a 2 s segment, 100 ms in, is set to 100 ms: the 95 % still to go takes 95 % of the new time
    times = {"attack_ms": 5.0, "decay_ms": 5.0, "release_ms": 5.0, param: 2000.0}
    nodes = adsr(sustain=0.5, curve=curve, **times)
    nodes["src"] = {"type": "io.input", "channels": 1}
    nodes["out"] = {"type": "io.output", "channels": 1, "in": "y"}
    # block 20 divides every change point, so the change lands exactly there
    engine = ng.Engine(ng.load_patch({"schema": 1, "nodes": nodes}), sample_rate=SR, block_size=20)
    g = gate(change_at + 20000, *spans)
    before = engine.render(change_at / SR, input=g[:, :change_at])[0]
    engine.set(f"y.{param}", 100.0)
    after = engine.render(20000 / SR, input=g[:, change_at:])[0]
    rest = round(0.95 * 4800)  # frames left: (96000 - 4800) / 96000 of the new 4800
    assert after[rest - 1] == np.float32(end_level) and after[rest - 2] != np.float32(end_level)
    assert abs(float(after[0]) - float(before[-1])) < 0.01  # no jump where the time changed
    if curve == "lin":  # straight on from where it was to the end level
        start = float(before[-1])
        expected = start + (end_level - start) * np.arange(1, rest + 1) / rest
        np.testing.assert_allclose(after[:rest], expected, atol=1e-6)


def test_ar_rises_holds_and_falls():
    audio, _ = render(
        {"y": {"type": "env.ar", "gate": "src", "attack_ms": 5.0, "release_ms": 10.0, "curve": "lin"}},
        gate(3000, (200, 1500)),
    )
    y = audio[0]
    assert y[200 + 239] == 1.0 and y[200 + 238] < 1.0
    assert np.all(y[200 + 239 : 1500] == 1.0)
    assert y[1500 + 479] == 0.0 and y[1500 + 478] > 0.0


def test_envelope_reset_returns_to_silence():
    _, engine = render(adsr(attack_ms=1.0), gate(2000, (10, 1990)))
    assert engine.plan.nodes["y"].level[0] > 0.0
    engine.reset()
    again = engine.render(0.01, input=np.zeros((1, 480), np.float32))
    assert np.all(again == 0.0)


# ---- lfo --------------------------------------------------------------------------------------


def rising_crossings(y: np.ndarray) -> np.ndarray:
    """Fractional frame positions where ``y`` crosses 0 upwards (linear interpolation)."""
    idx = np.flatnonzero((y[:-1] < 0.0) & (y[1:] >= 0.0))
    return idx + (-y[idx] / (y[idx + 1] - y[idx]))


@pytest.mark.parametrize("shape", ["sine", "triangle", "saw", "square"])
def test_lfo_frequency_by_zero_crossings(shape):
    rate = 37.0
    audio, _ = render({"y": {"type": "lfo", "rate": rate, "shape": shape, "phase": 0.1}}, seconds=1.0)
    y = audio[0].astype(np.float64)
    crossings = rising_crossings(y)
    assert len(crossings) == 37
    period = np.mean(np.diff(crossings))
    assert SR / period == pytest.approx(rate, rel=2e-4 if shape != "square" else 2e-3)
    assert y.max() == pytest.approx(1.0, abs=1e-3) and y.min() == pytest.approx(-1.0, abs=1e-3)


def test_lfo_shapes_have_their_analytic_values():
    rate = 10.0  # 4800 frames per cycle
    frames = np.arange(4800)
    p = frames / 4800.0
    expected = {
        "sine": np.sin(2 * np.pi * p),
        "triangle": np.where(p < 0.25, 4 * p, np.where(p < 0.75, 2 - 4 * p, 4 * p - 4)),
        "saw": 2 * p - 1,
        "square": np.where(p < 0.5, 1.0, -1.0),
    }
    # where a jump falls exactly on a frame, phase rounding may put it one frame either side
    away_from_jumps = (np.abs(p - 0.5) > 1.5 / 4800) & (p > 1.5 / 4800) & (p < 1 - 1.5 / 4800)
    for shape, ref in expected.items():
        audio, _ = render({"y": {"type": "lfo", "rate": rate, "shape": shape}}, seconds=0.1)
        assert np.allclose(audio[0][away_from_jumps], ref[away_from_jumps], atol=1e-5), shape


def test_sample_and_hold_is_seeded_stepped_and_in_range():
    def run(seed: int) -> np.ndarray:
        return render({"y": {"type": "lfo", "rate": 20.0, "shape": "sample_hold", "seed": seed}}, seconds=0.5)[0][0]

    a, b, c = run(7), run(7), run(8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    changes = np.flatnonzero(np.diff(a)) + 1  # 20 Hz: a new value every 2400 frames, held in between
    assert len(changes) == 9
    assert np.all(np.abs(changes - 2400 * np.arange(1, 10)) <= 1)
    assert len(np.unique(a)) == 10
    assert a.min() >= -1.0 and a.max() < 1.0


# ---- control.smooth / control.slew ------------------------------------------------------------------


def test_smooth_step_response_has_its_time_constant():
    step = np.zeros((1, 9600), np.float32)
    step[0, 4800:] = 1.0
    audio, _ = render({"y": {"type": "control.smooth", "in": "src", "time_ms": 10.0}}, step)
    y = audio[0].astype(np.float64)
    assert np.all(y[:4800] == 0.0)
    tau = 480  # frames
    assert y[4800 + tau - 1] == pytest.approx(1.0 - math.exp(-1.0), abs=2e-3)
    assert y[4800 + 5 * tau] == pytest.approx(1.0, abs=1e-2)


def test_smooth_passes_the_first_value_without_gliding_in():
    audio, _ = render({"y": {"type": "control.smooth", "in": 0.75, "time_ms": 50.0}}, seconds=0.01)
    assert np.all(audio == np.float32(0.75))


def test_slew_limits_rise_and_fall_rates():
    step = np.zeros((1, 24000), np.float32)
    step[0, 1000:12000] = 1.0
    audio, _ = render({"y": {"type": "control.slew", "in": "src", "rise_per_s": 10.0, "fall_per_s": 40.0}}, step)
    y = audio[0].astype(np.float64)
    rise = 4800  # 1 / 10 per second = 0.1 s
    assert y[1000] == pytest.approx(1.0 / rise, rel=1e-4)
    assert y[1000 + rise // 2 - 1] == pytest.approx(0.5, abs=1e-4)
    assert y[1000 + rise - 2] < 1.0 and y[1000 + rise - 1] == pytest.approx(1.0, abs=1e-6)
    fall = 1200  # 1 / 40 per second
    assert y[12000 + fall // 2 - 1] == pytest.approx(0.5, abs=1e-4)
    assert np.all(np.abs(y[12000 + fall + 1 :]) < 1e-6)


def test_lfo_sync_edge_restarts_the_cycle_on_its_frame():
    sync = gate(6000, (1000, 1100), (3333, 3400))
    audio, _ = render({"y": {"type": "lfo", "rate": 7.0, "shape": "saw", "sync": "src"}}, sync, block=128)
    y = audio[0].astype(np.float64)
    # the saw starts at -1 on each edge frame and then rises at 2 × 7 / 48000 per frame
    for edge in (1000, 3333):
        assert y[edge] == -1.0 and y[edge - 1] > -1.0
        assert np.allclose(y[edge : edge + 500], -1.0 + 2 * 7.0 * np.arange(500) / SR, atol=1e-5)
    held, _ = render({"y": {"type": "lfo", "rate": 0.5, "shape": "sample_hold", "sync": "src"}}, sync)
    changes = np.flatnonzero(np.diff(held[0])) + 1
    assert changes.tolist() == [1000, 3333]  # a new value on each sync edge, none in between


def test_midi_notes_gate_the_envelope_on_their_frames():
    nodes = {
        "keys": {"type": "midi.voices", "count": 2},
        "env": {
            "type": "env.adsr",
            "gate": "keys.gate",
            "attack_ms": 1.0,
            "decay_ms": 1.0,
            "sustain": 0.5,
            "release_ms": 2.0,
            "curve": "lin",
        },
        "out": {"type": "io.output", "channels": 2, "in": "env"},
    }
    engine = ng.Engine(ng.load_patch({"schema": 1, "nodes": nodes}), sample_rate=SR, block_size=256)
    assert np.all(engine.process() == 0.0)
    engine.send_midi(0x90, 60, 100, frame=100)  # note on, mid-block
    block = engine.process().copy()
    voice = int(np.argmax(block[:, -1]))
    assert block[voice, 99] == 0.0 and block[voice, 100] == pytest.approx(1.0 / 48, rel=1e-4)
    assert block[voice, 100 + 47] == 1.0 and np.all(block[1 - voice] == 0.0)
    engine.send_midi(0x80, 60, 0, frame=17)  # note off in the next block
    block = engine.process().copy()
    assert block[voice, 16] == np.float32(0.5) and block[voice, 17] == pytest.approx(0.5 - 0.5 / 96, rel=1e-4)
    assert block[voice, 17 + 95] == 0.0 and block[voice, 17 + 94] > 0.0


def test_sustain_changed_during_the_decay_glides_without_a_jump():
    nodes = adsr(attack_ms=1.0, decay_ms=40.0, sustain=0.8, release_ms=10.0, curve="lin")
    nodes["src"] = {"type": "io.input", "channels": 1}
    nodes["out"] = {"type": "io.output", "channels": 1, "in": "y"}
    engine = ng.Engine(ng.load_patch({"schema": 1, "nodes": nodes}), sample_rate=SR, block_size=256)
    on = np.ones((1, 48000), np.float32)
    first = engine.render(1024 / SR, input=on[:, :1024])  # mid-decay (decay ends at frame 48 + 1920)
    engine.set("y.sustain", 0.2)
    second = engine.render(0.2, input=on[:, 1024:])
    y = np.concatenate([first[0], second[0]]).astype(np.float64)
    # the largest move is the 5 ms glide's first step, 0.6 / 240; snapping to the new level would jump 0.6
    assert np.max(np.abs(np.diff(y[48:]))) <= 0.6 / 240 + 1e-6
    assert y[-1] == pytest.approx(0.2, abs=1e-6)
