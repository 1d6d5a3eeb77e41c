"""Train the neural drive shipped as graphs/models/amp_gru.onnx: a per-sample GRU that imitates sox's
``overdrive`` + ``lowpass`` chain (a real, stateful nonlinear effect), NAM/Proteus style.

Pipeline (offline, a few minutes of CPU):

1. Dry input: a clean electric guitar phrase (General MIDI program 28) rendered by fluidsynth from
   a General MIDI soundfont (``apt-get install fluidsynth fluid-soundfont-gm``), plus oscillator
   tones (sines and saws at random pitches and levels, the sounds the patch feeds it), all at 48 kHz.
2. Wet target: the same audio run through the ``sox`` command line (``apt-get install sox``) with
   ``overdrive 14 30 lowpass 3500``.
3. A GRU (hidden 16) over the samples plus a linear read-out and a dry skip term, trained with
   torch on random 1024-sample chunks (the first 128 samples of each only warm the state up),
   loss = error-to-signal ratio.
4. ONNX export for ``onnx.model`` at ``rate = "stream"``: input ``x`` [batch, frames], output
   ``y`` [batch, frames], recurrent state ``state_in``/``state_out`` [batch, 16] carried by the node.

Usage (torch only here: ``pip install -e .[train]``)::

    python examples/train/train_amp.py --out graphs/models/amp_gru.onnx
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

SR = 48000
HIDDEN = 16
SOX_CHAIN = ["overdrive", "14", "30", "lowpass", "3500"]


def guitar_phrase(soundfont: str, workdir: Path, seconds: float, seed: int) -> np.ndarray:
    """A random clean-guitar phrase rendered by fluidsynth (mono, peak 0.9)."""
    rng = np.random.default_rng(seed)
    mid = mido.MidiFile(ticks_per_beat=960)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000))  # 1920 ticks per second
    track.append(mido.Message("program_change", program=27, channel=0, time=0))
    t, events = 0.2, []
    while t < seconds - 1.0:
        chord = rng.integers(40, 76, size=rng.integers(1, 4))
        length = rng.uniform(0.15, 0.9)
        vel = int(rng.integers(50, 127))
        for n in chord:
            events.append((t, mido.Message("note_on", note=int(n), velocity=vel)))
            events.append((t + length, mido.Message("note_off", note=int(n), velocity=0)))
        t += length + rng.uniform(0.0, 0.2)
    now = 0
    for when, msg in sorted(events, key=lambda e: (e[0], e[1].type == "note_on")):
        tick = round(when * 1920)
        track.append(msg.copy(time=tick - now))
        now = tick
    mid.save(str(workdir / "guitar.mid"))
    subprocess.run(
        [
            "fluidsynth",
            "-ni",
            "-g",
            "0.8",
            "-R",
            "0",
            "-C",
            "0",
            "-F",
            str(workdir / "guitar.wav"),
            "-r",
            str(SR),
            soundfont,
            str(workdir / "guitar.mid"),
        ],
        check=True,
        capture_output=True,
    )
    audio, _ = sf.read(str(workdir / "guitar.wav"), dtype="float64", always_2d=True)
    audio = audio.mean(axis=1)
    return 0.9 * audio / np.abs(audio).max()


def oscillator_tones(seconds: float, seed: int) -> np.ndarray:
    """Sines and naive saws, 0.1-0.5 s each, random pitch (40-1500 Hz) and level (0.05-1)."""
    rng = np.random.default_rng(seed)
    parts, total = [], 0
    while total < seconds * SR:
        n = int(rng.uniform(0.1, 0.5) * SR)
        f = float(np.exp(rng.uniform(np.log(40.0), np.log(1500.0))))
        phase = np.cumsum(np.full(n, f / SR)) % 1.0
        wave = np.sin(2 * np.pi * phase) if rng.random() < 0.5 else 2.0 * phase - 1.0
        parts.append(rng.uniform(0.05, 1.0) * wave)
        total += n
    return np.concatenate(parts)


def sox(dry: np.ndarray, workdir: Path) -> np.ndarray:
    """Run ``dry`` through the sox effect chain; same length, float64."""
    sf.write(str(workdir / "dry.wav"), dry.astype(np.float32), SR, subtype="FLOAT")
    subprocess.run(
        ["sox", "-D", str(workdir / "dry.wav"), str(workdir / "wet.wav"), *SOX_CHAIN], check=True, capture_output=True
    )
    wet, _ = sf.read(str(workdir / "wet.wav"), dtype="float64")
    return wet[: dry.size]


def build_model():
    import torch
    from torch import nn

    class Amp(nn.Module):
        """x [batch, frames] -> y [batch, frames]; GRU state explicit for streaming."""

        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(1, HIDDEN)
            self.out = nn.Linear(HIDDEN, 1)
            self.skip = nn.Parameter(torch.zeros(1))

        def forward(self, x, state_in):
            seq = x.transpose(0, 1).unsqueeze(2)  # [frames, batch, 1]
            y, h = self.gru(seq, state_in.unsqueeze(0))
            y = self.out(y).squeeze(2).transpose(0, 1) + self.skip * x
            return y, h.squeeze(0)

    return Amp()


def train(dry: np.ndarray, wet: np.ndarray, steps: int, seed: int = 0):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # tiny per-step ops: threads only add sync overhead (badly so on a busy machine)
    model = build_model()
    x_all = torch.tensor(dry, dtype=torch.float32)
    y_all = torch.tensor(wet, dtype=torch.float32)
    chunk, warm, batch = 1024, 128, 32
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    rng = np.random.default_rng(seed)
    for step in range(steps):
        starts = rng.integers(0, dry.size - chunk, batch)
        x = torch.stack([x_all[s : s + chunk] for s in starts])
        y = torch.stack([y_all[s : s + chunk] for s in starts])
        pred, _ = model(x, torch.zeros(batch, HIDDEN))
        err = ((pred[:, warm:] - y[:, warm:]) ** 2).sum()
        loss = err / ((y[:, warm:] ** 2).sum() + 1e-8)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step}: ESR {loss.item():.4f}", flush=True)
    return model


def export(model, out: Path) -> None:
    import torch

    model.eval()
    x = torch.zeros(1, 64)
    h = torch.zeros(1, HIDDEN)
    torch.onnx.export(
        model,
        (x, h),
        str(out),
        input_names=["x", "state_in"],
        output_names=["y", "state_out"],
        dynamic_axes={
            "x": {0: "batch", 1: "frames"},
            "state_in": {0: "batch"},
            "y": {0: "batch", 1: "frames"},
            "state_out": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    print(f"wrote {out} ({out.stat().st_size} bytes)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--out", type=Path, default=Path("graphs/models/amp_gru.onnx"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dry = np.concatenate([guitar_phrase(args.soundfont, work, 20.0, seed=1), oscillator_tones(20.0, seed=2)])
        wet = sox(dry, work)
    print(f"{dry.size / SR:.1f} s of training audio; wet RMS {np.sqrt(np.mean(wet**2)):.3f}")
    model = train(dry, wet, args.steps)
    export(model, args.out)


if __name__ == "__main__":
    main()
