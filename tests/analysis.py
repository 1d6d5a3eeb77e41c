"""Signal analysis used by the tests: spectra, peaks, levels."""

from __future__ import annotations

from typing import Any

import numpy as np

import neuralgraph as ng


def spectrum(x: np.ndarray, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and magnitudes (Hann window, normalised so a full-scale sine reads ~1)."""
    x = np.asarray(x, np.float64)
    window = np.hanning(len(x))
    mags = np.abs(np.fft.rfft(x * window)) * 2.0 / window.sum()
    return np.fft.rfftfreq(len(x), 1.0 / sample_rate), mags


def peak_frequency(x: np.ndarray, sample_rate: float, lo: float = 20.0, hi: float | None = None) -> float:
    """Frequency of the largest spectral peak, refined by parabolic interpolation."""
    freqs, mags = spectrum(x, sample_rate)
    band = (freqs >= lo) & (freqs <= (hi or sample_rate / 2))
    idx = np.flatnonzero(band)[np.argmax(mags[band])]
    a, b, c = np.log(mags[idx - 1 : idx + 2] + 1e-20)
    shift = 0.5 * (a - c) / (a - 2 * b + c)
    return float(freqs[idx] + shift * (freqs[1] - freqs[0]))


def peaks(x: np.ndarray, sample_rate: float, count: int, min_distance_hz: float = 20.0) -> list[float]:
    """The ``count`` largest spectral peaks, at least ``min_distance_hz`` apart, ascending."""
    freqs, mags = spectrum(x, sample_rate)
    order = np.argsort(mags)[::-1]
    found: list[float] = []
    for idx in order:
        if freqs[idx] < 20.0:
            continue
        if all(abs(freqs[idx] - f) >= min_distance_hz for f in found):
            found.append(float(freqs[idx]))
        if len(found) == count:
            break
    return sorted(found)


def level_at(x: np.ndarray, sample_rate: float, freq: float, width: float = 5.0) -> float:
    """Largest spectral magnitude within ``width`` Hz of ``freq``."""
    freqs, mags = spectrum(x, sample_rate)
    band = np.abs(freqs - freq) <= width
    return float(mags[band].max())


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(np.asarray(x, np.float64)))))


# ---- the raw signal: measure nodes, not the output guard ------------------------------------------
# The output guard turns NaN/Inf into 0 and clips at the ceiling, so a test that reads a default
# engine's output cannot see a node that emits NaN, nor a level above full scale. Tests that measure
# what nodes do build their engine with these two helpers; the guard's own tests stay in
# test_reliability.py and test_engine.py and use the default engine.


def raw_engine(patch: ng.Patch, sample_rate: int | None = None, block_size: int | None = None, **kw: Any) -> ng.Engine:
    """An engine whose guard clips nothing (ceiling infinite) and counts every NaN/Inf it meets
    (``raw_render`` and ``assert_raw`` fail on any)."""
    return ng.Engine(patch, sample_rate, block_size, ceiling=float("inf"), **kw)


def assert_raw(engine: ng.Engine, since: int = 0) -> None:
    """Fail if NaN/Inf reached the output of ``engine`` (after the first ``since`` counted) or if
    its guard could have clipped: the output read was the nodes' own signal."""
    guard = engine.plan.guard
    assert guard.ceiling == np.inf, "measure nodes with raw_engine(): the guard's ceiling clips"
    bad = guard.non_finite - since
    assert bad == 0, f"{bad} NaN/Inf samples reached the output (silenced by the guard); {engine.bad_values()}"


def raw_render(engine: ng.Engine, seconds: float, *, min_peak: float | None = None, **kw: Any) -> np.ndarray:
    """``engine.render`` that fails on NaN/Inf at the output and, with ``min_peak``, on an output
    quieter than that where sound is expected (a node gone silent passes every bound)."""
    since = engine.plan.guard.non_finite
    audio = engine.render(seconds, **kw)
    assert_raw(engine, since)
    if min_peak is not None:
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        assert peak >= min_peak, f"expected sound (peak >= {min_peak}), got peak {peak}"
    return audio
