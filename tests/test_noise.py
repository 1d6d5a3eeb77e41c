"""Noise: spectra against white and pink references, seeded determinism, independent lanes."""

from __future__ import annotations

import numpy as np
import pytest
from analysis import raw_engine, raw_render
from scipy import signal

import neuralgraph as ng

SR = 48000


def render(
    load, node: dict, seconds: float, *, block: int = 256, extra: dict | None = None, channels: int = 1
) -> np.ndarray:
    nodes = {"o": node, **(extra or {}), "out": {"type": "io.output", "channels": channels, "in": "o"}}
    return raw_render(raw_engine(load(nodes), SR, block), seconds).astype(np.float64)


def octave_levels(x: np.ndarray, lo: float = 50.0, hi: float = 16000.0) -> tuple[np.ndarray, np.ndarray]:
    """Mean power spectral density (dB) per octave band from ``lo`` up, and the band centres."""
    freqs, psd = signal.welch(x, SR, nperseg=8192)
    edges = lo * 2.0 ** np.arange(0, np.log2(hi / lo) + 1e-9)
    levels = [10 * np.log10(psd[(freqs >= a) & (freqs < 2 * a)].mean()) for a in edges[:-1]]
    return np.sqrt(edges[:-1] * edges[1:]), np.array(levels)


def test_white_noise_is_flat_uniform_and_full_scale(load):
    x = render(load, {"type": "noise.white"}, 4.0)[0]
    _, levels = octave_levels(x)
    assert np.ptp(levels) < 0.5  # flat within 0.5 dB from 50 Hz to 16 kHz
    assert np.sqrt(np.mean(x**2)) == pytest.approx(1 / np.sqrt(3), rel=0.01)
    assert x.min() >= -1.0 and x.max() < 1.0
    assert abs(np.corrcoef(x[:-1], x[1:])[0, 1]) < 0.01  # no correlation between neighbours


def test_pink_noise_falls_3_db_per_octave(load):
    x = render(load, {"type": "noise.pink"}, 4.0)[0]
    centres, levels = octave_levels(x, 25.0, 12800.0)
    slope, intercept = np.polyfit(np.log2(centres), levels, 1)
    assert slope == pytest.approx(-3.01, abs=0.25)
    assert np.max(np.abs(levels - (slope * np.log2(centres) + intercept))) < 1.0
    assert np.abs(x).max() < 1.0


@pytest.mark.parametrize("kind", ["noise.white", "noise.pink"])
def test_same_seed_same_noise_across_block_sizes_and_runs(load, kind):
    a = render(load, {"type": kind, "seed": 42}, 0.2, block=64)
    b = render(load, {"type": kind, "seed": 42}, 0.2, block=1000)
    c = render(load, {"type": kind, "seed": 43}, 0.2, block=64)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.1


def test_reset_restarts_the_sequence(load):
    nodes = {"o": {"type": "noise.white", "seed": 7}, "out": {"type": "io.output", "channels": 1, "in": "o"}}
    engine = ng.Engine(load(nodes), sample_rate=SR, block_size=128)
    first = engine.render(0.05)
    engine.reset()
    np.testing.assert_array_equal(engine.render(0.05), first)


def test_lanes_get_independent_noise_scaled_by_amp(load):
    # a 2-lane amp makes two noise lanes: uncorrelated, each at its own level
    x = render(
        load,
        {"type": "noise.white", "amp": {"from": "lanes", "range": [0.0, 1.0]}},
        1.0,
        extra={"lanes": {"type": "test.lanes", "count": 2}},
        channels=2,
    )
    assert abs(np.corrcoef(x[0], x[1])[0, 1]) < 0.02
    rms = np.sqrt(np.mean(x**2, axis=1))
    assert rms[1] / rms[0] == pytest.approx(2.0, rel=0.03)


def test_noise_drums_graph_hits_on_the_beat():
    # graphs/noise_drums.toml at 120 BPM: kick on every beat (0, 0.5, 1, 1.5 s), snare on 0.5 and
    # 1.5 s, hats on the eighths; windows of 50 ms just after each time
    from pathlib import Path

    patch = ng.load_patch(Path(__file__).resolve().parent.parent / "graphs" / "noise_drums.toml")
    x = raw_render(raw_engine(patch), 2.0, min_peak=0.1)[0].astype(np.float64)
    assert np.abs(x).max() < 1.0
    low = signal.sosfilt(signal.butter(4, 200, "lowpass", fs=SR, output="sos"), x)
    mid = signal.sosfilt(signal.butter(4, [1000, 4000], "bandpass", fs=SR, output="sos"), x)
    top = signal.sosfilt(signal.butter(4, 6000, "highpass", fs=SR, output="sos"), x)

    def level(s: np.ndarray, t: float) -> float:
        return float(np.sqrt(np.mean(s[int(t * SR) : int((t + 0.05) * SR)] ** 2)))

    for beat in (0.0, 0.5, 1.0, 1.5):
        assert level(low, beat) > 10 * level(low, beat + 0.4)  # kick decays before the next beat
    for t in (0.5, 1.5):
        assert level(mid, t) > 5 * level(mid, t - 0.5)  # snare only on the backbeat
    for t in (0.25, 0.75, 1.25, 1.75):
        assert level(top, t) > 10 * level(top, t + 0.15)  # a short hat on each off-beat eighth
