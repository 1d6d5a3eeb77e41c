"""The SVF's four-lanes-at-a-time form beside its per-lane loop, same process, same inputs.

    python benchmarks/svf_lanes_speed.py [--lanes 4,8,16,32] [--block 64] [--rounds 25]

For each lane count, both compiled kernels of ``filter.lowpass`` (``_svf_lanes_kernel``, used
when the lanes are a multiple of 4, and ``_svf_kernel``, the per-lane loop) filter the same
noise at a held cutoff (1.2 kHz, Q 2, as in P1). They are timed in interleaved rounds (process
time, minimum per round) and their µs per block and ratio printed: on a shared machine the ratio
is the figure to quote. Outputs are compared first, in every mode over held and modulated
blocks: they must be equal, bit for bit.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from neuralgraph_plugins import filters

RATE = 48000.0


def fresh(lanes: int) -> tuple[np.ndarray, np.ndarray]:
    """A zero state and coefficients that force a computation on the first sample."""
    coeffs = np.zeros((lanes, 6))
    coeffs[:, 0] = np.nan
    return np.zeros((lanes, 2)), coeffs


def render(kernel, x: np.ndarray, cutoff: np.ndarray, mode: int) -> np.ndarray:
    """Blocks ``x[b]`` through ``kernel`` with cutoff ``cutoff[b]``, Q 2; every block's output."""
    lanes, frames = x.shape[1:]
    state, coeffs = fresh(lanes)
    q = np.full((lanes, frames), 2.0, np.float32)
    out = np.zeros(x.shape, np.float32)
    for b in range(len(x)):
        kernel(x[b], cutoff[b], q, mode, state, coeffs, RATE, out[b], frames)
    return out


def check_equal(lanes: int, block: int) -> None:
    x = np.random.default_rng(1).standard_normal((300, lanes, block)).astype(np.float32)
    sweep = 1200.0 * (1.0 + 0.3 * np.sin(np.arange(300 * block) / 500.0))
    cutoff = np.repeat(sweep.astype(np.float32).reshape(300, 1, block), lanes, axis=1)
    cutoff[::3] = 1200.0  # held blocks between modulated ones
    for mode in range(4):
        a = render(filters._svf_lanes_kernel, x, cutoff, mode)
        b = render(filters._svf_kernel, x, cutoff, mode)
        assert np.array_equal(a, b), f"{lanes} lanes, mode {mode}: outputs differ"


def timer(kernel, lanes: int, block: int, calls: int):
    x = np.random.default_rng(2).standard_normal((lanes, block)).astype(np.float32)
    cutoff = np.full((lanes, block), 1200.0, np.float32)
    q = np.full((lanes, block), 2.0, np.float32)
    state, coeffs = fresh(lanes)
    out = np.zeros((lanes, block), np.float32)

    def one_round() -> float:
        start = time.process_time()
        for _ in range(calls):
            kernel(x, cutoff, q, 0, state, coeffs, RATE, out, block)
        return (time.process_time() - start) / calls * 1e6

    return one_round


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lanes", default="4,8,16,32")
    ap.add_argument("--block", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=25)
    a = ap.parse_args()
    print("lanes | per-lane loop µs/block | four at a time µs/block | ratio")
    for lanes in [int(n) for n in a.lanes.split(",")]:
        check_equal(lanes, a.block)
        fast = timer(filters._svf_lanes_kernel, lanes, a.block, 5000)
        slow = timer(filters._svf_kernel, lanes, a.block, 5000)
        best_fast = best_slow = float("inf")
        for _ in range(a.rounds):
            best_slow = min(best_slow, slow())
            best_fast = min(best_fast, fast())
        print(f"{lanes} | {best_slow:.2f} | {best_fast:.2f} | {best_slow / best_fast:.2f}x")


if __name__ == "__main__":
    main()
