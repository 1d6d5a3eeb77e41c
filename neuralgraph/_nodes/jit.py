"""numba's one-time set-up in a process, without the scipy import it makes only to pick a dot product.

The first compile or cache load of a process makes numba import its implementation registries.
One of them, ``numba.np.arraymath``, probes for scipy's BLAS when it is imported, and the probe
imports ``scipy.linalg``: about 0.2 s of CPU and 15 MB, a third of a short render's start-up.
The probe's answer only chooses how ``np.convolve`` and ``np.correlate`` take inner products in
compiled code (scipy's BLAS dot or a plain loop, the same sums). ``np.dot`` and ``np.linalg`` in
compiled code look for BLAS again when they are typed, and find it. So the compiler imports the
registry with the probe's import made to fail (``sys.modules[name] = None`` is Python's way to
make an import raise ``ImportError``), then lets scipy be imported normally again.
"""

from __future__ import annotations

import sys

#: The module numba's BLAS probe imports (``numba.np.linalg.ensure_blas``).
_BLAS_PROBE = "scipy.linalg.cython_blas"


def load_numba_registries() -> None:
    """Import numba's array registry now, skipping its scipy BLAS probe (control thread, idempotent).

    Does nothing if the registry is already imported, or if scipy's linear algebra is (the probe
    then costs nothing): whoever imported it first decided.
    """
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    sys.modules[_BLAS_PROBE] = None  # type: ignore[assignment]
    try:
        import numba.np.arraymath  # noqa: F401 - imported for its registrations
    finally:
        if _BLAS_PROBE in sys.modules and sys.modules[_BLAS_PROBE] is None:
            del sys.modules[_BLAS_PROBE]
