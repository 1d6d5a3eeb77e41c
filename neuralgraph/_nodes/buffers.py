"""Helpers for vectorised nodes that must not allocate in ``process``.

numpy allocates an iteration buffer (about 32 KB at 4096 frames) for a ufunc whose operand is
broadcast with a zero stride, as an input fed by a 1-lane source into an N-lane node is. Such
an operand is first copied into a preallocated scratch buffer; ``np.copyto`` does not buffer.
"""

from __future__ import annotations

import numpy as np


def dense(view: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """``view`` itself when it has no zero stride, else a copy of it in ``scratch`` (same shape)."""
    strides = view.strides
    if strides[0] != 0 and strides[-1] != 0:
        return view
    if view.shape[0] == 1 and strides[-1] != 0:  # one row: a zero lane stride is harmless
        return view
    np.copyto(scratch, view)
    return scratch
