"""One compiled call that copies many small arrays: the state a swap carries over (``_runtime/swap.py``).

The table holds, per pair, the source address, the target address and the byte count; the
arrays themselves are kept alive by the caller. Cached on disk by numba like every kernel, so
the first swap of a session does not compile while audio plays (``nogil``: the lock is free).
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit

from neuralgraph._compile.fusion import address_as_pointer

_ptr = address_as_pointer()


@njit(cache=True, nogil=True)
def copy_bytes(table):  # pragma: no cover - compiled
    """For each row ``(source, target, nbytes)`` of the int64 ``table``: copy the bytes."""
    for k in range(table.shape[0]):
        n = table[k, 2]
        src = carray(_ptr(table[k, 0]), (n,), np.uint8)
        dst = carray(_ptr(table[k, 1]), (n,), np.uint8)
        for i in range(n):
            dst[i] = src[i]
