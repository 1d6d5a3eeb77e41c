"""Signal analysis used by the tests: spectra, peaks, levels."""

from __future__ import annotations

import numpy as np


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
