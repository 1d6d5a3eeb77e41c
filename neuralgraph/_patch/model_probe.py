"""One probe inference of an ONNX model under the memory budget, before the model is used.

A 185-byte model (``ConstantOfShape`` of 2^29 floats) took 18.7 s and 4.6 GB in ``check``:
the file's size says nothing about what one inference allocates. Before a model's real session
is opened, :func:`check_model_memory` runs it once on zeros in a session whose CPU allocator is
an arena capped at the memory budget (onnxruntime's ``OrtArenaCfg(max_mem)`` shared through
``session.use_env_allocators``): a model that asks for more fails its first oversized
allocation at once, instead of paging the machine. The loader sets the budget of the patch
being loaded (:func:`budget`); results are cached per file version and budget.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from neuralgraph._patch.config import DEFAULT_MEMORY_BUDGET_MB

_budget: contextvars.ContextVar[int] = contextvars.ContextVar(
    "model_budget", default=DEFAULT_MEMORY_BUDGET_MB * 1024 * 1024
)
_lock = threading.Lock()
_checked: dict[tuple[str, int, int, int], str | None] = {}
_arena_bytes = 0  # the cap of the arena registered with onnxruntime's environment, 0: none yet
#: onnxruntime's numpy dtypes by its type strings
_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}
_MEMORY = re.compile(
    r"Available memory of \d+ is smaller than requested bytes of (\d+)|Failed to allocate"
    r"|bad_alloc|[Oo]ut of memory"
)


@contextlib.contextmanager
def budget(nbytes: int) -> Iterator[None]:
    """Probe models against ``nbytes`` inside this block (the loader wraps node construction)."""
    token = _budget.set(int(nbytes))
    try:
        yield
    finally:
        _budget.reset(token)


def quiet_onnxruntime() -> None:
    """Keep onnxruntime's own coloured log lines off the terminal: its failures reach the user
    as neuralgraph's located errors instead."""
    import onnxruntime as ort

    ort.set_default_logger_severity(4)


def _arena(ort: Any, nbytes: int) -> None:
    """Register (or replace) the capped CPU arena that probe sessions allocate from."""
    global _arena_bytes
    if _arena_bytes != nbytes:
        info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(info, ort.OrtArenaCfg({"max_mem": nbytes, "arena_extend_strategy": 1}))
        _arena_bytes = nbytes


def _probe(path: str, nbytes: int) -> str | None:
    """None when one inference fits in ``nbytes``, else why not."""
    import onnxruntime as ort

    quiet_onnxruntime()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 4
    # no constant folding: it would compute constants at load time, outside the capped arena
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.add_session_config_entry("session.use_env_allocators", "1")
    run = ort.RunOptions()
    run.log_severity_level = 4
    try:
        _arena(ort, nbytes)
        session = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
        feeds = {
            a.name: np.zeros(
                [d if isinstance(d, int) and d >= 0 else 1 for d in a.shape], _DTYPES.get(a.type, np.float32)
            )
            for a in session.get_inputs()
        }
        session.run(None, feeds, run)
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types
        m = _MEMORY.search(str(exc))
        if m is None:
            return None  # not about memory: the real session reports it, located, with its signature
        asked = f" (one tensor alone needs {int(m[1]) / 2**20:.0f} MB)" if m[1] else ""
        return (
            f"one inference of {path!r} needs more than the memory budget of {nbytes / 2**20:.0f} MB{asked}; "
            "raise it on purpose with --memory-budget-mb or memory_budget_mb in [limits] of config.toml"
        )
    return None


def check_model_memory(path: str) -> None:
    """ValueError when one inference of the model at ``path`` exceeds the current budget."""
    try:
        st = os.stat(path)
    except OSError:
        return  # the caller reports a missing file
    nbytes = _budget.get()
    key = (os.path.abspath(path), st.st_mtime_ns, st.st_size, nbytes)
    with _lock:
        if key not in _checked:
            _checked[key] = _probe(path, nbytes)
        problem = _checked[key]
    if problem:
        raise ValueError(problem)
