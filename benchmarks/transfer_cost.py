"""Cost per block of the timbre-transfer patch fed a voiced input, against the MIDI violin in the same run.

    python benchmarks/transfer_cost.py [--blocks 2000] [--block-size 256]

Rows: graphs/transfer_violin.toml with a 220 Hz harmonic tone (vibrato) on its input, so the pitch
tracker analyses a frame every block (silence would skip it); graphs/neural_violin.toml with one
note held (the baseline: the same decoder and synthesis, driven by MIDI); and the two analysis
nodes alone on the same tone. Medians and 99th percentiles in µs per block; the ratio column is
each row's median over the baseline's, the figure to quote on a shared machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import neuralgraph as ng
from neuralgraph.plugin import Ports, PrepareContext

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from melody import melody  # noqa: E402


def timed(step, blocks: int) -> np.ndarray:
    """µs per call of ``step(b)`` over ``blocks`` calls, after 50 warm-up calls."""
    for b in range(50):
        step(b)
    times = np.zeros(blocks)
    for b in range(blocks):
        t0 = time.perf_counter()
        step(b)
        times[b] = time.perf_counter() - t0
    return times * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=2000)
    ap.add_argument("--block-size", type=int, default=256)
    args = ap.parse_args()
    rate, bs = 48000, args.block_size
    tone, _ = melody(rate, [(220.0, (args.blocks + 60) * bs / rate)])

    def feed(engine: ng.Engine):
        def step(b: int) -> None:
            engine.plan.input[0] = tone[b * bs : (b + 1) * bs]
            engine.process()

        return step

    transfer = ng.Engine(ng.load_patch(ROOT / "graphs" / "transfer_violin.toml"), sample_rate=rate, block_size=bs)
    violin = ng.Engine(ng.load_patch(ROOT / "graphs" / "neural_violin.toml"), sample_rate=rate, block_size=bs)
    violin.note_on(57, 100)
    rows = {
        "neural_violin.toml, 1 note held (baseline)": timed(lambda b: violin.process(), args.blocks),
        "transfer_violin.toml, voiced input": timed(feed(transfer), args.blocks),
    }
    for type_name in ("analysis.pitch", "analysis.loudness"):
        node = ng.default_registry().node_class(type_name)()
        node.prepare(
            PrepareContext(
                sample_rate=rate,
                block_size=bs,
                lanes=1,
                input_lanes={p: 1 for p in node.inputs()},
                output_lanes={p: 1 for p in node.outputs()},
            )
        )
        ins = Ports({p: np.zeros((1, bs if p == "in" else 1), np.float32) for p in node.inputs()})
        outs = Ports({p: np.zeros((1, 1), np.float32) for p in node.outputs()})

        def step(b: int, node=node, ins=ins, outs=outs) -> None:
            ins.in_[0] = tone[b * bs : (b + 1) * bs]
            node.process(ins, outs, bs)

        rows[f"{type_name} alone"] = timed(step, args.blocks)
    base = float(np.median(next(iter(rows.values()))))
    period = 1e6 * bs / rate
    print(
        f"block {bs} at {rate} Hz ({period:.0f} µs), {args.blocks} blocks per row; "
        f"transfer latency {transfer.latency} samples ({1000 * transfer.latency / rate:.1f} ms)"
    )
    print("| what | median µs | p99 µs | % of the period | / baseline |")
    print("|---|---:|---:|---:|---:|")
    for name, t in rows.items():
        med = float(np.median(t))
        print(f"| {name} | {med:.1f} | {np.percentile(t, 99):.1f} | {100 * med / period:.2f} | {med / base:.2f} |")


if __name__ == "__main__":
    main()
