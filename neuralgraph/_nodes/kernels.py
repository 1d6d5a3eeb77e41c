"""Compiled kernels of compiler-emitted steps, offered for fusion (imported on first use: numba).

Each computes exactly what the step's numpy code does, in the same float32 operations and order.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def mix1_kernel(constant, t0, s0, o0, out, frames):  # pragma: no cover - compiled
    """``out = constant + (t0 * s0 + o0)`` (a single mapped source)."""
    width = min(frames, out.shape[1])  # a control-rate input is one column, whatever the block
    for lane in range(out.shape[0]):
        for i in range(width):
            out[lane, i] = constant + (t0[lane, i] * s0 + o0)


@njit(cache=True, nogil=True)
def mix2_kernel(constant, t0, s0, o0, t1, s1, o1, out, frames):  # pragma: no cover - compiled
    """``out = constant + (t0 * s0 + o0) + (t1 * s1 + o1)`` (fan-in of two sources)."""
    width = min(frames, out.shape[1])  # a control-rate input is one column, whatever the block
    for lane in range(out.shape[0]):
        for i in range(width):
            out[lane, i] = (constant + (t0[lane, i] * s0 + o0)) + (t1[lane, i] * s1 + o1)


@njit(cache=True, nogil=True)
def copy_kernel(x, out, frames):  # pragma: no cover - compiled
    """``out = x`` (same shape)."""
    width = min(frames, out.shape[1])  # a control-rate signal is one column, whatever the block
    for lane in range(out.shape[0]):
        for i in range(width):
            out[lane, i] = x[lane, i]
