"""A model's signature as onnxruntime reports it: tensors, dtypes, static and symbolic dimensions.

Shared by the ``onnx.model`` node (ports and buffers come from it) and ``neuralgraph model
inspect``. Sessions are opened with the audio path's options (one thread, sequential).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from neuralgraph.plugin import check_model_memory

if TYPE_CHECKING:  # imported where a session is made: a patch without a model never loads onnxruntime
    import onnxruntime as ort

#: The element types a tensor may have; values are cast at the node's boundary (float32 ports).
DTYPES: dict[str, type] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


def _dim(d: Any) -> int | None:
    return d if isinstance(d, int) and d >= 0 else None


@attrs.frozen
class Tensor:
    """One model input or output: its ONNX name, shape (None for a dynamic axis), type and the
    symbolic names of its dynamic axes (None where the model gives no name)."""

    name: str
    shape: tuple[int | None, ...]
    type: str
    dims: tuple[str | None, ...] = ()

    @property
    def dtype(self) -> np.dtype | None:
        """The numpy dtype, or None for a type the node cannot bind."""
        kind = DTYPES.get(self.type)
        return None if kind is None else np.dtype(kind)

    @property
    def type_name(self) -> str:
        return self.type.replace("tensor(", "").rstrip(")")

    def dim_text(self, axis: int) -> str:
        size = self.shape[axis]
        if size is not None:
            return str(size)
        name = self.dims[axis] if axis < len(self.dims) else None
        return name or "?"

    def text(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.type_name} [{dims}]"

    def named_text(self) -> str:
        """Like :meth:`text` but with the symbolic names of dynamic axes (``[batch, 576]``)."""
        return f"{self.name}: {self.type_name} [{', '.join(self.dim_text(a) for a in range(len(self.shape)))}]"


@attrs.frozen
class Signature:
    """A model's inputs and outputs, in the model's order."""

    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]

    def text(self) -> str:
        ins = "; ".join(t.text() for t in self.inputs) or "none"
        outs = "; ".join(t.text() for t in self.outputs) or "none"
        return f"inputs ({ins}), outputs ({outs})"

    def find(self, name: str) -> Tensor | None:
        return next((t for t in self.inputs + self.outputs if t.name == name), None)


def session_options() -> ort.SessionOptions:
    """Options for the audio path: one thread, sequential (measured: more threads only add p99 spikes)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 4  # failures reach the user as located errors, not coloured log lines
    return opts


def quiet_run_options() -> ort.RunOptions:
    """Run options for probe calls whose failure is reported by the caller, not logged by onnxruntime."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.log_severity_level = 4
    return options


def open_session(path: str) -> ort.InferenceSession:
    """An onnxruntime session for ``path``; ValueError naming the file when it is not a usable model."""
    if not os.path.isfile(path):
        raise ValueError(f"model file {path!r} does not exist")
    check_model_memory(path)  # one probe inference under the memory budget, before the real session
    import onnxruntime as ort

    try:
        return ort.InferenceSession(path, sess_options=session_options(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types for bad files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path!r} is not a loadable ONNX model ({first})") from None


def read_signature(session: ort.InferenceSession) -> Signature:
    """The signature of an open session."""

    def tensors(args: list[Any]) -> tuple[Tensor, ...]:
        return tuple(
            Tensor(
                a.name,
                tuple(_dim(d) for d in a.shape),
                a.type,
                tuple(d if isinstance(d, str) else None for d in a.shape),
            )
            for a in args
        )

    return Signature(tensors(session.get_inputs()), tensors(session.get_outputs()))


_cache_lock = threading.Lock()
_signatures: dict[tuple[str, int, int], Signature] = {}


def signature_of(path: str) -> tuple[Signature, ort.InferenceSession | None]:
    """The signature of the model file at ``path``, cached per (path, mtime, size).

    On a cache miss the session opened to read it is returned too, so the caller can keep it
    instead of loading the model twice.
    """
    try:
        st = os.stat(path)
    except OSError:
        raise ValueError(f"model file {path!r} does not exist") from None
    check_model_memory(path)  # cached per budget: a patch with a smaller budget is probed again
    key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)
    with _cache_lock:
        sig = _signatures.get(key)
    if sig is not None:
        return sig, None
    session = open_session(path)
    sig = read_signature(session)
    with _cache_lock:
        _signatures[key] = sig
    return sig, session


def fast_runner(session: ort.InferenceSession) -> tuple[Callable[[Any, Any], None], Callable[[Any], Any]]:
    """``(run, handle)``: ``run(handle(binding), None)`` runs an IOBinding.

    onnxruntime's public ``run_with_iobinding`` wraps the C++ call in Python checks for WebGPU
    graph capture (about a microsecond per call here, most of the overhead on a small model); when
    the session has no capture enabled the node calls the C++ method directly. Falls back to the
    public method on any other onnxruntime layout.
    """
    sess = getattr(session, "_sess", None)
    c_run = getattr(sess, "run_with_iobinding", None)
    capture = getattr(sess, "is_webgpu_graph_capture_enabled", None)
    try:
        usable = c_run is not None and not (capture is not None and capture())
    except Exception:  # noqa: BLE001 - an onnxruntime without this query: use the public path
        usable = False
    if usable and hasattr(session.io_binding(), "_iobinding"):
        return c_run, lambda binding: binding._iobinding
    public = session.run_with_iobinding
    return (lambda binding, _options: public(binding)), (lambda binding: binding)
