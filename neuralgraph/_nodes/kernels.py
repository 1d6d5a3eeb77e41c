"""Compiled kernels offered for fusion and re-exported to plugin authors (numba imported only to compile them)."""

from __future__ import annotations

from neuralgraph._nodes.lazyjit import njit


@njit(cache=True, nogil=True)
def copy_kernel(x, out, frames):  # pragma: no cover - compiled
    """``out = x`` (same shape)."""
    width = min(frames, out.shape[1])  # a control-rate signal is one column, whatever the block
    for lane in range(out.shape[0]):
        for i in range(width):
            out[lane, i] = x[lane, i]
