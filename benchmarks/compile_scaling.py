"""Compile time against patch size: load_patch + Engine for 10, 100, 1000 and 10000 nodes.

    python benchmarks/compile_scaling.py [--sizes 10 100 1000 10000] [--profile N]

The patch is a chain of sines, each fed through a ``math.mul`` (half the nodes) with every
tenth gain taken from the previous chain link, so it has fan-out, mix steps and buffer reuse.
Prints seconds for ``load_patch`` and for ``Engine`` (compile, prepare, warm-up block) and
microseconds per node: about constant when compile time grows linearly. ``--profile N``
prints the cProfile top 25 for the N-node patch. The node-count limit (``max_nodes``,
10000 by default) is raised explicitly to fit the largest size.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import neuralgraph as ng


def patch_data(n: int) -> dict:
    nodes: dict = {}
    prev = None
    for i in range(n // 2):
        nodes[f"s{i}"] = {"type": "osc.sine", "freq": 100.0 + i % 500}
        gain = f"m{i - 1}" if prev is not None and i % 10 == 0 else 0.5
        nodes[f"m{i}"] = {"type": "math.mul", "in": [f"s{i}"] + ([prev] if prev else []), "gain": gain}
        prev = f"m{i}"
    nodes["out"] = {"type": "io.output", "channels": 1, "in": prev}
    return {"schema": 1, "nodes": nodes}


def measure(n: int) -> tuple[float, float]:
    data = patch_data(n)
    t0 = time.perf_counter()
    patch = ng.load_patch(data, max_nodes=max(len(data["nodes"]), 1))
    t1 = time.perf_counter()
    ng.Engine(patch, sample_rate=48000, block_size=64)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--profile", type=int, metavar="N", help="cProfile the N-node compile")
    args = parser.parse_args()
    measure(10)  # imports, plugin loading and JIT caches out of the way
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        measure(args.profile)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        return
    print(f"{'nodes':>6} {'load_patch s':>13} {'Engine s':>9} {'total s':>8} {'µs/node':>8}")
    for n in args.sizes:
        load, build = measure(n)
        total = load + build
        print(f"{n:>6} {load:>13.3f} {build:>9.3f} {total:>8.3f} {1e6 * total / n:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
