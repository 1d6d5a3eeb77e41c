"""Would a learned impulse response after the synthesis bring a DDSP instrument closer to its recordings?

DDSP's violin ends in a trainable reverb: one FIR (room and body) after harmonic + noise. This
script measures what such a filter does under ``evaluate_ddsp.py``'s protocol, without changing
the decoder or the synthesis nodes:

1. renders the instrument's training and held-out notes (``evaluate_ddsp.heldout_notes``: 1.25 s
   from each note-on, every velocity) and plays each clip through ``synth.harmonic`` +
   ``synth.filtered_noise`` as ``evaluate_ddsp`` does (``--source``: the clip's own per-frame
   targets, the oracle, by default; or the shipped decoder; or the baseline);
2. fits ONE FIR of ``--taps`` samples (tap 0 starts at 1, the rest as a faint decaying noise) with
   torch so that the training clips' dry renders, convolved with it, come closest to their
   recordings under the protocol's own multi-scale spectral distance (Adam, 8 clips per step,
   seeded: the same command gives the same filter);
3. measures the held-out notes' neural, baseline and oracle renders with and without the filter
   against their recordings, with the MIDI f0 and with the measured one.

The percentages compare with the baseline through the same filter (the fair comparison for what
the decoder adds) and with the protocol's dry baseline.

Usage (needs fluidsynth, fluid-soundfont-gm and torch; a few minutes on one thread)::

    python examples/train/fit_reverb.py --instrument violin
    python examples/train/fit_reverb.py --instrument violin --source neural   # fitted on the decoder's renders
    python examples/train/fit_reverb.py --instrument violin --fit-notes held  # the filter's best case: fitted on the test notes
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evaluate_ddsp as ev  # the protocol: renders, distance, measured f0
import train_ddsp as td  # the presets and the analysis

KINDS = ("neural", "baseline", "oracle")
F0_FORMS = ("midi", "measured")
#: Clips per Adam step and the filter's starting tail (time constant in seconds, level).
BATCH = 8
TAIL_S = 0.05
TAIL_LEVEL = 1e-3


class Renders:
    """Each clip's dry renders (``KINDS``) under either pitch form, made from one set of recordings."""

    def __init__(self, inst: td.Instrument, soundfont: str) -> None:
        self.inst = inst
        self.model = ev.ROOT / inst.model
        with tempfile.TemporaryDirectory() as tmp:
            audio, notes = td.render(soundfont, inst.program, Path(tmp), inst.train_notes, inst.channel)
            self.train = ev.heldout_notes(soundfont, inst.program, Path(tmp), tuple(inst.train_notes), inst.channel)
            self.held = ev.heldout_notes(soundfont, inst.program, Path(tmp), inst.held_out, inst.channel)
        self.spectrum = ev.mean_spectrum(td.analyse(audio, notes, inst.track_pitch, inst.energy))

    def render(self, kind: str, real: np.ndarray, note: int, f0_form: str) -> np.ndarray:
        """One dry render of ``real`` (a clip of MIDI ``note``)."""
        f0 = ev.measured_f0(real) if f0_form == "measured" else None
        if kind == "neural":
            return ev.render_neural(real, note, self.model, f0)
        if kind == "baseline":
            return ev.render_baseline(real, note, self.spectrum, f0)
        return ev.render_oracle(real, note, self.inst, f0)


def fit_filter(dry: np.ndarray, real: np.ndarray, taps: int, steps: int, seed: int = 0) -> np.ndarray:
    """The FIR (``taps`` long) that brings ``dry`` [clips, samples] closest to ``real`` under the
    multi-scale spectral distance, by Adam on batches of BATCH clips."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    x, y = torch.tensor(dry, dtype=torch.float32), torch.tensor(real, dtype=torch.float32)
    n = x.shape[1]
    nfft = 1 << int(np.ceil(np.log2(n + taps)))
    x_spec = torch.fft.rfft(x, nfft)
    windows = {s: torch.hann_window(s, periodic=False) for s in ev.FFT_SIZES}  # np.hanning's

    def mags(a, s):
        return torch.stft(a, s, hop_length=s // 4, window=windows[s], center=False, return_complex=True).abs()

    target = {s: mags(y, s) for s in ev.FFT_SIZES}

    def distance(h, idx):
        out = torch.fft.irfft(x_spec[idx] * torch.fft.rfft(h, nfft), nfft)[:, :n]
        total = torch.zeros(())
        for s in ev.FFT_SIZES:
            a, b = mags(out, s), target[s][idx]
            log_a, log_b = torch.log(a + ev.LOG_EPS), torch.log(b + ev.LOG_EPS)
            total = total + (a - b).abs().mean() + (log_a - log_b).abs().mean()
        return total

    t = torch.arange(taps, dtype=torch.float32)
    start = TAIL_LEVEL * torch.randn(taps) * torch.exp(-t / (TAIL_S * td.SR))
    start[0] = 1.0
    h = torch.nn.Parameter(start)
    opt = torch.optim.Adam([h], lr=6e-4)
    everything = torch.arange(x.shape[0])
    with torch.no_grad():
        print(f"training clips, mean distance: dry {float(distance(torch.eye(1, taps)[0], everything)):.3f}", end="")
    for _ in range(steps):
        loss = distance(h, torch.randint(0, x.shape[0], (BATCH,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        print(f", through the fitted filter {float(distance(h, everything)):.3f}", flush=True)
    return h.detach().numpy().astype(np.float64)


def describe(ir: np.ndarray) -> str:
    """The filter's energy after its first tap, per stretch of time, in dB relative to that tap."""
    spans = ((1, 32), (32, 320), (320, 1600), (1600, 4000), (4000, ir.size))
    parts = [
        f"{1000 * a / td.SR:.0f}-{1000 * b / td.SR:.0f} ms {10 * np.log10(np.sum(ir[a:b] ** 2) / ir[0] ** 2):.0f} dB"
        for a, b in spans
        if a < b <= ir.size
    ]
    return f"tap 0 {ir[0]:.3f}; energy " + ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instrument", choices=sorted(td.INSTRUMENTS), default="violin")
    ap.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2")
    ap.add_argument("--source", choices=KINDS, default="oracle", help="the dry renders the filter is fitted on")
    ap.add_argument("--fit-f0", choices=F0_FORMS, default="measured", help="the pitch of those renders")
    ap.add_argument("--taps", type=int, default=8000, help="the filter's length in samples (8000 = 0.25 s)")
    ap.add_argument("--steps", type=int, default=200, help="Adam steps")
    ap.add_argument(
        "--fit-notes",
        choices=("train", "held"),
        default="train",
        help="the clips the filter is fitted on: the training notes, or (a bound, not a result) the held-out ones",
    )
    args = ap.parse_args()
    renders = Renders(td.INSTRUMENTS[args.instrument], args.soundfont)
    train = sorted((renders.train if args.fit_notes == "train" else renders.held).items())
    dry = np.stack([renders.render(args.source, real, note, args.fit_f0) for (note, _v), real in train])
    ir = fit_filter(dry, np.stack([real for _k, real in train]), args.taps, args.steps)
    print(f"filter ({args.source} renders of the {args.fit_notes} notes, {args.fit_f0} f0): {describe(ir)}")
    for f0_form in F0_FORMS:
        dist = {(kind, wet): [] for kind in KINDS for wet in (False, True)}
        for (note, _vel), real in sorted(renders.held.items()):
            for kind in KINDS:
                x = renders.render(kind, real, note, f0_form)
                dist[(kind, False)].append(ev.multiscale_spectral_distance(x, real))
                dist[(kind, True)].append(ev.multiscale_spectral_distance(fftconvolve(x, ir)[: x.size], real))
        mean = {key: float(np.mean(v)) for key, v in dist.items()}
        base_dry, base_wet = mean[("baseline", False)], mean[("baseline", True)]
        for kind in KINDS:
            d, w = mean[(kind, False)], mean[(kind, True)]
            better = int(np.sum(np.array(dist[(kind, True)]) < np.array(dist[(kind, False)])))
            print(
                f"f0 {f0_form:>8} {kind:>8}: dry {d:.2f} ({100 * (1 - d / base_dry):3.0f} %), "
                f"+filter {w:.2f} ({100 * (1 - w / base_wet):3.0f} % vs baseline+filter, "
                f"{100 * (1 - w / base_dry):3.0f} % vs dry baseline); closer with it on {better} of {len(dist[(kind, True)])}",
                flush=True,
            )


if __name__ == "__main__":
    main()
