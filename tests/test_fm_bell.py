"""graphs/fm_bell.toml against FM theory: Bessel sidebands at |fc + k·fm|, a falling centroid, a decaying level.

A sine carrier fc frequency-modulated by a sine fm with index I has partials at |fc + k·fm| with
amplitudes |J_k(I)| (Chowning 1973). At fm = 1.4 fc no two k land on the same frequency, so each
measured partial is one Bessel value, and none but k = 0 is a harmonic of fc: the bell is inharmonic.
"""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from analysis import raw_engine, raw_render, rms
from scipy.special import jv

import neuralgraph as ng

PATCH = Path(__file__).resolve().parent.parent / "graphs" / "fm_bell.toml"
SR = 48000
MASTER = 0.3  # master.gain in the patch; velocity 127 plays at 1.0
A3 = 57  # 220 Hz
RATIO = 1.4  # modulator / carrier
R = 0.001  # env.adsr exp segments aim past their end by this fraction (plugins/envelopes.py)


def amplitude(x: np.ndarray, freq: float) -> float:
    """Amplitude of the sinusoid at exactly ``freq`` (Hann-windowed DTFT: no bin scalloping)."""
    n = np.arange(len(x))
    window = np.hanning(len(x))
    return float(2.0 * abs(np.sum(x * window * np.exp(-2j * math.pi * freq / SR * n))) / window.sum())


def centroid(x: np.ndarray) -> float:
    """Power-weighted mean frequency (Hann window)."""
    mags = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / SR)
    return float((freqs * mags).sum() / mags.sum())


def exp_decay(t: float, seconds: float) -> float:
    """env.adsr's exp decay from 1 to a sustain of 0 over ``seconds``, at ``t`` seconds in."""
    return max(0.0, -R + (1.0 + R) * (R / (1.0 + R)) ** (t / seconds))


def play(sets: dict[str, float], midi: list[tuple[int, int, int]], seconds: float) -> np.ndarray:
    """Render the patch (left channel) with ``engine.set`` overrides and MIDI sent at frame 0."""
    engine = ng.Engine(ng.load_patch(PATCH))
    for target, value in sets.items():
        engine.set(target, value)
    for message in midi:
        engine.send_midi(*message)
    return engine.render(seconds)[0].astype(np.float64)


# (MIDI before the note, expected index, expected carrier Hz): the mod wheel maps 0..127 onto
# index 2..10 and starts at 6; the bend wheel bends the whole bell by up to 2 semitones.
CASES = {
    "as loaded": ([], 6.0, 220.0),
    "wheel down": ([(0xB0, 1, 0)], 2.0, 220.0),
    "wheel up": ([(0xB0, 1, 127)], 10.0, 220.0),
    "bent down": ([(0xE0, 0, 0)], 6.0, 220.0 * 2.0 ** (-2.0 / 12.0)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_held_strike_partials_follow_bessel_functions(case):
    midi, index, fc = CASES[case]
    # Hold the index and the loudness (sustain 1) and take the reverb out: a steady FM tone.
    x = play({"hall.mix": 0.0, "strike.sustain": 1.0, "ring.sustain": 1.0}, [*midi, (0x90, A3, 127)], 0.6)
    steady = x[int(0.2 * SR) :]
    fm = RATIO * fc
    strong = 0
    for k in range(-12, 13):
        expected = MASTER * abs(jv(k, index))
        measured = amplitude(steady, abs(fc + k * fm))
        if expected > MASTER * 0.03:  # partials above -30 dB re the carrier at full level
            strong += 1
            assert 20 * math.log10(measured / expected) == pytest.approx(0.0, abs=1.0), (k, measured, expected)
    assert strong >= 5
    # Inharmonic: |1 + 1.4k| is whole only for k a multiple of 5 (6, 8, 13, 15 ...), so the
    # harmonics 2, 3, 4, 5 and 7 of the carrier are absent although the spectrum spans them.
    for h in (2, 3, 4, 5, 7):
        assert amplitude(steady, h * fc) < 1e-3 * MASTER, h
    # FM keeps the power of the carrier, whatever the index: sum of J_k^2 = 1
    assert rms(steady) == pytest.approx(MASTER / math.sqrt(2.0), rel=0.01)


def test_strike_mellows_and_decays_like_a_bell():
    # As shipped (reverb dry-only for a clean measurement): both envelopes decay with the key held.
    x = play({"hall.mix": 0.0}, [(0x90, A3, 127)], 2.2)
    fc, fm = 220.0, RATIO * 220.0
    win = 960  # 20 ms: the index moves little within a window
    times = [0.02, 0.1, 0.2, 0.35, 0.6, 1.0, 1.5, 2.0]
    centroids, levels = [], []
    for t in times:
        w = x[int(t * SR) : int(t * SR) + win]
        centroids.append(centroid(w))
        levels.append(rms(w))
        mid = t + win / SR / 2
        index = 6.0 * exp_decay(mid, 1.2)
        # predicted centroid of the Bessel spectrum at the index of the window's midpoint
        ks = np.arange(-30, 31)
        power = jv(ks, index) ** 2
        predicted = float((power * np.abs(fc + ks * fm)).sum() / power.sum())
        assert centroids[-1] == pytest.approx(predicted, rel=0.03), (t, centroids[-1], predicted)
        # loudness follows the 4 s exponential decay of the ring envelope; FM keeps the power
        loud = MASTER * exp_decay(mid, 4.0) / math.sqrt(2.0)
        assert 20 * math.log10(levels[-1] / loud) == pytest.approx(0.0, abs=0.5), (t, levels[-1], loud)
    # brightness falls as a bell's does, and the level falls strictly, 60 dB per 4 s
    assert all(a > b for a, b in pairwise(centroids[:5]))
    assert centroids[0] > 3.0 * fc
    assert all(a > b for a, b in pairwise(levels))
    # once the index envelope has ended (1.2 s) only the carrier is left: sidebands gone
    late = x[int(1.3 * SR) : int(1.8 * SR)]
    assert amplitude(late, fc + fm) < 1e-3 * amplitude(late, fc)


def test_reverb_carries_the_tail_after_the_voices_stop():
    tails = {}
    for mix in (0.25, 0.0):  # as shipped, and dry only
        engine = raw_engine(ng.load_patch(PATCH))
        engine.set("hall.mix", mix)
        engine.note_on(A3, 127)
        head = engine.render(0.1)
        engine.note_off(A3)
        rest = raw_render(engine, 3.9)
        assert np.abs(np.concatenate([head, rest], axis=1)).max() < 1.0
        tails[mix] = rest[:, int(3.2 * SR) :]  # 3.3 .. 4.0 s: the 3 s release is over by 3.1 s
    assert rms(tails[0.0]) < 1e-6
    assert rms(tails[0.25]) > 20 * rms(tails[0.0]) + 2e-5
