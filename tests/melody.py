"""A known melody for the timbre-transfer tests, and an offline pitch measure independent of analysis.pitch.

``melody`` makes harmonic tones with vibrato (a sung line's shape) at known fundamentals, separated
by silent gaps; ``truth`` is its instantaneous f0 (0 in the gaps). ``autocorrelation_f0`` measures
a frame's fundamental offline from scipy's FFT autocorrelation (the first peak within 85 % of the
highest, refined by a parabola): nothing in it comes from the node under test.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import correlate

#: (f0 Hz or 0 for a silent gap, seconds)
NOTES = [(220.0, 0.6), (0.0, 0.8), (329.63, 0.5), (0.0, 0.8), (261.63, 0.7), (0.0, 0.8), (392.0, 0.5), (0.0, 0.8)]
VIBRATO_HZ, VIBRATO_CENTS = 5.5, 30.0


def melody(rate: int, notes: list[tuple[float, float]] = NOTES) -> tuple[np.ndarray, np.ndarray]:
    """The melody at ``rate`` (float32, mono, peak about 0.36) and its instantaneous f0 per sample."""
    parts, f0s = [], []
    for f0, seconds in notes:
        t = np.arange(int(seconds * rate)) / rate
        if f0 == 0.0:
            parts.append(np.zeros(t.size))
            f0s.append(np.zeros(t.size))
            continue
        inst = f0 * 2.0 ** (VIBRATO_CENTS / 1200.0 * np.sin(2 * np.pi * VIBRATO_HZ * t))
        phase = 2 * np.pi * np.cumsum(inst) / rate
        ramp = np.minimum(1.0, np.minimum(t / 0.03, (seconds - t) / 0.03))  # 30 ms fades: no clicks
        parts.append(0.2 * ramp * (np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.3 * np.sin(3 * phase)))
        f0s.append(inst)
    return np.concatenate(parts).astype(np.float32), np.concatenate(f0s)


def autocorrelation_f0(frame: np.ndarray, rate: int, lo: float = 80.0, hi: float = 1000.0) -> float:
    """The frame's fundamental (Hz) from its normalised autocorrelation; 0 when it has none."""
    x = (frame - frame.mean()) * np.hanning(frame.size)
    r = correlate(x, x, mode="full", method="fft")[x.size - 1 :]
    if r[0] <= 0.0:
        return 0.0
    r = r / r[0]
    a, b = int(rate / hi), min(int(rate / lo), r.size - 2)
    seg = r[a:b]
    top = seg.max()
    for i in range(1, seg.size - 1):
        if seg[i] >= 0.85 * top and seg[i] >= seg[i - 1] and seg[i] >= seg[i + 1]:
            p, q, s = seg[i - 1], seg[i], seg[i + 1]
            den = p - 2 * q + s
            shift = 0.5 * (p - s) / den if den != 0 else 0.0
            return rate / (a + i + shift)
    return 0.0


def level_db(frame: np.ndarray) -> float:
    """RMS level of a frame in dBFS."""
    return float(10 * np.log10(np.mean(np.square(frame, dtype=np.float64)) + 1e-20))
