"""Counts numpy's data allocations, of any size, while a piece of code runs.

tracemalloc sees bytes, not allocations: the transient Python objects of one call (numba's
argument boxing, view headers, a ufunc's iterator) add up to 1-3 KB per block in an ordinary
patch, so a byte tolerance cannot tell them from a node that allocates a small array every block.
numpy, though, sends every array data allocation through its data-memory handler (NEP 49). This
module installs a counting handler (numpy's C API ``PyDataMem_SetHandler``, called through
ctypes) that forwards to libc and counts each ``malloc``/``calloc``/``realloc``: an array made in
the audio thread, one byte or one megabyte, counts one. Views, scalars and ``out=`` ufuncs count
nothing.

The handler is a context variable in numpy, so it applies to the calling thread only; arrays it
allocated are freed through it later, so its callbacks live for the whole process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

_libc = ctypes.CDLL(ctypes.util.find_library("c"))
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.calloc.restype = ctypes.c_void_p
_libc.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
_libc.realloc.restype = ctypes.c_void_p
_libc.realloc.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.free.argtypes = [ctypes.c_void_p]

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


def _tally(size: int) -> None:
    _count[0] += 1
    _count[1] += size
    if size > _count[2]:
        _count[2] = size


def _malloc(ctx: int, size: int) -> int | None:
    _tally(size)
    return _libc.malloc(size or 1)


def _calloc(ctx: int, nelem: int, elsize: int) -> int | None:
    _tally(nelem * elsize)
    return _libc.calloc(nelem or 1, elsize or 1)


def _realloc(ctx: int, ptr: int | None, size: int) -> int | None:
    _tally(size)
    return _libc.realloc(ptr, size or 1)


def _free(ctx: int, ptr: int | None, size: int) -> None:
    _libc.free(ptr)


# module globals: arrays allocated through the handler call these when freed, at any later time
_callbacks = (_MALLOC(_malloc), _CALLOC(_calloc), _REALLOC(_realloc), _FREE(_free))
_handler = _Handler(b"neuralgraph_counting", 1, _Allocator(None, *_callbacks))
_capsule: object | None = None
_set_handler = None


def _api() -> tuple[object, object]:
    """The handler capsule and numpy's ``PyDataMem_SetHandler`` (entry 304 of its C-API table)."""
    global _capsule, _set_handler
    if _set_handler is None:
        new_capsule = ctypes.pythonapi.PyCapsule_New
        new_capsule.restype = ctypes.py_object
        new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
        _capsule = new_capsule(ctypes.addressof(_handler), b"mem_handler", None)
        get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        get_pointer.restype = ctypes.c_void_p
        get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        core = getattr(np, "_core", None) or np.core  # numpy 2 / numpy 1.x
        table = ctypes.cast(get_pointer(core.multiarray._ARRAY_API, None), ctypes.POINTER(ctypes.c_void_p))
        _set_handler = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.py_object)(table[304])
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
