"""fx.gain, fx.pan, fx.waveshape, fx.delay, fx.chorus, fx.reverb and fx.limiter against analytic references,
rendered through real patches; a WAV round trip through ``neuralgraph render``; zero allocation per block."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from analysis import assert_raw, raw_engine, raw_render

import neuralgraph as ng
from neuralgraph.testing import assert_no_allocations

SR = 48000
ROOT = Path(__file__).resolve().parent.parent


def engine_for(
    nodes: dict, *, channels: int = 1, in_channels: int = 1, block: int = 256, sample_rate: int = SR
) -> ng.Engine:
    """An engine for ``nodes`` whose last stage is ``y``, fed by io.input ``src`` when a node uses it."""
    nodes = dict(nodes)
    nodes.setdefault("src", {"type": "io.input", "channels": in_channels})
    nodes["out"] = {"type": "io.output", "channels": channels, "in": "y"}
    return raw_engine(ng.load_patch({"schema": 1, "nodes": nodes}), sample_rate, block)  # the node, not the guard


def render(nodes: dict, source: np.ndarray, **kw) -> np.ndarray:
    source = np.atleast_2d(np.asarray(source, np.float32))
    engine = engine_for(nodes, in_channels=source.shape[0], **kw)
    audio = engine.render(source.shape[1] / engine.sample_rate, input=source)
    assert_raw(engine)
    return audio


def impulse(length: int, at: int, amplitude: float = 1.0) -> np.ndarray:
    x = np.zeros((1, length), np.float32)
    x[0, at] = amplitude
    return x


# ---- gain, pan, waveshape ---------------------------------------------------------------------------


def test_gain_in_db_is_exact_from_the_first_sample():
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (1, 2000)).astype(np.float32)
    y = render({"y": {"type": "fx.gain", "in": "src", "gain_db": -6.0205999}}, x)
    assert np.allclose(y, x * 0.5, rtol=1e-5, atol=1e-7)


def test_gain_change_is_smoothed_without_a_jump():
    engine = engine_for({"y": {"type": "fx.gain", "in": 1.0, "gain_db": 0.0, "smooth_ms": 5.0}}, block=128)
    before = engine.render(0.01)
    engine.set("y.gain_db", -20.0)
    after = engine.render(0.2)
    assert np.all(before == 1.0)
    steps = np.abs(np.diff(np.concatenate([before[0], after[0]])))
    assert steps.max() < 0.01  # a 0.9 drop spread over tens of milliseconds, never a step
    assert after[0, -1] == pytest.approx(0.1, rel=1e-3)


def test_pan_is_equal_power_across_the_sweep():
    # a constant 1.0 panned by a slow saw LFO sweeping -1..1
    y = engine_for(
        {"p": {"type": "lfo", "shape": "saw", "rate": 5.0}, "y": {"type": "fx.pan", "in": 0.8, "pan": "p"}}, channels=2
    ).render(0.2)
    power = y[0].astype(np.float64) ** 2 + y[1].astype(np.float64) ** 2
    assert np.allclose(power, 0.64, rtol=1e-5)
    assert y[0, 0] == pytest.approx(0.8, abs=1e-6) and abs(y[1, 0]) < 1e-6  # pan = -1 at the start: hard left
    centre = np.argmin(np.abs(y[0] - y[1])[:9600])
    assert y[0, centre] == pytest.approx(0.8 / math.sqrt(2), abs=2e-3)  # -3 dB each side in the middle


def test_pan_accepts_only_one_lane():
    with pytest.raises(ng.NeuralgraphError, match="lane mismatch"):
        engine_for({"y": {"type": "fx.pan", "in": "src"}}, channels=2, in_channels=2)


@pytest.mark.parametrize(
    "shape,drive,reference",
    [
        ("tanh", 1.0, np.tanh),
        ("tanh", 4.0, lambda x: np.tanh(4.0 * x)),
        ("clip", 2.0, lambda x: np.clip(2.0 * x, -1.0, 1.0)),
        ("fold", 3.0, lambda x: 1.0 - np.abs(np.mod(3.0 * x + 1.0, 4.0) - 2.0)),
    ],
)
def test_waveshape_transfer_curves(shape, drive, reference):
    x = np.linspace(-1.5, 1.5, 3001, dtype=np.float32)[None, :]
    y = render({"y": {"type": "fx.waveshape", "in": "src", "drive": drive, "shape": shape}}, x)
    assert np.allclose(y, reference(x.astype(np.float64)), atol=2e-6)


def test_fold_is_identity_inside_and_reflects_outside():
    y = render({"y": {"type": "fx.waveshape", "in": "src", "shape": "fold"}}, [[0.5, -0.9, 1.2, 1.5, -1.25, 3.0]])
    assert np.allclose(y, [[0.5, -0.9, 0.8, 0.5, -0.75, -1.0]], atol=1e-6)


# ---- delay ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [64, 256])
def test_delay_returns_an_impulse_at_exactly_the_set_time(block):
    y = render({"y": {"type": "fx.delay", "in": "src", "time_ms": 10.0, "mix": 1.0}}, impulse(4000, 100), block=block)
    assert np.flatnonzero(y[0]).tolist() == [100 + 480]  # 10 ms = 480 frames at 48 kHz
    assert y[0, 580] == 1.0


def test_fractional_delay_interpolates_between_frames():
    time_ms = 480.25 * 1000.0 / SR
    y = render({"y": {"type": "fx.delay", "in": "src", "time_ms": time_ms, "mix": 1.0}}, impulse(2000, 100))[0]
    assert np.flatnonzero(y).tolist() == [580, 581]
    assert y[580] == pytest.approx(0.75, abs=1e-4) and y[581] == pytest.approx(0.25, abs=1e-4)
    centroid = np.sum(np.arange(len(y)) * y) / np.sum(y)
    assert centroid == pytest.approx(580.25, abs=1e-3)


def test_fractional_delay_shifts_a_sine_by_its_phase():
    f, d = 1000.0, 37.3  # frames
    n = np.arange(9600)
    x = np.sin(2 * np.pi * f * n / SR).astype(np.float32)[None, :]
    y = render({"y": {"type": "fx.delay", "in": "src", "time_ms": d * 1000.0 / SR, "mix": 1.0}}, x)[0]
    ref = np.sin(2 * np.pi * f * (n - d) / SR)
    # linear interpolation: exact phase, amplitude within its known loss at 1 kHz (< 0.1 %)
    assert np.max(np.abs(y[200:] - ref[200:])) < 2e-3


def test_delay_feedback_decays_as_set():
    y = render(
        {"y": {"type": "fx.delay", "in": "src", "time_ms": 5.0, "feedback": 0.6, "mix": 1.0}}, impulse(2500, 10)
    )[0]
    echoes = y[10 + 240 * np.arange(1, 8)]
    assert np.allclose(echoes, 0.6 ** np.arange(7), rtol=1e-5)
    mask = np.ones_like(y, bool)
    mask[10 + 240 * np.arange(1, 11)] = False
    assert np.all(y[mask] == 0.0)


def test_delay_mix_blends_dry_and_delayed():
    y = render({"y": {"type": "fx.delay", "in": "src", "time_ms": 1.0, "mix": 0.25}}, impulse(200, 10))[0]
    assert y[10] == pytest.approx(0.75) and y[58] == pytest.approx(0.25)


def test_delay_time_is_held_within_max_ms():
    y = render({"y": {"type": "fx.delay", "in": "src", "time_ms": 50.0, "max_ms": 10.0, "mix": 1.0}}, impulse(3000, 0))[
        0
    ]
    assert np.flatnonzero(y).tolist() == [480]


def test_modulated_delay_bends_the_pitch():
    # time falling at 0.1 ms per ms (a -10 % slope) raises a sine's frequency by 10 %
    n = 48000
    x = np.sin(2 * np.pi * 500.0 * np.arange(n) / SR).astype(np.float32)[None, :]
    y = render(
        {
            "t": {"type": "lfo", "shape": "saw", "rate": 1.0, "phase": 0.5},
            "y": {
                "type": "fx.delay",
                "in": "src",
                "time_ms": {"from": "t", "range": [100.0, 0.0]},
                "mix": 1.0,
                "max_ms": 200.0,
            },
        },
        x,
    )[0]
    seg = y[4800:40000].astype(np.float64)
    ups = np.flatnonzero((seg[:-1] < 0) & (seg[1:] >= 0))
    freq = SR / np.mean(np.diff(ups))
    assert freq == pytest.approx(550.0, rel=2e-3)


# ---- chorus ------------------------------------------------------------------------------------------------


def test_chorus_without_sweep_is_its_centre_delay_and_dry_at_mix_zero():
    y = render(
        {"y": {"type": "fx.chorus", "in": "src", "delay_ms": 10.0, "depth_ms": 0.0, "mix": 1.0}}, impulse(2000, 30)
    )[0]
    assert np.flatnonzero(y).tolist() == [30 + 480] and y[510] == pytest.approx(1.0)
    x = np.random.default_rng(2).normal(0, 0.3, (1, 3000)).astype(np.float32)
    dry = render({"y": {"type": "fx.chorus", "in": "src", "mix": 0.0}}, x)
    assert np.array_equal(dry, x)


def test_chorus_sweeps_the_delay_and_decorrelates_stereo_lanes():
    n = 48000
    x = np.sin(2 * np.pi * 440.0 * np.arange(n) / SR).astype(np.float32)
    stereo = np.stack([x, x])
    y = render(
        {"y": {"type": "fx.chorus", "in": "src", "mix": 1.0, "voices": 1, "rate": 2.0, "depth_ms": 2.0}},
        stereo,
        channels=2,
    )
    assert 0.5 < np.max(np.abs(y)) <= 1.0 + 1e-6  # render() fails on NaN/Inf
    assert not np.allclose(y[0], y[1], atol=1e-2)  # the lanes sweep a quarter cycle apart
    # frequency modulation: the instantaneous period wanders around 440 Hz's by the sweep's slope
    a = y[0].astype(np.float64)
    ups = np.flatnonzero((a[:-1] < 0) & (a[1:] >= 0))
    ups = ups + (-a[ups] / (a[ups + 1] - a[ups]))  # interpolated crossing positions
    freqs = SR / np.diff(ups)
    peak = 440.0 * 2 * np.pi * 2.0 * 2.0e-3  # f * 2π rate * depth
    assert freqs.max() - 440.0 == pytest.approx(peak, rel=0.15)


# ---- reverb -----------------------------------------------------------------------------------------------


def rt60(ir: np.ndarray, sample_rate: float) -> float:
    """RT60 from the Schroeder energy decay curve, fitted between -5 and -25 dB (T20 × 3)."""
    energy = np.cumsum((ir.astype(np.float64) ** 2)[::-1])[::-1]
    edc = 10 * np.log10(energy / energy[0])
    idx = np.flatnonzero((edc <= -5) & (edc >= -25))
    slope = np.polyfit(idx / sample_rate, edc[idx], 1)[0]
    return -60.0 / slope


def reverb_ir(room: float, seconds: float = 2.5, damping: float = 0.5) -> np.ndarray:
    return render(
        {"y": {"type": "fx.reverb", "in": "src", "room_size": room, "damping": damping, "mix": 1.0}},
        impulse(int(seconds * SR), 0),
        channels=2,
        block=512,
    )


def test_reverb_decays_with_a_plausible_rt60_growing_with_room_size():
    small, large = reverb_ir(0.5), reverb_ir(0.85)
    for ir in (small, large):
        head, tail = np.sum(ir[:, : SR // 4] ** 2), np.sum(ir[:, -SR // 4 :] ** 2)
        assert tail < head * 1e-2  # it dies away
    t_small, t_large = rt60(small[0], SR), rt60(large[0], SR)
    print(f"RT60 room 0.5: {t_small:.2f} s, room 0.85: {t_large:.2f} s")
    # comb theory: RT60 = -3 × delay / log10(feedback) with Freeverb's mean comb delay (31 ms)
    mean_delay = np.mean([1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617]) / 44100.0
    for room, measured in ((0.5, t_small), (0.85, t_large)):
        predicted = -3.0 * mean_delay / math.log10(room * 0.28 + 0.7)
        assert 0.5 * predicted < measured < 1.2 * predicted  # damping only shortens it
    assert 0.4 < t_small < 3.0 and t_large > 1.5 * t_small


def test_reverb_is_stereo_and_dry_at_mix_zero():
    ir = reverb_ir(0.6, seconds=0.5)
    left, right = ir[0, 2000:], ir[1, 2000:]
    corr = np.dot(left, right) / math.sqrt(np.dot(left, left) * np.dot(right, right))
    assert abs(corr) < 0.5  # the 23-sample spread decorrelates the sides
    # fully wet (mix 1): nothing of the dry impulse, only the combs' echoes (the shortest is 1116
    # samples at 44.1 kHz)
    assert np.all(ir[:, :1000] == 0.0) and np.abs(ir[:, 1000:]).max() > 0.01
    x = np.random.default_rng(3).normal(0, 0.2, (2, 4000)).astype(np.float32)
    dry = render({"y": {"type": "fx.reverb", "in": "src", "mix": 0.0}}, x, channels=2)
    assert np.array_equal(dry, x)


# ---- limiter ---------------------------------------------------------------------------------------------------


def test_limiter_latency_equals_the_measured_impulse_delay():
    engine = engine_for({"y": {"type": "fx.limiter", "in": "src", "lookahead_ms": 2.5}})
    assert engine.latency == 120  # 2.5 ms at 48 kHz
    y = engine.render(2000 / SR, input=impulse(2000, 300, 0.25))[0]
    assert np.flatnonzero(y).tolist() == [300 + engine.latency] and y[420] == pytest.approx(0.25)


def test_limiter_never_exceeds_its_ceiling():
    rng = np.random.default_rng(4)
    n = 24000
    x = (np.sin(2 * np.pi * 110.0 * np.arange(n) / SR) * np.linspace(0.2, 4.0, n)).astype(np.float32)
    x[5000] = 12.0  # a lone spike
    x[15000:15010] = -9.0
    x += rng.normal(0, 0.05, n).astype(np.float32)
    y = render({"y": {"type": "fx.limiter", "in": "src", "ceiling_db": -3.0, "release_ms": 50.0}}, x[None, :])[0]
    ceiling = 10 ** (-3.0 / 20)
    assert np.max(np.abs(y)) <= ceiling
    assert np.max(np.abs(y)) > 0.99 * ceiling  # and it does reach it
    quiet = y[240:2000] / x[:1760]  # well below the ceiling at the start: untouched, just delayed
    assert np.allclose(quiet[np.abs(x[:1760]) > 0.05], 1.0, atol=1e-5)


def test_limiter_gain_falls_before_the_peak_without_a_step():
    x = np.full((1, 6000), 0.1, np.float32)
    x[0, 3000] = 2.0
    y = render({"y": {"type": "fx.limiter", "in": "src", "ceiling_db": 0.0, "lookahead_ms": 5.0}}, x)[0]
    look = 240
    assert y[3000 + look] == pytest.approx(1.0, abs=1e-6)  # the peak exactly at the ceiling
    ramp = y[3000 : 3000 + look] / 0.1  # the gain in the look-ahead before it: a linear fade 1 -> 0.5
    assert np.allclose(ramp, np.linspace(1.0, 0.5, look + 1)[1:], atol=1e-4)


def test_compiler_aligns_a_dry_path_with_the_limiter():
    nodes = {
        "lim": {"type": "fx.limiter", "in": "src", "lookahead_ms": 1.0},
        "y": {"type": "math.add", "a": "lim", "b": "src"},
    }
    engine = engine_for(nodes)
    y = engine.render(1000 / SR, input=impulse(1000, 100, 0.25))[0]
    assert engine.latency == 48
    assert np.flatnonzero(y).tolist() == [148] and y[148] == pytest.approx(0.5)


# ---- no allocation in process ----------------------------------------------------------------------------------

ALL_NODES = {
    "lfo": {"type": "lfo", "rate": 3.0},
    "sh": {"type": "lfo", "rate": 7.0, "shape": "sample_hold"},
    "env": {"type": "env.adsr", "gate": {"from": "lfo", "range": [0.0, 1.0]}},
    "ar": {"type": "env.ar", "gate": "env"},
    "sm": {"type": "control.smooth", "in": "sh"},
    "sl": {"type": "control.slew", "in": "sm"},
    "rng": {"type": "map.range", "in": "sl", "in_lo": -1.0, "in_hi": 1.0, "out_lo": 48.0, "out_hi": 72.0},
    "q": {"type": "map.quantize", "in": "rng"},
    "hz": {"type": "map.midi_to_hz", "in": "q"},
    "cl": {"type": "map.clamp", "in": "hz", "lo": 100.0, "hi": 800.0},
    "osc": {"type": "osc.sine", "freq": "cl"},
    "db": {"type": "map.db_to_gain", "in": -6.0},
    "sub": {"type": "math.sub", "a": "osc", "b": "ar"},
    "abs": {"type": "math.abs", "in": "sub"},
    "mn": {"type": "math.min", "a": "abs", "b": "db"},
    "mx": {"type": "math.max", "a": "mn", "b": "osc"},
    "ws": {"type": "fx.waveshape", "in": "mx", "drive": 2.0},
    "g": {"type": "fx.gain", "in": "ws", "gain_db": -3.0},
    "pan": {"type": "fx.pan", "in": "g", "pan": "lfo"},
    "dl": {"type": "fx.delay", "in": "pan", "time_ms": {"from": "lfo", "range": [20.0, 30.0]}, "feedback": 0.3},
    "ch": {"type": "fx.chorus", "in": "dl"},
    "rv": {"type": "fx.reverb", "in": "ch"},
    "y": {"type": "fx.limiter", "in": "rv"},
}


@pytest.mark.parametrize("block", [64, 4096])
def test_nodes_do_not_allocate_per_block(block):
    engine = engine_for(ALL_NODES, channels=2, block=block)
    plan = engine.plan
    mine = {name for name in ALL_NODES}
    steps = [step for step, name in zip(plan.steps, plan.step_names) if name in mine]
    assert len(steps) == len(ALL_NODES)

    def run() -> None:
        for process, ins, outs in steps:
            process(ins, outs, block)

    assert_no_allocations(run, calls=50)


def test_nodes_reset_to_their_initial_state():
    engine = engine_for(ALL_NODES, channels=2, block=128)
    first = engine.render(0.3)
    engine.reset()
    assert np.array_equal(engine.render(0.3), first)


# ---- WAV round trip through the command line ------------------------------------------------------------------


def test_pluck_delay_patch_renders_to_a_wav_file(tmp_path):
    out = tmp_path / "pluck.wav"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "neuralgraph",
            "render",
            str(ROOT / "graphs" / "pluck_delay.toml"),
            "-o",
            str(out),
            "--seconds",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    audio, rate = sf.read(out, dtype="float32", always_2d=True)
    assert rate == 48000 and audio.shape == (3 * 48000, 2)
    assert np.all(np.isfinite(audio))
    peak = np.max(np.abs(audio))
    assert 0.05 < peak <= 10 ** (-1.0 / 20) + 1e-4  # audible, and under the limiter's -1 dB ceiling
    # plucks: the level rises and falls with each note (4 per second), it is not a drone
    env = np.sqrt(np.mean(audio[:, 0].reshape(-1, 480) ** 2, axis=1))  # 10 ms RMS frames
    assert env.max() > 3 * np.median(env[:100])
    # the reverb and the delay keep sound going between and after notes; left and right differ
    assert np.min(env[20:]) > 0.0
    assert not np.allclose(audio[:, 0], audio[:, 1], atol=1e-3)


def test_glide_bass_patch_plays_gated_gliding_notes():
    patch = ng.load_patch(ROOT / "graphs" / "glide_bass.toml")
    audio = raw_render(raw_engine(patch, SR, 128), 2.0, min_peak=0.02)
    assert audio.shape == (2, 2 * SR)
    assert np.array_equal(audio[0], audio[1])  # a mono line copied to both channels
    rms = np.sqrt(np.mean(audio[0].reshape(-1, 2400) ** 2, axis=1))  # 50 ms frames, 2 Hz clock: 10 per note
    notes = rms.reshape(4, 10)
    assert np.all(notes[:, 1:5].max(axis=1) > 0.02)  # gate on: sound
    assert np.all(notes[:, 8:] < 1e-3)  # gate off for 250 ms, release 180 ms: silence before the next note
    assert np.max(np.abs(audio)) <= 10 ** (-8 / 20) * 0.9 + 1e-6  # the min/max clamp, then -8 dB


def test_fx_chain_processes_a_wav_file_through_the_command_line(tmp_path):
    # a windowed noise burst at 0.1 s, in a real WAV file, through `neuralgraph render --input`
    x = np.zeros((SR // 2, 2), np.float32)
    burst = np.random.default_rng(5).normal(0, 0.2, 960) * np.hanning(960)
    x[4800:5760, 0] = x[4800:5760, 1] = burst
    dry, wet = tmp_path / "dry.wav", tmp_path / "wet.wav"
    sf.write(dry, x, SR, subtype="FLOAT")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "neuralgraph",
            "render",
            str(ROOT / "graphs" / "fx_chain.toml"),
            "--input",
            str(dry),
            "-o",
            str(wet),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    y, rate = sf.read(wet, dtype="float32", always_2d=True)
    assert rate == SR and y.shape == (SR // 2 + 2 * SR, 2)  # the input plus the default 2 s tail
    assert np.all(np.isfinite(y)) and np.max(np.abs(y)) <= 10 ** (-1 / 20) + 1e-6
    # the limiter's 3 ms look-ahead (144 samples) is removed by render: the output lines up with the input
    assert "removed the patch's declared latency of 144 samples" in proc.stdout
    assert np.flatnonzero(y[:, 0])[0] == 4800 + 1  # the Hann window's first sample is 0
    # the echoes: the direct sound correlates with the output 300 ms (14400 frames) and 600 ms later,
    # scaled by the delay's mix against its dry part (0.3 / 0.7), then by the feedback (0.35)
    out = y[:, 0].astype(np.float64)
    direct = out[4000:8000]
    corr = np.correlate(out[4000 : 4000 + 2 * 14400 + 8000], direct, mode="valid")
    assert int(np.argmax(corr[1000:20000])) + 1000 == 14400
    assert corr[14400] / corr[0] == pytest.approx(0.3 / 0.7, rel=0.1)
    assert corr[28800] / corr[14400] == pytest.approx(0.35, rel=0.1)
