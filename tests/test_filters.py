"""Filters measured by impulse response through real patches, against analog prototypes mapped
by the bilinear transform (scipy), which is what the SVF and the RBJ cookbook are."""

from __future__ import annotations

import math

import numpy as np
import pytest
from analysis import raw_engine, raw_render
from scipy import signal

import neuralgraph as ng

N = 1 << 16


def impulse_response(load, node: dict, sample_rate: int, *, block: int = 128, lanes: int = 1) -> np.ndarray:
    """The filter's response to a unit impulse at frame 0, through io.input -> filter -> io.output."""
    nodes = {
        "inp": {"type": "io.input", "channels": lanes},
        "f": {"in": "inp", **node},
        "out": {"type": "io.output", "channels": lanes, "in": "f"},
    }
    engine = raw_engine(load(nodes), sample_rate, block)
    impulse = np.zeros((lanes, N), np.float32)
    impulse[:, 0] = 1.0
    return raw_render(engine, N / sample_rate, input=impulse).astype(np.float64)


def prototype(mode: str, q: float, gain_db: float = 0.0) -> tuple[list[float], list[float]]:
    """Normalised analog prototypes (cutoff 1 rad/s), highest power of s first."""
    a = 10 ** (gain_db / 40)
    sa = math.sqrt(a)
    return {
        "lowpass": ([1.0], [1, 1 / q, 1]),
        "highpass": ([1, 0, 0], [1, 1 / q, 1]),
        "bandpass": ([1 / q, 0], [1, 1 / q, 1]),
        "notch": ([1, 0, 1], [1, 1 / q, 1]),
        "peak": ([1, a / q, 1], [1, 1 / (a * q), 1]),
        "lowshelf": ([a, a * sa / q, a * a], [a, sa / q, 1]),
        "highshelf": ([a * a, a * sa / q, a], [1, sa / q, a]),
        "onepole_lowpass": ([1.0], [1, 1]),
        "onepole_highpass": ([1, 0], [1, 1]),
    }[mode]


def analytic(mode: str, cutoff: float, q: float, gain_db: float, sample_rate: int, freqs: np.ndarray) -> np.ndarray:
    """|H| of the prototype scaled to the prewarped cutoff and mapped by the bilinear transform."""
    b, a = prototype(mode, q, gain_db)
    wc = 2 * sample_rate * math.tan(math.pi * cutoff / sample_rate)
    scale = lambda poly: [c / wc ** (len(poly) - 1 - i) for i, c in enumerate(poly)]  # noqa: E731
    bz, az = signal.bilinear(scale(b), scale(a), fs=sample_rate)
    _, h = signal.freqz(bz, az, worN=freqs, fs=sample_rate)
    return np.abs(h)


def assert_matches(measured_ir: np.ndarray, expected: np.ndarray, freqs: np.ndarray, sample_rate: int) -> None:
    spectrum = np.abs(np.fft.rfft(measured_ir))
    bins = np.fft.rfftfreq(len(measured_ir), 1 / sample_rate)
    measured = np.interp(freqs, bins, spectrum)
    loud = expected > 1e-3  # above -60 dB: within 0.5 dB; below: within 1e-3 absolute
    err_db = 20 * np.log10(measured[loud] / expected[loud])
    worst = np.argmax(np.abs(err_db))
    assert np.abs(err_db[worst]) < 0.5, f"{err_db[worst]:.3f} dB off at {freqs[loud][worst]:.0f} Hz"
    assert np.max(np.abs(measured[~loud] - expected[~loud]), initial=0.0) < 1e-3


def grid(sample_rate: int) -> np.ndarray:
    """FFT bin frequencies from 20 Hz to 0.45 x the sample rate."""
    bins = np.fft.rfftfreq(N, 1 / sample_rate)
    return bins[(bins >= 20) & (bins <= 0.45 * sample_rate)]


@pytest.mark.parametrize("rate", [44100, 96000])
@pytest.mark.parametrize("cutoff,q", [(100.0, 0.7071), (1000.0, 4.0), (15000.0, 0.5)])
@pytest.mark.parametrize("mode", ["lowpass", "highpass", "bandpass", "notch"])
def test_svf_response_matches_analytic(load, mode, cutoff, q, rate):
    ir = impulse_response(load, {"type": f"filter.{mode}", "cutoff": cutoff, "q": q}, rate)[0]
    freqs = grid(rate)
    assert_matches(ir, analytic(mode, cutoff, q, 0.0, rate, freqs), freqs, rate)


@pytest.mark.parametrize("rate", [44100, 48000])
@pytest.mark.parametrize("cutoff,q,gain_db", [(200.0, 0.7071, 12.0), (3000.0, 2.0, -9.0), (12000.0, 0.5, 6.0)])
@pytest.mark.parametrize("mode", ["peak", "lowshelf", "highshelf"])
def test_rbj_response_matches_analytic(load, mode, cutoff, q, gain_db, rate):
    ir = impulse_response(load, {"type": f"filter.{mode}", "cutoff": cutoff, "q": q, "gain_db": gain_db}, rate)[0]
    freqs = grid(rate)
    assert_matches(ir, analytic(mode, cutoff, q, gain_db, rate, freqs), freqs, rate)


@pytest.mark.parametrize("mode", ["lowpass", "highpass"])
@pytest.mark.parametrize("cutoff", [50.0, 2000.0])
def test_onepole_response_matches_analytic(load, mode, cutoff):
    ir = impulse_response(load, {"type": "filter.onepole", "mode": mode, "cutoff": cutoff}, 48000)[0]
    freqs = grid(48000)
    assert_matches(ir, analytic(f"onepole_{mode}", cutoff, 1.0, 0.0, 48000, freqs), freqs, 48000)


def test_dc_block_matches_its_difference_equation_and_removes_dc(load):
    ir = impulse_response(load, {"type": "filter.dc_block", "cutoff": 20.0}, 48000)[0]
    freqs = grid(48000)
    r = math.exp(-2 * math.pi * 20.0 / 48000)
    _, h = signal.freqz([1, -1], [1, -r], worN=freqs, fs=48000)
    assert_matches(ir, np.abs(h), freqs, 48000)
    assert abs(ir.sum()) < 1e-4  # the response to DC settles at 0


def level_db(ir: np.ndarray, freq: float, rate: int) -> float:
    """|H(f)| in dB, evaluated exactly from the impulse response (a DTFT at one frequency)."""
    n = np.arange(len(ir))
    return float(20 * np.log10(abs(np.sum(ir * np.exp(-2j * np.pi * freq * n / rate)))))


def test_butterworth_lowpass_corner_and_slope(load):
    ir = impulse_response(load, {"type": "filter.lowpass", "cutoff": 1000.0, "q": 0.70710678}, 48000)[0]
    assert level_db(ir, 1000.0, 48000) == pytest.approx(-3.01, abs=0.02)
    assert level_db(ir, 100.0, 48000) == pytest.approx(0.0, abs=0.01)
    steep = impulse_response(load, {"type": "filter.lowpass", "cutoff": 100.0, "q": 0.70710678}, 48000)[0]
    slope = level_db(steep, 4000.0, 48000) - level_db(steep, 2000.0, 48000)
    # two poles: -12 dB per octave well above cutoff (frequency warping adds 0.3 dB here)
    assert slope == pytest.approx(-12.0, abs=0.5)


@pytest.mark.parametrize("gain_db", [-12.0, 6.0, 18.0])
def test_peak_and_shelf_gains_at_cutoff(load, gain_db):
    common = {"cutoff": 2000.0, "q": 0.7071, "gain_db": gain_db}
    peak = impulse_response(load, {"type": "filter.peak", **common}, 48000)[0]
    assert level_db(peak, 2000.0, 48000) == pytest.approx(gain_db, abs=0.01)
    low = impulse_response(load, {"type": "filter.lowshelf", **common}, 48000)[0]
    assert level_db(low, 2000.0, 48000) == pytest.approx(gain_db / 2, abs=0.01)
    assert level_db(low, 20.0, 48000) == pytest.approx(gain_db, abs=0.1)
    high = impulse_response(load, {"type": "filter.highshelf", **common}, 48000)[0]
    assert level_db(high, 2000.0, 48000) == pytest.approx(gain_db / 2, abs=0.01)
    assert level_db(high, 23000.0, 48000) == pytest.approx(gain_db, abs=0.3)


@pytest.mark.parametrize("mode", ["lowpass", "highpass", "bandpass", "notch"])
def test_svf_stable_under_audio_rate_cutoff_modulation(load, mode):
    # cutoff swept 20 Hz .. 30 kHz (past Nyquist: clamped) by a 3 kHz sine and by noise; Q swept too
    nodes = {
        "src": {"type": "noise.white", "seed": 3},
        "fast": {"type": "osc.sine", "freq": 3000.0},
        "jumps": {"type": "noise.white", "seed": 4},
        "f": {
            "type": f"filter.{mode}",
            "in": "src",
            "cutoff": {"from": "fast", "range": [20.0, 30000.0], "curve": "exp"},
            "q": {"from": "jumps", "range": [0.5, 20.0]},
        },
        "g": {
            "type": f"filter.{mode}",
            "in": "src",
            "cutoff": {"from": "jumps", "range": [20.0, 30000.0], "curve": "exp"},
            "q": 10.0,
        },
        "sum": {"type": "math.add", "a": "f", "b": "g"},
        "out": {"type": "io.output", "channels": 1, "in": "sum"},
    }
    # NaN from any cutoff fails raw_render; a filter gone silent fails min_peak
    out = raw_render(raw_engine(load(nodes), 48000, 64), 1.0, min_peak=0.5)[0]
    assert np.max(np.abs(out)) < 50.0
    assert np.sqrt(np.mean(out.astype(np.float64) ** 2)) < 10.0


def test_biquad_lanes_keep_their_own_state_and_cutoff(load):
    # two lanes with different cutoffs (from a 2-lane source mapped to Hz) match their own responses
    nodes = {
        "inp": {"type": "io.input", "channels": 2},
        "lanes": {"type": "test.lanes", "count": 2},
        "f": {
            "type": "filter.peak",
            "in": "inp",
            "q": 1.0,
            "gain_db": 12.0,
            "cutoff": {"from": "lanes", "range": [0.0, 3000.0]},
        },
        "out": {"type": "io.output", "channels": 2, "in": "f"},
    }
    engine = raw_engine(load(nodes), 48000, 128)
    span = engine.plan.nodes["lanes"].outputs()["out"].span
    impulse = np.zeros((2, N), np.float32)
    impulse[:, 0] = 1.0
    ir = raw_render(engine, N / 48000, input=impulse).astype(np.float64)
    for lane in range(2):
        cutoff = 3000.0 * (lane + 1 - span[0]) / (span[1] - span[0])
        assert level_db(ir[lane], cutoff, 48000) == pytest.approx(12.0, abs=0.02)


@pytest.mark.parametrize("mode", ["lowpass", "highpass", "bandpass", "notch"])
@pytest.mark.parametrize("stepped", [False, True])
@pytest.mark.parametrize("lanes", [4, 11])
def test_svf_lanes_in_fours_equal_each_lane_filtered_alone(load, mode, stepped, lanes):
    # Once the coefficients hold, 4 lanes take the four-at-a-time path and 11 the vector one (a
    # vector of 8, then one of 3 and 5 spare lanes); every lane must come out bit-identical to the
    # same input through a one-lane filter, a NaN in one lane included.
    # Stepped: the cutoff jumps (a 10 Hz square, 800 <-> 3000 Hz) inside blocks that start held.
    cutoff = {"from": "sq", "range": [800.0, 3000.0]} if stepped else 1500.0

    def render(x: np.ndarray) -> np.ndarray:
        nodes = {
            "inp": {"type": "io.input", "channels": len(x)},
            "sq": {"type": "osc.square", "freq": 10.0},
            "f": {"type": f"filter.{mode}", "in": "inp", "cutoff": cutoff, "q": 3.0},
            "out": {"type": "io.output", "channels": len(x), "in": "f"},
        }
        return raw_render(raw_engine(load(nodes), 48000, 64), x.shape[1] / 48000, input=x)

    x = (
        np.random.default_rng(7).standard_normal((lanes, 4800)).astype(np.float32)
        * np.arange(1, lanes + 1, dtype=np.float32)[:, None]
    )
    x[lanes - 2, 1000] = np.nan
    together = render(x)
    assert np.sqrt(np.mean(together[lanes - 2, 1100:].astype(np.float64) ** 2)) > 0.1  # it sounds after the NaN
    for lane in range(lanes):
        assert np.array_equal(together[lane], render(x[lane : lane + 1])[0]), lane


def test_filter_recovers_after_nan_input(load):
    nodes = {
        "inp": {"type": "io.input", "channels": 1},
        "f": {"type": "filter.lowpass", "in": "inp"},
        "out": {"type": "io.output", "channels": 1, "in": "f"},
    }
    engine = raw_engine(load(nodes), 48000, 64)
    x = np.ones((1, 4800), np.float32)
    x[0, 100] = np.nan
    out = raw_render(engine, 0.1, input=x)[0]  # not one NaN reaches the output
    assert out[-1] == pytest.approx(1.0, abs=1e-3)


def test_subtractive_graph_sweeps_its_cutoff():
    # graphs/subtractive.toml: an LFO (triangle, 0.25 Hz, starting mid-way rising) sweeps the lowpass
    # between 200 Hz and 5 kHz, so the spectrum is brightest at 1 s and darkest at 3 s
    from pathlib import Path

    patch = ng.load_patch(Path(__file__).resolve().parent.parent / "graphs" / "subtractive.toml")
    x = raw_render(raw_engine(patch), 3.2, min_peak=0.1)[0].astype(np.float64)

    def centroid(t: float) -> float:
        seg = x[int(t * 48000) : int(t * 48000) + 4800] * np.hanning(4800)
        mags = np.abs(np.fft.rfft(seg))
        return float((mags * np.fft.rfftfreq(4800, 1 / 48000)).sum() / mags.sum())

    assert np.abs(x).max() < 1.0
    assert centroid(0.95) > 4 * centroid(2.95)
