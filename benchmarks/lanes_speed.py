"""Independent one-lane calls run side by side (``_compile/lanes.py``) beside the plain fused plan.

    python benchmarks/lanes_speed.py [PATCH ... | wide] [--seconds 8] [--rounds 9]

For each patch (default: the per-voice P1, ``graphs/bench/per_voice/p1_saw_filter.toml``, and the
202-node wide patch of ``bench_patches.py``), three engines are built in one process: the fused
plan with the lanes pass (steps ordered in groups, each group one side-by-side call), the same
order with every member its own call (``order only``), and the plain fused plan (``neither``).
Each renders ``--seconds`` offline (``Engine.render``: the many-block driver) in interleaved
rounds; the minimum process time per block of each, and the ratios to ``neither``, are printed:
on a shared machine the ratios are the figures to quote. The outputs are compared first (they
must be equal, bit for bit).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import neuralgraph as ng
import neuralgraph._compile.compiler as compiler
import neuralgraph._compile.fusion as fusion

ROOT = Path(__file__).resolve().parent.parent
RATE = 48000
BLOCK = 64


def load(name: str) -> ng.Patch:
    if name == "wide":
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from bench_patches import wide_patch

        return wide_patch()
    return ng.load_patch(name)


def engine(name: str, order: bool, lanes: bool) -> ng.Engine:
    saved = fusion.laned, compiler.schedule
    if not lanes:  # each member its own call
        fusion.laned = list
    if not order:  # the plain order, buffers coloured as before
        compiler.schedule = lambda steps: (list(steps), None)
    try:
        return ng.Engine(load(name), sample_rate=RATE, block_size=BLOCK)
    finally:
        fusion.laned, compiler.schedule = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("patches", nargs="*", default=[str(ROOT / "graphs/bench/per_voice/p1_saw_filter.toml"), "wide"])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=9)
    a = ap.parse_args()
    blocks = a.seconds * RATE / BLOCK
    for name in a.patches:
        variants = {"lanes": engine(name, True, True), "order only": engine(name, True, False)}
        variants["neither"] = engine(name, False, False)
        first, *rest = (e.render(1.0) for e in variants.values())
        same = all(np.array_equal(first, r) for r in rest)
        best = dict.fromkeys(variants, float("inf"))
        for _ in range(a.rounds):
            for k, e in variants.items():
                t = time.process_time()
                e.render(a.seconds)
                best[k] = min(best[k], (time.process_time() - t) / blocks * 1e6)
        cells = ", ".join(f"{k} {best[k]:.2f} ({best['neither'] / best[k]:.2f}x)" for k in variants)
        print(f"{Path(name).name}: µs per block at block {BLOCK}: {cells}; outputs equal: {same}")


if __name__ == "__main__":
    main()
