"""Allocation checks for audio-thread code (tracemalloc), used by the contract suite and tests.

tracemalloc traces numpy's array data as well as Python objects, so a temporary array made by a
ufunc without ``out=`` shows up in the traced peak. Python's own small objects (a float, a view
header) are tens of bytes; run the check at a large block (4096 frames) so that any array
temporary, at least 16 KB, stands far above that noise.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

#: Peak growth allowed per call: half of one float32 array of a 4096-frame block (16 KB), and
#: above the small Python objects (scalars, views, iterators; 1-2 KB per block in a patch of a
#: dozen nodes) that a call creates and frees.
DEFAULT_TOLERANCE = 8192
"""Bytes of peak growth allowed per call by :func:`assert_no_allocations` (8 KB)."""


class AllocationError(AssertionError):
    """Steady-state code allocated memory."""


def measure_allocations(run: Callable[[], object], calls: int = 50, warmup: int = 20) -> tuple[int, int]:
    """Run ``run`` ``warmup`` times, then ``calls`` times under tracemalloc.

    Returns ``(largest peak growth during one call, net growth over all calls)`` in bytes.
    """
    for _ in range(warmup):
        run()
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        worst = 0
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(calls):
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            run()
            _, peak = tracemalloc.get_traced_memory()
            worst = max(worst, peak - before)
        end, _ = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return worst, end - start


def assert_no_allocations(
    run: Callable[[], object], calls: int = 50, warmup: int = 20, tolerance: int = DEFAULT_TOLERANCE
) -> None:
    """Fail if ``run`` allocates a buffer (peak growth above ``tolerance``) or leaks, per call."""
    worst, net = measure_allocations(run, calls, warmup)
    if worst > tolerance:
        raise AllocationError(f"allocated up to {worst} bytes within one call (tolerance {tolerance})")
    if net > tolerance:
        raise AllocationError(f"memory grew by {net} bytes over {calls} calls (tolerance {tolerance})")
