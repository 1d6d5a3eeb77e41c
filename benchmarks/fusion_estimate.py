"""What fusing a chain of compiled nodes would save: 20 RBJ peaking EQs, one call each vs one call.

    python benchmarks/fusion_estimate.py [--blocks 20000]

P3's cost is almost all dispatch: each ``filter.peak`` makes one numba call per block whose
work on 64 samples is far smaller than the call. This measures, outside the engine, the 20
calls of the node's own kernel (``_biquad_kernel``) against one compiled call that runs the same
20 stages over stacked state and coefficient arrays, checks that both give the same samples, and
prints CPU per block (best of 5, process time) at block 64 and 256. This was the estimate that
justified building kernel fusion into the compiler (neuralgraph/_compile/fusion.py); the engine's fused
plan is measured by ``bench_patches.py`` (with and without ``--no-fuse``).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from numba import njit
from timing import per_block

from neuralgraph_plugins.filters import _biquad_kernel

STAGES = 20
RATE = 48000.0


@njit(cache=True, nogil=True)
def _chain_kernel(x, coeffs, state, out, frames):  # pragma: no cover - compiled
    """Every stage in series on every lane; coeffs (stages, 5), state (stages, lanes, 2)."""
    for lane in range(x.shape[0]):
        for i in range(frames):
            v = x[lane, i]
            for s in range(coeffs.shape[0]):
                y = coeffs[s, 0] * v + state[s, lane, 0]
                state[s, lane, 0] = coeffs[s, 1] * v - coeffs[s, 3] * y + state[s, lane, 1]
                state[s, lane, 1] = coeffs[s, 2] * v - coeffs[s, 4] * y
                v = y
            out[lane, i] = v


def rbj_peak(fc: float, q: float, gain_db: float) -> np.ndarray:
    """``[b0, b1, b2, a1, a2]`` of the cookbook peaking EQ, normalised by a0."""
    w0 = 2 * math.pi * fc / RATE
    alpha = math.sin(w0) / (2 * q)
    cw = math.cos(w0)
    amp = 10 ** (gain_db / 40)
    a0 = 1 + alpha / amp
    return np.array([1 + alpha * amp, -2 * cw, 1 - alpha * amp, -2 * cw, 1 - alpha / amp]) / a0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=20000)
    args = parser.parse_args()
    freqs = [100.0 * 100.0 ** (i / (STAGES - 1)) for i in range(STAGES)]
    gains = [6.0 if i % 2 == 0 else -6.0 for i in range(STAGES)]
    print(f"{STAGES} peaking EQs in series, 1 lane, CPU per block (best of 5)")
    print(f"{'block':>6} {'20 calls µs':>12} {'1 call µs':>10} {'saving':>7}")
    for block in (64, 256):
        rng = np.random.default_rng(0)
        x = (rng.random((1, block)) * 2 - 1).astype(np.float32)
        controls = [
            (np.full((1, 1), f, np.float32), np.ones((1, 1), np.float32), np.full((1, 1), g, np.float32))
            for f, g in zip(freqs, gains)
        ]
        states = [np.zeros((1, 2)) for _ in range(STAGES)]
        current = [np.full((1, 3), np.nan) for _ in range(STAGES)]
        coeff_rows = [np.zeros((1, 5)) for _ in range(STAGES)]
        bufs = [np.zeros((1, block), np.float32) for _ in range(2)]

        def separate() -> np.ndarray:
            src = x
            for k in range(STAGES):
                dst = bufs[k % 2]
                cut, q, gain = controls[k]
                _biquad_kernel(src, cut, q, gain, 0, states[k], current[k], coeff_rows[k], RATE, dst, block)
                src = dst
            return src

        stacked = np.array([rbj_peak(f, 1.0, g) for f, g in zip(freqs, gains)])
        chain_state = np.zeros((STAGES, 1, 2))
        fused_out = np.zeros((1, block), np.float32)

        def fused() -> np.ndarray:
            _chain_kernel(x, stacked, chain_state, fused_out, block)
            return fused_out

        a, b = separate(), fused()
        assert np.allclose(a, b, atol=1e-5), "the fused chain must sound the same"
        t_sep, t_fused = per_block(separate, args.blocks, warmup=100), per_block(fused, args.blocks, warmup=100)
        print(f"{block:>6} {1e6 * t_sep:>12.2f} {1e6 * t_fused:>10.2f} {t_sep / t_fused:>6.1f}x")


if __name__ == "__main__":
    main()
