"""``analysis.pitch`` measured on held-out real recordings with known pitch (tests/data/make_pitch_set.py).

Each recording is resampled to 48 kHz (the patches' rate) and streamed through the node in
blocks of 256; the value after each block describes the input ``latency`` samples earlier, and is
compared with the truth at that time, on the frames the generator scored:

- **gross pitch error**: the share of reference-voiced frames whose ``f0`` output (the held value
  when the tracker said unvoiced, so nothing is excused) is more than 50 cents off;
- **voicing decision accuracy**: the share of all scored frames (voiced and unvoiced) where the
  ``voiced`` output agrees with the reference.

    python tests/pitch_accuracy.py                  # prints the table (needs fluidsynth, espeak-ng)
    python tests/pitch_accuracy.py threshold=0.2    # the same with other analysis.pitch parameters
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

import neuralgraph as ng
from neuralgraph.plugin import Ports, PrepareContext

RATE, BLOCK = 48000, 256
_spec = importlib.util.spec_from_file_location("make_pitch_set", Path(__file__).parent / "data" / "make_pitch_set.py")
make_pitch_set = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(make_pitch_set)  # type: ignore[union-attr]


def track(audio: np.ndarray, rate: int = RATE, block: int = BLOCK, **params) -> dict[str, np.ndarray]:
    """Run ``analysis.pitch`` over ``audio``; per block: time described (s), f0, confidence, voiced."""
    node = ng.default_registry().node_class("analysis.pitch")(**params)
    ports = ("f0", "confidence", "voiced")
    ctx = PrepareContext(
        sample_rate=float(rate),
        block_size=block,
        lanes=1,
        input_lanes={"in": 1, "octave": 1},
        output_lanes={p: 1 for p in ports},
    )
    node.prepare(ctx)
    outs = Ports({p: np.zeros((1, 1), np.float32) for p in ports})
    x = np.zeros((1, block), np.float32)
    ins = Ports({"in": x, "octave": np.zeros((1, 1), np.float32)})
    n = audio.size // block
    result = {p: np.zeros(n) for p in ports}
    for b in range(n):
        x[0] = audio[b * block : (b + 1) * block]
        node.process(ins, outs, block)
        for p in ports:
            result[p][b] = outs[p][0, 0]
    result["time"] = (np.arange(1, n + 1) * block - node.latency) / rate
    return result


def to_rate(audio: np.ndarray, sr: int) -> np.ndarray:
    """``audio`` at RATE (polyphase resampling)."""
    if sr == RATE:
        return audio
    g = np.gcd(RATE, sr)
    return resample_poly(audio, RATE // g, sr // g)


def score(out: dict[str, np.ndarray], segments: list) -> dict:
    """Gross errors and voicing agreement of one recording's tracking against its segments."""
    t = out["time"]
    ref = np.full(t.size, np.nan)  # nan: not scored
    for start, end, f0 in segments:
        ref[(t >= start) & (t < end)] = f0
    voiced_ref = ref > 0
    scored = ~np.isnan(ref)
    cents = np.abs(1200.0 * np.log2(np.maximum(out["f0"][voiced_ref], 1e-3) / ref[voiced_ref]))
    said = out["voiced"] > 0.5
    return {
        "voiced_frames": int(voiced_ref.sum()),
        "gross": int((cents > 50.0).sum()),
        "octave": int((np.abs(cents - 1200.0) < 100.0).sum()),
        "scored": int(scored.sum()),
        "agree": int((said[scored] == voiced_ref[scored]).sum()),
        "median_cents": float(np.median(cents)) if cents.size else 0.0,
        "cents": cents,
    }


def evaluate(workdir: Path, **params) -> dict[str, dict]:
    """Score every recording of the set (made in ``workdir``)."""
    return {
        name: score(track(to_rate(audio, sr), **params), segments)
        for name, audio, sr, segments in make_pitch_set.make_set(workdir)
    }


def table(results: dict[str, dict]) -> str:
    """The results as a Markdown table, with a total row."""
    lines = [
        "| recording | voiced frames | gross errors | GPE % | median error (cents) | voicing accuracy % |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in [*results.items(), ("**all**", total(results))]:
        gpe = 100.0 * r["gross"] / r["voiced_frames"] if r["voiced_frames"] else 0.0
        med = f"{r['median_cents']:.1f}" if r["voiced_frames"] else "–"
        lines.append(
            f"| {name} | {r['voiced_frames']} | {r['gross']} | {gpe:.2f} | {med} | "
            f"{100.0 * r['agree'] / r['scored']:.1f} |"
        )
    return "\n".join(lines)


def total(results: dict[str, dict]) -> dict:
    """The counts summed over recordings, and the median error over all their voiced frames."""
    keys = ("voiced_frames", "gross", "octave", "scored", "agree")
    summed: dict = {k: sum(r[k] for r in results.values()) for k in keys}
    summed["median_cents"] = float(np.median(np.concatenate([r["cents"] for r in results.values()])))
    return summed


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        settings = {key: float(value) for key, value in (arg.split("=") for arg in sys.argv[1:])}
        print(table(evaluate(Path(tmp), **settings)))
