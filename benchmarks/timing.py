"""Timing shared by the per-node benchmarks (run them as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable


def per_block(run: Callable[[], None], blocks: int, warmup: int = 20) -> float:
    """Best of 5 CPU times per call, after ``warmup`` calls (numba compiles on the first)."""
    for _ in range(warmup):
        run()
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(blocks):
            run()
        best = min(best, (time.process_time() - t0) / blocks)
    return best
