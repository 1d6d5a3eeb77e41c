"""Evaluate the neural drive (graphs/models/amp_gru.onnx) against its target, sox, on held-out signals.

The held-out signals are made the way train_amp.py makes its training audio but with seeds the
training never used (a new clean-guitar phrase, new random oscillator tones), plus fixed test
tones. Each goes through the real ``sox`` effect chain (the target) and through ``onnx.model``
streaming the model block by block (block 128, state carried across blocks). The error is the
error-to-signal ratio, ESR = sum((y - target)^2) / sum(target^2), in dB (10 log10 ESR; -20 dB =
1 %), skipping the first 50 ms; the dry signal's ESR against the same target is the reference.

Usage (needs fluidsynth, fluid-soundfont-gm and sox; no torch)::

    python examples/train/evaluate_amp.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_amp as ta  # the training script's signals and sox chain, one definition

ROOT = Path(__file__).resolve().parent.parent.parent
SKIP = ta.SR // 20  # the first 50 ms: the GRU and sox both start from rest


def stream(model: Path, x: np.ndarray, block: int = 128) -> np.ndarray:
    """``x`` through ``onnx.model`` (rate stream), block by block; the tail block is zero-padded."""
    from neuralgraph.plugin import Ports, PrepareContext
    from neuralgraph_plugins.onnx_model import OnnxModel

    node = OnnxModel(model=str(model), rate="stream")
    node.prepare(PrepareContext(sample_rate=ta.SR, block_size=block, lanes=1, input_lanes={}, output_lanes={}))
    blocks = -(-x.size // block)
    padded = np.zeros(blocks * block, np.float32)
    padded[: x.size] = x
    y = np.zeros_like(padded)
    out = np.zeros((1, block), np.float32)
    for b in range(blocks):
        node.process(Ports({"x": padded[None, b * block : (b + 1) * block]}), Ports({"y": out}), block)
        y[b * block : (b + 1) * block] = out[0]
    return y[: x.size]


def esr_db(y: np.ndarray, target: np.ndarray) -> float:
    """Error-to-signal ratio in dB, past the first 50 ms."""
    err = np.sum((y[SKIP:] - target[SKIP:]) ** 2)
    return float(10.0 * np.log10(err / np.sum(target[SKIP:] ** 2)))


def tone(kind: str, freq: float, level: float, seconds: float = 1.0) -> np.ndarray:
    phase = (freq * np.arange(int(seconds * ta.SR)) / ta.SR) % 1.0
    return level * (np.sin(2 * np.pi * phase) if kind == "sine" else 2.0 * phase - 1.0)


def held_out_signals(soundfont: str, workdir: Path) -> dict[str, np.ndarray]:
    """Signals the training never saw (training used seeds 1 and 2)."""
    return {
        "guitar phrase (seed 11), 10 s": ta.guitar_phrase(soundfont, workdir, 10.0, seed=11),
        "oscillator tones (seed 12), 10 s": ta.oscillator_tones(10.0, seed=12),
        "saw 110 Hz, level 0.5": tone("saw", 110.0, 0.5),
        "saw 440 Hz, level 0.8": tone("saw", 440.0, 0.8),
        "sine 250 Hz, level 0.6": tone("sine", 250.0, 0.6),
        "sine 1 kHz, level 0.2": tone("sine", 1000.0, 0.2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2")
    ap.add_argument("--model", type=Path, default=ROOT / "graphs" / "models" / "amp_gru.onnx")
    args = ap.parse_args()
    print("| held-out signal | model ESR dB | model ESR % | dry ESR dB |\n|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, dry in held_out_signals(args.soundfont, Path(tmp)).items():
            wet = ta.sox(dry, Path(tmp))
            model = esr_db(stream(args.model, dry.astype(np.float32)), wet)
            print(f"| {name} | {model:.1f} | {100 * 10 ** (model / 10):.2f} | {esr_db(dry, wet):.1f} |", flush=True)


if __name__ == "__main__":
    main()
