"""Engine overhead per node per block: a chain of cheap nodes vs the same numpy calls made directly.

    python benchmarks/engine_overhead.py [--nodes 50] [--blocks 2000]

Prints, for block sizes 64 and 512, the CPU time per block of a patch that is a sine into a
chain of N ``math.mul`` nodes, the time of the same N ``np.multiply(..., out=...)`` calls in a
plain loop, and the per-node overhead of the engine (the ratio is the figure that counts on a
noisy machine).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import neuralgraph as ng


def chain_patch(n: int) -> ng.Patch:
    nodes: dict = {"osc": {"type": "osc.sine", "freq": 440.0}}
    prev = "osc"
    for i in range(n):
        nodes[f"m{i}"] = {"type": "math.mul", "in": prev, "gain": 0.999}
        prev = f"m{i}"
    nodes["out"] = {"type": "io.output", "channels": 1, "in": prev}
    return ng.load_patch({"schema": 1, "nodes": nodes})


def per_block(run, blocks: int) -> float:
    for _ in range(50):
        run()
    best = float("inf")
    for _ in range(5):  # best of 5 repeats: the least disturbed by other processes
        t0 = time.process_time()
        for _ in range(blocks):
            run()
        best = min(best, (time.process_time() - t0) / blocks)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--blocks", type=int, default=2000)
    args = parser.parse_args()
    n = args.nodes
    print(f"chain of {n} math.mul nodes after a sine, 48 kHz, CPU time per block (best of 5)")
    print(f"{'block':>6} {'engine µs':>10} {'numpy µs':>9} {'ratio':>6} {'overhead µs/node':>17} {'RT factor':>10}")
    for block in (64, 512):
        engine = ng.Engine(chain_patch(n), sample_rate=48000, block_size=block)
        t_engine = per_block(engine.process, args.blocks)

        # the same work as plain numpy: one phase-accumulated sine, then n multiplies with out=
        ph = np.zeros((1, block), np.float32)
        phase = np.zeros((1, 1), np.float32)
        a = np.zeros((1, block), np.float32)
        b = np.zeros((1, block), np.float32)
        gain = np.full((1, block), 0.999, np.float32)
        freq = np.full((1, block), 440.0, np.float32)
        inv = np.float32(1 / 48000)

        def direct() -> None:
            np.multiply(freq, inv, out=ph)
            np.add.accumulate(ph, axis=1, out=ph)
            np.add(ph, phase, out=ph)
            np.remainder(ph, 1.0, out=ph)
            phase[0, 0] = ph[0, -1]
            np.multiply(ph, np.float32(2 * np.pi), out=ph)
            np.sin(ph, out=a)
            src, dst = a, b
            for _ in range(n):
                np.multiply(src, gain, out=dst)
                src, dst = dst, src

        t_direct = per_block(direct, args.blocks)
        overhead = (t_engine - t_direct) / (n + 2)
        period = block / 48000
        print(
            f"{block:>6} {t_engine * 1e6:>10.1f} {t_direct * 1e6:>9.1f} {t_engine / t_direct:>6.2f} "
            f"{overhead * 1e6:>17.2f} {period / t_engine:>10.1f}"
        )


if __name__ == "__main__":
    main()
