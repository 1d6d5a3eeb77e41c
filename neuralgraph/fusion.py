"""Kernel fusion: runs of consecutive compiled nodes become one compiled call per block.

A node type may offer its compiled kernel by overriding :meth:`neuralgraph.node.Node.kernel`,
which returns ``(dispatcher, args)``: a module-level numba ``@njit`` function and the tuple of
arguments bound when the plan is built (its input and output arrays, its state arrays, frozen
scalars). The calling convention is fixed: ``dispatcher(*args, frames)`` must do exactly what
``process(ins, outs, frames)`` does.

After binding, the compiler (:func:`fuse_steps`) replaces every maximal run of two or more
consecutive node steps that offer a kernel by one :class:`FusedStep`. Its kernel is generated
Python source, one ``@njit(cache=True)`` function that calls each member's kernel in order,
written once to a content-addressed file in the cache directory (numba's disk cache needs a real
file), so a second process loads machine code instead of compiling. numba does not invalidate a
cached function when a function it calls changes, so the source carries a hash of each member
kernel's module file (and numba's version): an edited or upgraded plugin gets a new file.

Why pointers: numba's dispatcher types and unboxes every array argument (about 0.06 µs each,
``benchmarks/fusion_estimate.py``), so a 20-filter run passing its 62 arrays would give back
most of what fusion saves. The fused function takes ONE int64 array holding the address of every
bound array; shapes and dtypes are literals in the generated source and each array is rebuilt
inside the compiled code with ``numba.carray`` (free). The step keeps a reference to every
array, so none can be freed while the plan lives; arrays must be C-contiguous (a broadcast view
keeps its node out of the run).

Faults: the fused function stores the index of the member it is about to call in a progress
slot, so when it raises the step knows the culprit: that node is bypassed (silence or thru, as
its type says) and reported with its own name, the members after it run unfused for the rest of
the block, and from then on the step runs its members one by one, each contained as the plan
contains any step. Members before the culprit ran once, so no state advances twice.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: Generated source format; bump to invalidate every cached file.
FORMAT = 1
_DTYPES = {np.dtype(np.float32): "np.float32", np.dtype(np.float64): "np.float64",
           np.dtype(np.int32): "np.int32", np.dtype(np.int64): "np.int64", np.dtype(np.bool_): "np.bool_",
           np.dtype(np.uint64): "np.uint64", np.dtype(np.uint32): "np.uint32", np.dtype(np.int8): "np.int8",
           np.dtype(np.uint8): "np.uint8", np.dtype(np.int16): "np.int16", np.dtype(np.uint16): "np.uint16"}
_loaded: dict[str, Callable[..., None]] = {}
_pointer = None


def cache_dir() -> Path:
    """Where generated fused kernels (and numba's cache of them) live.

    ``NEURALGRAPH_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/neuralgraph`` (``~/.cache/neuralgraph``).
    """
    env = os.environ.get("NEURALGRAPH_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "neuralgraph"


def address_as_pointer():  # pragma: no cover - returns a numba intrinsic
    """The numba intrinsic ``int64 address -> void*`` the generated kernels use (built on first use)."""
    global _pointer
    if _pointer is None:
        from numba.core import cgutils, types
        from numba.extending import intrinsic

        @intrinsic
        def pointer(typingctx, address):
            def codegen(context, builder, signature, args):
                return builder.inttoptr(args[0], cgutils.voidptr_t)

            return types.voidptr(types.int64), codegen

        _pointer = pointer
    return _pointer


def kernel_of(node: Any, ins: Any, outs: Any) -> tuple[Any, tuple[Any, ...]] | None:
    """``node.kernel(ins, outs)`` when it can be fused, else None (not offered, or unusable)."""
    try:
        offered = node.kernel(ins, outs)
    except Exception:  # a plugin's kernel hook must not break compilation: run it unfused
        return None
    if offered is None:
        return None
    dispatcher, args = offered
    if _import_path(dispatcher) is None:
        return None
    for a in args:
        if isinstance(a, np.ndarray):
            if a.dtype not in _DTYPES or not a.flags.c_contiguous or a.size == 0:
                return None
        elif not isinstance(a, (bool, int, float, np.bool_, np.integer, np.floating)):
            return None
        elif isinstance(a, (float, np.floating)) and not np.isfinite(a):
            return None
    return dispatcher, tuple(args)


def _import_path(dispatcher: Any) -> tuple[str, str] | None:
    func = getattr(dispatcher, "py_func", None)
    if func is None or not hasattr(dispatcher, "compile"):
        return None
    module, name = func.__module__, func.__qualname__
    if "." in name or "<" in name:
        return None
    try:
        if getattr(importlib.import_module(module), name) is not dispatcher:
            return None
    except Exception:
        return None
    return module, name


_stamps: dict[str, str] = {}


def _module_stamp(module: str) -> str:
    """A hash of a kernel module's source file and numba's version (its compiled code's inputs)."""
    if module not in _stamps:
        import numba

        digest = hashlib.sha1(numba.__version__.encode())
        path = getattr(sys.modules.get(module), "__file__", None)
        if path:
            digest.update(Path(path).read_bytes())
        _stamps[module] = digest.hexdigest()[:16]
    return _stamps[module]


def _scalar(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return repr(int(value))
    if isinstance(value, np.float32):
        return f"np.float32({float(value)!r})"
    return repr(float(value))


def generate(members: Sequence[tuple[Any, tuple[Any, ...]]], progress: np.ndarray
             ) -> tuple[str, list[np.ndarray]]:
    """The source of the fused function and the arrays whose addresses it takes, in order.

    ``progress`` (int64, one element) is array 0: the function stores the index of each member
    before calling it, so after an exception the step knows which member raised.
    """
    arrays: list[np.ndarray] = [progress]
    slot: dict[tuple[int, tuple[int, ...], str], int] = {}
    imports: dict[tuple[str, str], str] = {}
    body: list[str] = []
    for index, (dispatcher, args) in enumerate(members):
        path = _import_path(dispatcher)
        assert path is not None
        alias = imports.setdefault(path, f"k{len(imports)}")
        names = []
        for a in args:
            if isinstance(a, np.ndarray):
                key = (a.__array_interface__["data"][0], a.shape, a.dtype.str)
                if key not in slot:
                    slot[key] = len(arrays)
                    arrays.append(a)
                names.append(f"a{slot[key]}")
            else:
                names.append(_scalar(a))
        body.append(f"    a0[0] = {index}")
        body.append(f"    {alias}({', '.join(names + ['frames'])})")
    views = [f"    a{i} = carray(_ptr(addr[{i}]), {tuple(a.shape)!r}, {_DTYPES[a.dtype]})"
             for i, a in enumerate(arrays)]
    # numba's cache does not see changes in the functions a cached one calls (here inlined), so
    # the source, and with it the file name, carries a fingerprint of every member's module
    stamps = [f"# {m}: {_module_stamp(m)}" for m, _ in imports]
    head = [f"# generated by neuralgraph.fusion (format {FORMAT}); do not edit",
            *stamps,
            "import numpy as np",
            "from numba import carray, njit",
            "from neuralgraph.fusion import address_as_pointer",
            *(f"from {m} import {n} as {alias}" for (m, n), alias in imports.items()),
            "_ptr = address_as_pointer()",
            "",
            "",
            "@njit(cache=True, nogil=True)",
            "def fused(addr, frames):  # pragma: no cover - compiled"]
    return "\n".join(head + views + body) + "\n", arrays


def load(source: str) -> Callable[..., None]:
    """The ``fused`` function of ``source``: written once under :func:`cache_dir`, imported once."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:20]
    if digest in _loaded:
        return _loaded[digest]
    folder = cache_dir() / "fused"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"fused_{digest}.py"
    if not path.exists() or path.read_text() != source:
        tmp = folder / f".{digest}.{os.getpid()}.tmp"
        tmp.write_text(source)
        os.replace(tmp, path)  # atomic: a concurrent process sees the whole file or none
    name = f"neuralgraph_fused_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    _loaded[digest] = module.fused
    return module.fused


class FusedStep:
    """One plan step running a run of fused nodes; falls back to them one by one on a fault.

    ``members``: per node, ``(name, process, ins, outs, bypass_process)`` as the plan would run it.
    ``report(name, exc)`` records a member's fault (set by the compiler to the plan's).
    """

    #: Not state (``Engine.save_state``): the members' nodes save their own, the rest is wiring.
    transient = ("members", "nodes", "names", "arrays", "_signature", "kernel", "addresses", "report")

    def __init__(self, members: list[tuple[str, Callable, Any, Any, Callable]], nodes: list[Any],
                 kernels: list[tuple[Any, tuple[Any, ...]]]) -> None:
        self.members = members
        self.nodes = nodes
        self.names = [m[0] for m in members]
        self.progress = np.zeros(1, np.int64)
        source, self.arrays = generate(kernels, self.progress)
        self._signature = [tuple(a if not isinstance(a, np.ndarray) else id(a) for a in args)
                           for _, args in kernels]
        self.kernel = load(source)
        # compile (or load from the disk cache) now, not in the first block: a failure here
        # leaves the run unfused instead of blaming its first member
        from numba.core import types

        self.kernel.compile((types.Array(types.int64, 1, "C"), types.int64))
        self.addresses = np.array([a.__array_interface__["data"][0] for a in self.arrays], np.int64)
        self.fused = True
        self.faulted = [False] * len(members)
        self.report: Callable[[str, BaseException], None] = lambda name, exc: None

    @property
    def name(self) -> str:
        return f"{self.names[0]} … {self.names[-1]} (fused, {len(self.names)} nodes)"

    def process(self, ins: Any, outs: Any, frames: int) -> None:
        if self.fused:
            try:
                self.kernel(self.addresses, frames)
                return
            except BaseException as exc:  # SystemExit and KeyboardInterrupt included
                # members before the culprit ran; the culprit is bypassed; the rest run unfused,
                # now and from now on
                self.fused = False
                culprit = int(self.progress[0])
                name, _, m_ins, m_outs, bypass = self.members[culprit]
                self.faulted[culprit] = True
                self.report(name, exc)
                bypass(m_ins, m_outs, frames)
                self.run_unfused(frames, culprit + 1)
                return
        self.run_unfused(frames)

    def run_unfused(self, frames: int, start: int = 0) -> None:
        for k in range(start, len(self.members)):
            name, process, m_ins, m_outs, bypass = self.members[k]
            if self.faulted[k]:
                bypass(m_ins, m_outs, frames)
                continue
            try:
                process(m_ins, m_outs, frames)
            except BaseException as exc:
                self.faulted[k] = True
                self.report(name, exc)
                bypass(m_ins, m_outs, frames)

    def reset(self) -> None:
        """Control thread: check that the nodes still bind the same arrays and scalars.

        A node whose ``reset`` replaced an array (instead of filling it) or changed a bound scalar
        would leave the fused kernel stale; the step then runs its members unfused from now on.
        """
        for k, node in enumerate(self.nodes):
            name, _, m_ins, m_outs, _ = self.members[k]
            offered = kernel_of(node, m_ins, m_outs)
            signature = None if offered is None else tuple(
                a if not isinstance(a, np.ndarray) else id(a) for a in offered[1])
            if signature != self._signature[k]:
                self.fused = False


#: The longest run fused into one function. LLVM inlines every member's kernel, and compile
#: time grows faster than linearly with the function's size: 201 members took 66 s to compile
#: cold, 22 members (P3) about 1.3 s. Longer runs are split into several fused steps.
MAX_RUN = 24


def fuse_steps(steps: list[tuple[Callable, Any, Any]], bypass: list[tuple[Callable, Any, Any]],
               names: list[str], nodes: list[Any | None], *, min_run: int = 2, max_run: int = MAX_RUN
               ) -> tuple[list, list, list, list[FusedStep]]:
    """Replace maximal runs of consecutive kernel-offering node steps by :class:`FusedStep` s.

    ``nodes[i]`` is the node of step ``i`` (None for compiler-emitted steps, which end a run).
    Returns the new steps, bypass steps and names, and the fused steps made.
    """
    kernels = [None if node is None else kernel_of(node, s[1], s[2]) for node, s in zip(nodes, steps)]
    out_steps: list = []
    out_bypass: list = []
    out_names: list = []
    fused: list[FusedStep] = []
    i = 0
    n = len(steps)
    while i < n:
        j = i
        while j < n and kernels[j] is not None and j - i < max_run:
            j += 1
        step = None
        if j - i >= min_run:
            members = [(names[k], steps[k][0], steps[k][1], steps[k][2], bypass[k][0]) for k in range(i, j)]
            try:
                step = FusedStep(members, [nodes[k] for k in range(i, j)], [kernels[k] for k in range(i, j)])
            except Exception as exc:  # no writable cache directory, a kernel numba cannot compile, ...
                warnings.warn(f"neuralgraph: {names[i]} … {names[j - 1]} not fused: {exc}", stacklevel=2)
        if step is not None:
            fused.append(step)
            out_steps.append((step.process, steps[i][1], steps[j - 1][2]))
            # the step contains its members' faults itself, so its "bypass" is the step again
            out_bypass.append((step.process, steps[i][1], steps[j - 1][2]))
            out_names.append(step.name)
            i = j
        else:
            end = max(j, i + 1)
            for k in range(i, end):
                out_steps.append(steps[k])
                out_bypass.append(bypass[k])
                out_names.append(names[k])
            i = end
    return out_steps, out_bypass, out_names, fused
