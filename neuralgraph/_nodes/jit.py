"""numba's one-time set-up in a process, cut to what loading cached kernels needs.

A render whose kernels are all in numba's disk cache compiles nothing, yet numba pays two
start-up costs made for compiling:

- *The full refresh on every cache load.* ``FunctionCache.load_overload`` first calls
  ``target_context.refresh()``, which imports and installs every typing and lowering registry
  (0.15 to 0.3 s of CPU and 12 MB) although a cached overload is machine code that is linked,
  not typed. :func:`use_light_cache_loads` makes a cache load initialise only numba's runtime
  (NRT, whose symbols the loaded code links against) and load; a cache miss then sets up the
  registries (below) and numba compiles as always, and its compiler refreshes the context
  itself before typing anything.
- *The scipy BLAS probe.* ``numba.np.arraymath``, one of those registries, imports
  ``scipy.linalg`` when it is imported (0.2 s, 15 MB) only to choose how ``np.convolve`` and
  ``np.correlate`` take inner products in compiled code (scipy's BLAS dot or a plain loop, the
  same sums). ``np.dot`` and ``np.linalg`` in compiled code look for BLAS again when typed, and
  find it. :func:`load_numba_registries` imports that registry with the probe's import made to
  fail (``sys.modules[name] = None`` is Python's way to make an import raise ``ImportError``).

Both are installed once per process when kernels are first compiled or loaded in process by
numba (``_nodes/lazyjit.realise_all``: the JIT fallback of ``_nodes/aot.py``, profile builds);
a render whose kernels come from compiled modules never imports numba. If numba's internals are
not the ones expected, numba is left as it is.
"""

from __future__ import annotations

import sys
from typing import Any

#: The module numba's BLAS probe imports (``numba.np.linalg.ensure_blas``).
_BLAS_PROBE = "scipy.linalg.cython_blas"

_installed = False


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


def _light_load_overload(self: Any, sig: Any, target_context: Any) -> Any:
    """``FunctionCache.load_overload`` without the registry refresh (numba holds its compile lock)."""
    from numba.core.runtime import rtsys

    rtsys.initialize(target_context)  # the runtime the cached code links against
    with self._guard_against_spurious_io_errors():
        loaded = self._load_overload(sig, target_context)
    if loaded is None:  # a miss: numba compiles next, after refreshing the context itself
        load_numba_registries()
    return loaded


def use_light_cache_loads() -> None:
    """Install the light cache load and the probe-free registry import (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    from numba.core import caching

    cache = caching.FunctionCache
    if all(hasattr(cache, a) for a in ("load_overload", "_load_overload", "_guard_against_spurious_io_errors")):
        cache.load_overload = _light_load_overload  # type: ignore[method-assign]
    else:  # another numba: only skip the probe, before any refresh imports the registry
        load_numba_registries()
