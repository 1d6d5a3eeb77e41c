"""Compiled kernels offered for fusion and re-exported to plugin authors (imported on first use: numba)."""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def copy_kernel(x, out, frames):  # pragma: no cover - compiled
    """``out = x`` (same shape)."""
    width = min(frames, out.shape[1])  # a control-rate signal is one column, whatever the block
    for lane in range(out.shape[0]):
        for i in range(width):
            out[lane, i] = x[lane, i]
