"""``njit`` for plugin kernels that does not import numba until a kernel must compile in process.

A node's kernel is compiled into the generated modules of ``_nodes/aot.py``, which are loaded
without numba; but a plugin module that says ``from numba import njit`` imports numba (0.3 s of
CPU and 100 MB) the moment it is imported, even when every kernel it defines comes from a
compiled module. :func:`njit` takes numba's options and returns a :class:`LazyKernel`: the
Python function and its options, importable by name (the fusion step and the compile
subprocess refer to kernels by import path). The first time a kernel is needed in this process
(called, or compiled into a kernel that calls it), :func:`realise_all` imports numba and
replaces every lazy kernel, wherever a module holds one, by its numba dispatcher, so that numba
sees dispatchers, never this wrapper, when it types a function calling them. Once numba is
imported, :func:`njit` is numba's own.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

_pending: list[LazyKernel] = []
_lock = threading.Lock()
#: LazyKernel's own attributes (any other was set by a plugin and is carried to the dispatcher)
_OWN = {"py_func", "options", "kind", "dispatcher", "__module__", "__name__", "__qualname__", "__doc__"}


class LazyKernel:
    """A numba ``@njit`` function not compiled (nor numba imported) until it is first needed."""

    def __init__(self, function: Callable[..., Any], options: dict[str, Any], kind: str = "njit") -> None:
        self.py_func = function
        self.options = options
        self.kind = kind
        self.dispatcher: Any = None
        self.__module__ = function.__module__
        self.__name__ = function.__name__
        self.__qualname__ = function.__qualname__
        self.__doc__ = function.__doc__
        _pending.append(self)

    def realised(self) -> Any:
        """numba's dispatcher for this kernel (imports numba on the first call in a process)."""
        if self.dispatcher is None:
            realise_all()
        return self.dispatcher

    def __call__(self, *args: Any) -> Any:
        return self.realised()(*args)

    def compile(self, signature: Any) -> Any:
        """numba's ``Dispatcher.compile``."""
        return self.realised().compile(signature)

    def __getattr__(self, name: str) -> Any:  # the rest of numba's dispatcher, once there is one
        if name.startswith("__") or self.dispatcher is None:  # a probe (``getattr(k, "chain", None)``)
            raise AttributeError(name)  # does not import numba
        return getattr(self.dispatcher, name)

    def __repr__(self) -> str:
        return f"<lazy numba kernel {self.__module__}.{self.__qualname__}>"


def njit(*args: Any, **options: Any) -> Any:
    """numba's ``njit`` (same options), compiled on first need: importing a module of kernels
    imports no numba. Use it as ``@njit`` or ``@njit(cache=True, nogil=True)``."""
    if "numba" in sys.modules and not _pending:
        from numba import njit as numba_njit

        return numba_njit(*args, **options)
    if args and callable(args[0]):
        return LazyKernel(args[0], options)
    return lambda function: LazyKernel(function, options)


def _made(kernel: LazyKernel, numba_njit: Any, numba_intrinsic: Any) -> Any:
    """What numba makes of a lazy kernel: a dispatcher, an intrinsic, or one of its names."""
    if kernel.kind == "intrinsic":
        return numba_intrinsic(kernel.py_func)
    if kernel.kind.startswith("numba."):
        import numba

        return getattr(numba, kernel.kind.removeprefix("numba."))
    return numba_njit(**kernel.options)(kernel.py_func)


def _carray(pointer: Any, shape: Any, dtype: Any = None) -> Any:  # pragma: no cover - stands in
    """numba's ``carray`` (an array over a pointer, in compiled code), resolved on first need."""
    raise TypeError("carray works in compiled code only")


carray = LazyKernel(_carray, {}, "numba.carray")
"""numba's ``carray`` for plugin kernels (an array over a pointer, in compiled code), without
importing numba until a kernel compiles in process (``neuralgraph.plugin.carray``)."""


def intrinsic(function: Callable[..., Any]) -> Any:
    """numba's ``numba.extending.intrinsic``, made on first need like :func:`njit` (its body
    imports what it needs from numba, at typing time)."""
    if "numba" in sys.modules and not _pending:
        from numba.extending import intrinsic as numba_intrinsic

        return numba_intrinsic(function)
    return LazyKernel(function, {}, "intrinsic")


def compile_for(function: Any, args: tuple[Any, ...]) -> None:
    """Compile (or load from numba's disk cache) ``function``'s overload for a call with ``args``,
    without running it (control thread). A lazy kernel is realised first (numba is imported); a
    function that is not a numba dispatcher, or arguments numba cannot type, are left alone: the
    first call then compiles, as it would have."""
    if isinstance(function, LazyKernel):
        function = function.realised()
    if not hasattr(function, "compile") or not hasattr(function, "py_func"):
        return
    from numba import typeof

    try:
        function.compile(tuple(typeof(a) for a in args))
    except Exception:  # untypable arguments: compiled at the first call instead
        return


def realise_all() -> None:
    """Import numba and put a dispatcher in place of every lazy kernel, in every module that
    holds one (control thread: importing numba holds the GIL for a while)."""
    from neuralgraph._nodes.jit import use_light_cache_loads

    use_light_cache_loads()  # numba is used in this process: cached kernels load without a refresh
    with _lock:
        if not _pending:
            return
        from numba import njit as numba_njit
        from numba.extending import intrinsic as numba_intrinsic

        for kernel in _pending:
            if kernel.dispatcher is None:
                kernel.dispatcher = _made(kernel, numba_njit, numba_intrinsic)
                for name, value in vars(kernel).items():  # what a plugin set on it (``chain``)
                    if name not in _OWN:
                        setattr(kernel.dispatcher, name, value)
        swap = {id(k): k.dispatcher for k in _pending}
        _pending.clear()
        for module in list(sys.modules.values()):
            if not issubclass(type(module), ModuleType):  # no attribute lookups on stand-ins
                continue
            names = module.__dict__
            for name, value in list(names.items()):
                if type(value) is LazyKernel and id(value) in swap:  # no __class__ lookups on proxies
                    names[name] = swap[id(value)]
