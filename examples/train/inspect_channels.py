"""What the mono mix of a soundfont instrument's two channels holds: one performance, or two?

``train_ddsp.py`` and ``evaluate_ddsp.py`` render with fluidsynth and train and measure on the
mean of its two channels. This script renders every note of an instrument's range once (velocity
75) and prints, per note, how the left and right channels relate over the sustain (0.3-0.9 s):

- ``corr``: their correlation sample by sample;
- ``lag ms``, ``gain``: the delay and gain of the one copy of the left channel that best explains
  the right (least squares over +-12.5 ms), and ``left over``: the share of the right channel's
  energy that copy leaves unexplained;
- ``detune``: the right channel's mean pitch minus the left's, in cents, and ``vib corr``: the
  correlation of their pitch tracks (``partial_f0`` every 16 ms): 1 is one vibrato;
- ``mono/ch``: the mono mix's RMS over the two channels' mean RMS: below 1, the channels cancel;
- ``swing mix``, ``swing L``, ``swing R``: how much harmonics 3-12 move from frame to frame in the
  mono mix, the left and the right channel (``partial_swing``): if the mix's comb made the swing,
  one channel alone would swing less.

Usage (needs fluidsynth and fluid-soundfont-gm; no torch)::

    python examples/train/inspect_channels.py --instrument violin
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_ddsp as td  # the training script's render and pitch reading, one definition

#: The sustain compared, in seconds from the note-on.
SUSTAIN = (0.3, 0.9)
#: ``partial_swing``: the harmonics whose levels it follows.
SWING_HARMONICS = (3, 12)
#: The largest delay between the channels searched, in samples (12.5 ms at 32 kHz).
MAX_LAG = 400
VELOCITY = 75


def best_tap(left: np.ndarray, right: np.ndarray, max_lag: int = MAX_LAG) -> tuple[int, float, float]:
    """(lag, gain, share left over): ``right[n] ~ gain * left[n + lag]`` by least squares over the
    lags within +-``max_lag`` samples, and the share of ``right``'s energy that copy does not explain."""
    n = left.size
    spectrum = np.fft.rfft(left, 2 * n) * np.conj(np.fft.rfft(right, 2 * n))
    xcorr = np.fft.irfft(spectrum)  # xcorr[k] = sum left[i + k] right[i], negative k at the end
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    values = np.concatenate([xcorr[: max_lag + 1], xcorr[-max_lag:]])
    energy = float(np.sum(left**2))
    # for each lag the best gain is xcorr / energy, leaving energy(right) - xcorr^2 / energy
    i = int(np.argmax(values**2))
    left_over = 1.0 - values[i] ** 2 / (energy * float(np.sum(right**2)))
    return int(lags[i]), float(values[i] / energy), float(left_over)


def pitch_track(x: np.ndarray, note: int, step: int = 512) -> np.ndarray:
    """The fundamental every ``step`` samples (``partial_f0`` on a 1-cent grid), in cents from the note."""
    window = np.hanning(td.WIN)
    f0 = td.midi_hz(note)
    track = [
        td.partial_f0(np.abs(np.fft.rfft(x[c - td.WIN // 2 : c + td.WIN // 2] * window)), f0, steps=121)
        for c in range(td.WIN // 2, x.size - td.WIN // 2, step)
    ]
    return 1200.0 * np.log2(np.array(track) / f0)


def partial_swing(x: np.ndarray, note: int) -> float:
    """How much a note's partials move from frame to frame: the standard deviation in dB over ``x``'s
    analysis frames (the training analysis, ``track_pitch`` and ``energy``) of each of harmonics
    SWING_HARMONICS (below 12 kHz) relative to the frame's loudness, averaged over those harmonics."""
    data = td.analyse(x, [(0.0, x.size / td.SR, note, 0)], track_pitch=True, energy=True)
    k = np.arange(1, td.HARMONICS + 1)
    chosen = (k >= SWING_HARMONICS[0]) & (k <= SWING_HARMONICS[1]) & (k * td.midi_hz(note) < 12000.0)
    level = 20.0 * np.log10(data["harm"][:, chosen]) - data["loudness"][:, None]
    return float(level.std(axis=0).mean())


def compare(stereo: np.ndarray, note: int) -> dict[str, float]:
    """The figures of one note's sustain, ``stereo`` [samples, 2]."""
    left, right = stereo[:, 0], stereo[:, 1]
    lag, gain, left_over = best_tap(left, right)
    pl, pr = pitch_track(left, note), pitch_track(right, note)
    mono = float(np.sqrt(np.mean(stereo.mean(axis=1) ** 2)))
    channels = 0.5 * float(np.sqrt(np.mean(left**2)) + np.sqrt(np.mean(right**2)))
    return {
        "corr": float(np.corrcoef(left, right)[0, 1]),
        "lag ms": 1000.0 * lag / td.SR,
        "gain": gain,
        "left over": left_over,
        "detune": float(np.mean(pr - pl)),
        "vib corr": float(np.corrcoef(pl, pr)[0, 1]),
        "mono/ch": mono / channels,
        "swing mix": partial_swing(stereo.mean(axis=1), note),
        "swing L": partial_swing(left, note),
        "swing R": partial_swing(right, note),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instrument", choices=sorted(td.INSTRUMENTS), default="violin")
    ap.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2")
    args = ap.parse_args()
    inst = td.INSTRUMENTS[args.instrument]
    velocities = td.VELOCITIES[:]
    td.VELOCITIES[:] = [VELOCITY]  # one take of every note
    try:
        with tempfile.TemporaryDirectory() as tmp:
            audio, notes = td.render_channels(args.soundfont, inst.program, Path(tmp), inst.notes)
    finally:
        td.VELOCITIES[:] = velocities
    keys = ("corr", "lag ms", "gain", "left over", "detune", "vib corr", "mono/ch", "swing mix", "swing L", "swing R")
    print(f"{args.instrument}, program {inst.program}, velocity {VELOCITY}, sustain {SUSTAIN[0]}-{SUSTAIN[1]} s")
    print(f"{'note':>4} " + " ".join(f"{k:>9}" for k in keys))
    for start, _end, note, _vel in notes:
        a, b = round((start + SUSTAIN[0]) * td.SR), round((start + SUSTAIN[1]) * td.SR)
        figures = compare(audio[a:b], note)
        held = " (held out)" if note in inst.held_out else ""
        print(f"{note:>4} " + " ".join(f"{figures[k]:>9.2f}" for k in keys) + held, flush=True)


if __name__ == "__main__":
    main()
