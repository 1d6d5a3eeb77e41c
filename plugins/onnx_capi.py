"""onnxruntime's C API through ctypes, so that compiled code runs a model with one call.

The wheel ships ``onnxruntime/capi/libonnxruntime.so.*``, which exports ``OrtGetApiBase``; the
Python module does not link it, so the sessions made here are onnxruntime objects of their own,
separate from the node's ``InferenceSession`` (same model file, same options: one thread,
sequential, all graph optimisations). :class:`CSession` opens one and binds the node's own
arrays to it, in place (``CreateTensorWithDataAsOrtValue``: onnxruntime reads its inputs from and
writes its outputs into them, no copy, nothing allocated for outputs), one ``OrtIoBinding`` per
call of a block. Its :attr:`CSession.table` (int64) holds ``RunWithBinding``'s address, the
session, the run options and each binding: :func:`run_binding` calls the function through that
address from a fused kernel (the numba intrinsic :func:`_call3`). The addresses are the table's
contents, never constants in the kernel's source, since compiled modules are cached on disk
across processes. A run that fails returns an ``OrtStatus``; the kernel stores it and escapes to
Python, where :meth:`CSession.failure` turns it into the node's fault (and releases it).

The ``OrtApi`` field indices are taken from ``include/onnxruntime/core/session/onnxruntime_c_api.h``
(API version 13, the version requested here); onnxruntime only appends to that table, so a newer
library serves version 13 with the same fields. Loading is checked (a status made and read back
through the table) and any failure leaves the node on its Python session, with the reason.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from typing import Any

import numpy as np

from neuralgraph.plugin import intrinsic, njit

#: The OrtApi version the indices below come from (the struct only grows at its end).
API_VERSION = 13
# Field indices in OrtApi (function pointers, in declaration order, API version 13).
CREATE_STATUS = 0
GET_ERROR_MESSAGE = 2
CREATE_ENV = 3
CREATE_SESSION = 7
CREATE_SESSION_OPTIONS = 10
SET_SESSION_EXECUTION_MODE = 13
SET_SESSION_LOG_SEVERITY_LEVEL = 22
SET_SESSION_GRAPH_OPTIMIZATION_LEVEL = 23
SET_INTRA_OP_NUM_THREADS = 24
SET_INTER_OP_NUM_THREADS = 25
CREATE_RUN_OPTIONS = 39
RUN_OPTIONS_SET_RUN_LOG_SEVERITY_LEVEL = 41
CREATE_TENSOR_WITH_DATA_AS_ORT_VALUE = 49
CREATE_CPU_MEMORY_INFO = 69
RELEASE_STATUS = 93
RELEASE_SESSION = 95
RELEASE_VALUE = 96
RELEASE_RUN_OPTIONS = 97
RELEASE_SESSION_OPTIONS = 100
RUN_WITH_BINDING = 133
CREATE_IO_BINDING = 134
RELEASE_IO_BINDING = 135
BIND_INPUT = 136
BIND_OUTPUT = 137
#: ORT_LOGGING_LEVEL_FATAL: failures reach the user as the node's fault, not as log lines
FATAL = 4
ORT_SEQUENTIAL, ORT_ENABLE_ALL = 0, 99
ORT_DEVICE_ALLOCATOR, ORT_MEM_TYPE_DEFAULT = 0, 0
#: ONNXTensorElementDataType per numpy dtype
ELEMENT_TYPES = {
    np.dtype(np.float32): 1,
    np.dtype(np.uint8): 2,
    np.dtype(np.int8): 3,
    np.dtype(np.uint16): 4,
    np.dtype(np.int16): 5,
    np.dtype(np.int32): 6,
    np.dtype(np.int64): 7,
    np.dtype(np.bool_): 9,
    np.dtype(np.float16): 10,
    np.dtype(np.float64): 11,
}
#: where a table's entries sit: the run function, the session, the run options, then bindings
FN, SESSION, OPTIONS, BINDINGS = range(4)

_P = ctypes.c_void_p
_lock = threading.Lock()
_api: _Api | None = None
_api_error: str | None = None


class CApiError(RuntimeError):
    """onnxruntime's C API failed (the message is onnxruntime's own)."""


class _Api:
    """The loaded library, its OrtApi table and the one OrtEnv every session shares."""

    def __init__(self, library: Path) -> None:
        self.library = ctypes.CDLL(str(library))  # RTLD_LOCAL: its symbols stay out of the process's
        base_fn = self.library.OrtGetApiBase
        base_fn.restype = ctypes.POINTER(_P * 2)
        base = base_fn().contents
        get_api = ctypes.CFUNCTYPE(_P, ctypes.c_uint32)(base[0])
        self.version = ctypes.CFUNCTYPE(ctypes.c_char_p)(base[1])().decode()
        table = get_api(API_VERSION)
        if not table:
            raise CApiError(f"onnxruntime {self.version} does not serve C API version {API_VERSION}")
        self.fields = ctypes.cast(table, ctypes.POINTER(_P * (BIND_OUTPUT + 1))).contents
        self.message = self.fn(GET_ERROR_MESSAGE, ctypes.c_char_p, _P)
        self.release_status = self.fn(RELEASE_STATUS, None, _P)
        # made once: an object released at interpreter exit must not build ctypes functions then
        self.release = {
            i: self.fn(i, None, _P) for i in (RELEASE_IO_BINDING, RELEASE_VALUE, RELEASE_RUN_OPTIONS, RELEASE_SESSION)
        }
        self._check_status_round_trip()
        env = _P()
        self.check(self.fn(CREATE_ENV, _P, ctypes.c_int, ctypes.c_char_p, _P)(FATAL, b"neuralgraph", ctypes.byref(env)))
        self.env = env  # process-wide, never released (sessions may outlive any one owner)
        memory = _P()
        create_info = self.fn(CREATE_CPU_MEMORY_INFO, _P, ctypes.c_int, ctypes.c_int, _P)
        self.check(create_info(ORT_DEVICE_ALLOCATOR, ORT_MEM_TYPE_DEFAULT, ctypes.byref(memory)))
        self.memory = memory

    def fn(self, index: int, restype: Any, *argtypes: Any) -> Any:
        """OrtApi field ``index`` as a ctypes function."""
        return ctypes.CFUNCTYPE(restype, *argtypes)(self.fields[index])

    def _check_status_round_trip(self) -> None:
        """CreateStatus, GetErrorMessage and ReleaseStatus agree: the indices fit this library."""
        status = self.fn(CREATE_STATUS, _P, ctypes.c_int, ctypes.c_char_p)(1, b"neuralgraph probe")
        if not status or self.message(status) != b"neuralgraph probe":
            raise CApiError(f"onnxruntime {self.version}: the C API table does not match version {API_VERSION}")
        self.release_status(status)

    def check(self, status: int | None) -> None:
        """Raise onnxruntime's message for a non-null status (released here)."""
        if status:
            raise CApiError(self.take_message(status))

    def take_message(self, status: int) -> str:
        """The status's message; the status is released."""
        text = (self.message(status) or b"").decode(errors="replace")
        self.release_status(status)
        return text


def api() -> _Api | None:
    """The C API, loaded on first use (None when it cannot be: :func:`unavailable` says why)."""
    global _api, _api_error
    with _lock:
        if _api is None and _api_error is None:
            try:
                _api = _Api(_library_path())
            except (OSError, AttributeError, CApiError) as exc:
                _api_error = str(exc)
        return _api


def unavailable() -> str | None:
    """Why the C API could not be loaded (None when it was, or was not tried yet)."""
    return _api_error


def _library_path() -> Path:
    import onnxruntime  # already imported by the node's session

    found = sorted((Path(onnxruntime.__file__).parent / "capi").glob("libonnxruntime.so*"))
    if not found:
        raise CApiError("the onnxruntime package ships no libonnxruntime shared library")
    return found[-1]


class CSession:
    """An onnxruntime session of the C API over ``path``, and one IO binding per list of
    ``(name, is_input, array)`` in ``bindings`` (each array bound in place: it must stay alive,
    C-contiguous, as long as this object)."""

    def __init__(self, path: str, bindings: list[list[tuple[str, bool, np.ndarray]]]) -> None:
        a = api()
        if a is None:
            raise CApiError(f"onnxruntime's C API is not available ({unavailable()})")
        self.api = a
        self._values: list[_P] = []
        self._bindings: list[_P] = []
        self.session = self.run_options = None
        options = _P()
        a.check(a.fn(CREATE_SESSION_OPTIONS, _P, _P)(ctypes.byref(options)))
        try:
            for index, value in (
                (SET_INTRA_OP_NUM_THREADS, 1),
                (SET_INTER_OP_NUM_THREADS, 1),
                (SET_SESSION_EXECUTION_MODE, ORT_SEQUENTIAL),
                (SET_SESSION_LOG_SEVERITY_LEVEL, FATAL),
                (SET_SESSION_GRAPH_OPTIMIZATION_LEVEL, ORT_ENABLE_ALL),
            ):
                a.check(a.fn(index, _P, _P, ctypes.c_int)(options, value))
            session = _P()
            create = a.fn(CREATE_SESSION, _P, _P, ctypes.c_char_p, _P, _P)
            a.check(create(a.env, str(path).encode(), options, ctypes.byref(session)))
            self.session = session
        finally:
            a.fn(RELEASE_SESSION_OPTIONS, None, _P)(options)
        run_options = _P()
        a.check(a.fn(CREATE_RUN_OPTIONS, _P, _P)(ctypes.byref(run_options)))
        self.run_options = run_options
        a.check(a.fn(RUN_OPTIONS_SET_RUN_LOG_SEVERITY_LEVEL, _P, _P, ctypes.c_int)(run_options, FATAL))
        for tensors in bindings:
            self._bind(tensors)
        self.arrays = [arr for tensors in bindings for _, _, arr in tensors]  # kept alive with the values
        run = ctypes.cast(a.fields[RUN_WITH_BINDING], _P).value
        #: what compiled code reads: the run function, the session, the run options, the bindings
        self.table = np.array(
            [run, self.session.value, self.run_options.value, *(b.value for b in self._bindings)], np.int64
        )
        #: [the status of a failed run (0: none), runs made from compiled code]
        self.status = np.zeros(2, np.int64)
        self._run = a.fn(RUN_WITH_BINDING, _P, _P, _P, _P)

    def _bind(self, tensors: list[tuple[str, bool, np.ndarray]]) -> None:
        a = self.api
        binding = _P()
        a.check(a.fn(CREATE_IO_BINDING, _P, _P, _P)(self.session, ctypes.byref(binding)))
        self._bindings.append(binding)
        create = a.fn(
            CREATE_TENSOR_WITH_DATA_AS_ORT_VALUE, _P, _P, _P, ctypes.c_size_t, _P, ctypes.c_size_t, ctypes.c_int, _P
        )
        bind_in = a.fn(BIND_INPUT, _P, _P, ctypes.c_char_p, _P)
        bind_out = a.fn(BIND_OUTPUT, _P, _P, ctypes.c_char_p, _P)
        for name, is_input, arr in tensors:
            if arr.dtype not in ELEMENT_TYPES or not arr.flags.c_contiguous:
                raise CApiError(f"tensor {name!r}: {arr.dtype} {arr.strides} cannot be bound in place")
            shape = (ctypes.c_int64 * max(arr.ndim, 1))(*arr.shape)
            value = _P()
            a.check(
                create(
                    a.memory,
                    arr.ctypes.data,
                    arr.nbytes,
                    shape,
                    arr.ndim,
                    ELEMENT_TYPES[arr.dtype],
                    ctypes.byref(value),
                )
            )
            self._values.append(value)
            a.check((bind_in if is_input else bind_out)(binding, name.encode(), value))

    def run(self, k: int) -> None:
        """Run binding ``k`` from Python (the prewarm calls when the session is opened)."""
        self.api.check(self._run(self.session, self.run_options, self._bindings[k]))

    def failure(self) -> None:
        """The escape of a kernel whose run failed: onnxruntime's message as the node's fault (the
        status is released)."""
        status = int(self.status[0])
        self.status[0] = 0
        raise CApiError(self.api.take_message(status) if status else "onnxruntime's run failed")

    def close(self) -> None:
        """Release the bindings, tensors, run options and session (idempotent)."""
        release = self.api.release
        for binding in self._bindings:
            release[RELEASE_IO_BINDING](binding)
        for value in self._values:
            release[RELEASE_VALUE](value)
        self._bindings, self._values = [], []
        if self.run_options:
            release[RELEASE_RUN_OPTIONS](self.run_options)
        if self.session:
            release[RELEASE_SESSION](self.session)
        self.session = self.run_options = None

    def __del__(self) -> None:
        if self.__dict__.get("api") is not None:
            self.close()


@intrinsic
def _call3(typingctx: Any, fn: Any, a: Any, b: Any, c: Any) -> Any:  # pragma: no cover - compiled
    """``((void* (*)(void*, void*, void*)) fn)(a, b, c)`` on int64 addresses, the result as int64."""
    from llvmlite import ir
    from numba import types  # at typing time: importing this module imports no numba

    sig = types.int64(types.int64, types.int64, types.int64, types.int64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        ptr = ir.IntType(8).as_pointer()
        kind = ir.FunctionType(ptr, [ptr, ptr, ptr])
        function = builder.inttoptr(args[0], kind.as_pointer())
        result = builder.call(function, [builder.inttoptr(x, ptr) for x in args[1:]])
        return builder.ptrtoint(result, ir.IntType(64))

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def run_binding(table: np.ndarray, k: int) -> int:  # pragma: no cover - compiled
    """``RunWithBinding(session, run_options, binding k)`` from a :attr:`CSession.table`: the
    ``OrtStatus`` address, 0 when the run succeeded."""
    return _call3(table[FN], table[SESSION], table[OPTIONS], table[BINDINGS + k])
