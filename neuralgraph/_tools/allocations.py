"""Allocation checks for audio-thread code, used by the contract suite and tests.

``assert_no_allocations`` proves a piece of audio-thread code allocates no buffers in steady
state, with two measurements:

- numpy's data allocations, counted one by one through a counting data-memory handler
  (:mod:`neuralgraph._tools.alloccount`): any array made in a call, of any size, at any block
  size, fails. numpy's own constant overhead, a Python number turned into a 0-d array for a ufunc
  (at most :data:`~neuralgraph._tools.alloccount.SCALAR_BYTES` bytes), is the only allowance.
- tracemalloc's peak growth per call and net growth, for everything else (Python lists that
  grow, ufunc iteration buffers). Python's own transient objects (numba's argument boxing, view
  headers) reach 1-3 KB per block in an ordinary patch, hence the byte tolerance here.
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


def array_allocations(run: Callable[[], object], calls: int = 20) -> list[int]:
    """The size in bytes of each numpy data allocation larger than a scalar, over ``calls``
    calls of ``run`` (run it warm). Empty when no call made an array."""
    from neuralgraph._tools.alloccount import SCALAR_BYTES, largest_per_call, supported

    if not supported():  # pragma: no cover - numpy < 1.22
        return []
    return [size for size in largest_per_call(run, calls) if size > SCALAR_BYTES]


def assert_no_allocations(
    run: Callable[[], object], calls: int = 50, warmup: int = 20, tolerance: int = DEFAULT_TOLERANCE
) -> None:
    """Fail if ``run`` makes a numpy array (any size), allocates a buffer (peak growth above
    ``tolerance``) or leaks, per call."""
    worst, net = measure_allocations(run, calls, warmup)
    arrays = array_allocations(run, calls)
    if arrays:
        raise AllocationError(f"made a numpy array of {max(arrays)} bytes in {len(arrays)} of {calls} calls")
    if worst > tolerance:
        raise AllocationError(f"allocated up to {worst} bytes within one call (tolerance {tolerance})")
    if net > tolerance:
        raise AllocationError(f"memory grew by {net} bytes over {calls} calls (tolerance {tolerance})")
