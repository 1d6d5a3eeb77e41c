"""Per-block cost of the neural nodes: onnx.model with the shipped models, the DDSP synthesis nodes,
and the whole neural flute patch.

    python benchmarks/onnx_node.py [--blocks 2000] [--sample-rate 48000]

Prints median and p99 microseconds per block and the share of the block period (one core).
Timing on a shared VM is noisy (see /work/shared/research/neural.md): read orders of magnitude.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from neuralgraph_plugins.ddsp import FilteredNoise, HarmonicSynth
from neuralgraph_plugins.onnx_model import OnnxModel

import neuralgraph as ng
from neuralgraph.node import Ports, PrepareContext

ROOT = Path(__file__).resolve().parent.parent


def time_calls(fn, blocks: int) -> tuple[float, float]:
    for _ in range(50):
        fn()
    times = np.empty(blocks)
    for i in range(blocks):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return float(np.median(times) * 1e6), float(np.percentile(times, 99) * 1e6)


def node_runner(node, lanes: int, block: int, sr: float, values: dict[str, float]):
    ctx = PrepareContext(sample_rate=sr, block_size=block, lanes=lanes, input_lanes={}, output_lanes={})
    node.prepare(ctx)

    def width(decl) -> int:
        return 1 if decl.rate is ng.ports.Rate.CONTROL else block

    rng = np.random.default_rng(0)
    ins = Ports({p: np.full((lanes, width(d)), values.get(p, 0.1), np.float32)
                 + (0.01 * rng.standard_normal((lanes, width(d)))).astype(np.float32)
                 for p, d in node.inputs().items()})
    outs = Ports({p: np.zeros((lanes, width(d)), np.float32) for p, d in node.outputs().items()})
    return lambda: node.process(ins, outs, block)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=2000)
    ap.add_argument("--sample-rate", type=float, default=48000.0)
    args = ap.parse_args()
    sr = args.sample_rate
    flute = str(ROOT / "models" / "ddsp_flute.onnx")
    amp = ROOT / "models" / "amp_gru.onnx"
    rows = []
    for block in (64, 128, 256, 512):
        budget = 1e6 * block / sr
        cases = [
            ("ddsp_flute decoder, 1 lane", OnnxModel(model=flute), 1, {"f0": 440.0, "loudness": -30.0}),
            ("ddsp_flute decoder, 8 lanes (1 call)", OnnxModel(model=flute), 8, {"f0": 440.0, "loudness": -30.0}),
            ("synth.harmonic 32, 1 lane", HarmonicSynth(count=32), 1, {"freq": 440.0}),
            ("synth.harmonic 32, 8 lanes", HarmonicSynth(count=32), 8, {"freq": 440.0}),
            ("synth.filtered_noise 16, 1 lane", FilteredNoise(bands=16), 1, {}),
        ]
        if amp.exists():
            cases.append(("amp_gru (GRU-16 per sample), 1 lane", OnnxModel(model=str(amp), rate="stream"), 1, {}))
        for name, node, lanes, values in cases:
            med, p99 = time_calls(node_runner(node, lanes, block, sr, values), args.blocks)
            rows.append((block, name, med, p99, 100 * med / budget, 100 * p99 / budget))
        engine = ng.Engine(ng.load_patch(ROOT / "graphs" / "neural_flute.toml"), sample_rate=sr, block_size=block)
        for note in (60, 64, 67, 72):
            engine.note_on(note, velocity=100)
        med, p99 = time_calls(engine.process, args.blocks)
        rows.append((block, "graphs/neural_flute.toml, 4 voices held", med, p99, 100 * med / budget, 100 * p99 / budget))
    print(f"{'block':>5}  {'what':<42} {'median us':>10} {'p99 us':>9} {'% budget':>9} {'p99 %':>7}")
    for block, name, med, p99, pct, p99pct in rows:
        print(f"{block:>5}  {name:<42} {med:>10.1f} {p99:>9.1f} {pct:>9.1f} {p99pct:>7.1f}")


if __name__ == "__main__":
    main()
