"""The SVF's four-lanes-at-a-time and vector forms beside its per-lane loop, same process, same inputs.

    python benchmarks/svf_lanes_speed.py [--lanes 4,8,16,32] [--block 64] [--rounds 25]

For each lane count, the compiled kernels of ``filter.lowpass`` (``_svf_lanes_kernel``, four at a
time, used for a multiple of 4 lanes below 8; ``_svf_vector_kernel``, eight at a time as one
vector, used from 8 lanes; and ``_svf_kernel``, the per-lane loop) filter the same
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


def vector(block: int):
    """_svf_vector_kernel with its vector arrays, called as the other kernels are."""
    io, c, s, rows = (
        np.zeros((block, filters.SVF_VECTOR)),
        np.zeros((8, filters.SVF_VECTOR)),
        np.zeros((2, filters.SVF_VECTOR)),
        np.zeros(2 * filters.SVF_VECTOR, np.int64),
    )

    def kernel(x, cutoff, q, mode, state, coeffs, rate, out, frames):
        filters._svf_vector_kernel(x, cutoff, q, mode, state, coeffs, rate, out, io, c, s, rows, frames)

    return kernel


def check_equal(lanes: int, block: int) -> None:
    x = np.random.default_rng(1).standard_normal((300, lanes, block)).astype(np.float32)
    sweep = 1200.0 * (1.0 + 0.3 * np.sin(np.arange(300 * block) / 500.0))
    cutoff = np.repeat(sweep.astype(np.float32).reshape(300, 1, block), lanes, axis=1)
    cutoff[::3] = 1200.0  # held blocks between modulated ones
    for mode in range(4):
        b = render(filters._svf_kernel, x, cutoff, mode)
        for form in (filters._svf_lanes_kernel, vector(block)):
            assert np.array_equal(render(form, x, cutoff, mode), b), f"{lanes} lanes, mode {mode}: outputs differ"


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
    print("lanes | per-lane loop µs/block | four at a time | vector of 8 (each: µs/block, ratio to per-lane)")
    for lanes in [int(n) for n in a.lanes.split(",")]:
        check_equal(lanes, a.block)
        kernels = (filters._svf_kernel, filters._svf_lanes_kernel, vector(a.block))
        timers = [timer(k, lanes, a.block, 5000) for k in kernels]
        best = [float("inf")] * 3
        for _ in range(a.rounds):
            best = [min(b, t()) for b, t in zip(best, timers)]
        print(
            f"{lanes} | {best[0]:.2f} | {best[1]:.2f}, {best[0] / best[1]:.2f}x | {best[2]:.2f}, {best[0] / best[2]:.2f}x"
        )


if __name__ == "__main__":
    main()
