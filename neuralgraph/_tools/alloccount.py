"""Counts numpy's data allocations, of any size, while a piece of code runs.

tracemalloc sees bytes, not allocations: the transient Python objects of one call (numba's
argument boxing, view headers, a ufunc's iterator) add up to 1-3 KB per block in an ordinary
patch, so a byte tolerance cannot tell them from a node that allocates a small array every block.
numpy, though, sends every array data allocation through its data-memory handler (NEP 49). This
module installs a counting handler (numpy's C API ``PyDataMem_SetHandler``, called through
ctypes) that forwards to numpy's default allocator and counts each ``malloc``/``calloc``/``realloc``: an array made in
the audio thread, one byte or one megabyte, counts one. Views, scalars and ``out=`` ufuncs count
nothing.

The handler is a context variable in numpy, so it applies to the calling thread only; arrays it
allocated are freed through it later (by numpy's own ``free``, no Python involved), so it lives
for the whole process.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

_MALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_CALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t)
_REALLOC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_FREE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


class _Allocator(ctypes.Structure):
    _fields_ = [
        ("ctx", ctypes.c_void_p),
        ("malloc", _MALLOC),
        ("calloc", _CALLOC),
        ("realloc", _REALLOC),
        ("free", _FREE),
    ]


class _Handler(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 127), ("version", ctypes.c_uint8), ("allocator", _Allocator)]


#: [allocations, bytes, largest single allocation] counted while a ``counting()`` block is active
_count = [0, 0, 0]

# Safety (an array outlives the block that made it, and is freed whenever, by whichever thread,
# possibly while the interpreter shuts down):
# - the memory comes from numpy's own default allocator and goes back to it: ``free`` is numpy's
#   C function itself, so freeing never runs Python (no GIL needed, nothing torn down at exit can
#   break it), and allocator and deallocator always match (numpy's small-block cache included);
# - the handler struct and the three counting callbacks are pinned (an extra reference never
#   released), so they outlive this module's globals, which the interpreter clears at exit;
# - the callbacks never raise: a failure to count still allocates.
_default: _Allocator | None = None


_handler: _Handler | None = None
_capsule: object | None = None
_set_handler = None


def _counting_callbacks(malloc: Callable, calloc: Callable, realloc: Callable) -> tuple[object, object, object]:
    """The pinned ctypes callbacks: closures (no module global is looked up, so they keep working
    after the interpreter clears this module) that tally, never raise, and allocate through numpy's
    default allocator (NULL, which numpy reports as a MemoryError, if anything fails)."""

    def tally(size: int) -> None:
        try:
            count[0] += 1
            count[1] += size
            if size > count[2]:
                count[2] = size
        except BaseException:  # never let an exception into numpy's allocator
            pass

    def counting_malloc(ctx: int | None, size: int) -> int | None:
        tally(size)
        try:
            return malloc(ctx, size)
        except BaseException:
            return None

    def counting_calloc(ctx: int | None, nelem: int, elsize: int) -> int | None:
        tally(nelem * elsize)
        try:
            return calloc(ctx, nelem, elsize)
        except BaseException:
            return None

    def counting_realloc(ctx: int | None, ptr: int | None, size: int) -> int | None:
        tally(size)
        try:
            return realloc(ctx, ptr, size)
        except BaseException:
            return None

    count = _count
    return tuple(_pin(c) for c in (_MALLOC(counting_malloc), _CALLOC(counting_calloc), _REALLOC(counting_realloc)))


def _pin(obj: object) -> object:
    """Keep ``obj`` alive for the rest of the process (even through the interpreter's teardown)."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
    return obj


def _default_allocator(get_handler: Callable[[], object]) -> _Allocator:
    """numpy's default data allocator (its C functions), read from a fresh thread, where no
    handler has been set, so that it is the default one whatever this thread has installed."""
    found: list[object] = []
    thread = threading.Thread(target=lambda: found.append(get_handler()), name="alloccount-default")
    thread.start()
    thread.join()
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    capsule = _pin(found[0])  # numpy's static default handler; pinned anyway
    handler = _Handler.from_address(get_pointer(capsule, b"mem_handler"))
    if handler.name != b"default_allocator":
        raise ValueError(f"numpy's default data allocator is {handler.name!r}")
    return handler.allocator


def _api() -> tuple[object, object]:
    """The handler capsule and numpy's ``PyDataMem_SetHandler`` (entries 304 and 305 of its C-API
    table: ``PyDataMem_SetHandler``, ``PyDataMem_GetHandler``)."""
    global _capsule, _set_handler, _handler, _default
    if _set_handler is None:
        get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        get_pointer.restype = ctypes.c_void_p
        get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        core = getattr(np, "_core", None) or np.core  # numpy 2 / numpy 1.x
        table = ctypes.cast(get_pointer(core.multiarray._ARRAY_API, None), ctypes.POINTER(ctypes.c_void_p))
        set_handler = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.py_object)(table[304])
        get_handler = ctypes.PYFUNCTYPE(ctypes.py_object)(table[305])
        default = _default_allocator(get_handler)
        # called holding the GIL (PYFUNCTYPE), as numpy calls them: their small-block cache needs it
        malloc, calloc, realloc = (
            ctypes.PYFUNCTYPE(kind._restype_, *kind._argtypes_)(ctypes.cast(fn, ctypes.c_void_p).value)
            for kind, fn in ((_MALLOC, default.malloc), (_CALLOC, default.calloc), (_REALLOC, default.realloc))
        )
        callbacks = _counting_callbacks(malloc, calloc, realloc)
        handler = _pin(_Handler(b"neuralgraph_counting", 1, _Allocator(default.ctx, *callbacks, default.free)))
        new_capsule = ctypes.pythonapi.PyCapsule_New
        new_capsule.restype = ctypes.py_object
        new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        name = _pin(ctypes.create_string_buffer(b"mem_handler"))  # a capsule keeps the pointer, not a copy
        capsule = _pin(new_capsule(ctypes.addressof(handler), ctypes.addressof(name), None))
        _default, _handler, _capsule, _set_handler = default, handler, capsule, set_handler
    return _capsule, _set_handler


def supported() -> bool:
    """True when this numpy offers data-memory handlers (numpy >= 1.22)."""
    try:
        _api()
    except (AttributeError, OSError, ValueError):
        return False
    return True


#: numpy's own constant overhead: a Python number used as a ufunc operand becomes a 0-d array
#: (one float64, or a complex128: 16 bytes). Any data allocation larger than this is an array.
SCALAR_BYTES = 16


@contextmanager
def counting() -> Iterator[list[int]]:
    """Count numpy data allocations made by this thread inside the block; yields a list that
    holds ``[allocations, bytes]`` once the block ends."""
    capsule, set_handler = _api()
    start = list(_count)
    previous = set_handler(capsule)
    result = [0, 0]
    try:
        yield result
    finally:
        set_handler(previous)
        result[0], result[1] = _count[0] - start[0], _count[1] - start[1]


def largest_per_call(run: Callable[[], object], calls: int = 20) -> list[int]:
    """The largest numpy data allocation (bytes, 0 for none) made by each of ``calls`` calls of
    ``run``. Anything above :data:`SCALAR_BYTES` is an array made in that call."""
    largest = []
    with counting():
        for _ in range(calls):
            _count[2] = 0
            run()
            largest.append(_count[2])
    return largest
