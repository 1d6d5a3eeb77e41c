"""Kernel fusion: runs of consecutive compiled nodes become one compiled call per block.

A node type may offer its compiled kernel by overriding :meth:`neuralgraph._nodes.node.Node.kernel`,
which returns ``(dispatcher, args)``: a module-level numba ``@njit`` function and the tuple of
arguments bound when the plan is built (its input and output arrays, its state arrays, frozen
scalars). The calling convention is fixed: ``dispatcher(*args, frames)`` must do exactly what
``process(ins, outs, frames)`` does.

After binding, the compiler (:func:`fuse_steps`) replaces every maximal run of consecutive node
steps that offer a kernel (a lone one included) by one :class:`FusedStep`. Its kernel is
generated Python source, one ``fused(addr, frames)`` numba function that calls each member's
kernel in order (:data:`SIGNATURE`), compiled ahead of time into an extension module in the cache
directory (``_nodes/aot.py``: every missing run of a plan in one compile subprocess, loaded
without numba; numba's JIT in process as the fallback). numba does not invalidate a compiled
function when a function it calls changes, so the source carries a hash of each member kernel's
module file (and numba's version): an edited or upgraded plugin gets a new module.

Why pointers: numba's dispatcher types and unboxes every array argument (about 0.06 µs each,
``benchmarks/fusion_estimate.py``), so a 20-filter run passing its 62 arrays would give back
most of what fusion saves. The fused function takes ONE int64 array holding the address of every
bound array, then the block's width of each: dtypes and lane counts are literals in the
generated source, widths are not, so the block sizes of one run share one compiled function (the
test suite renders the same graphs at many block sizes) unless a mix's inline lines (whose loop
and strides stay literals) differ. Each array is rebuilt inside the compiled code with
``numba.carray`` (free). The step keeps a reference to every
array, so none can be freed while the plan lives; arrays must be C-contiguous (a broadcast view
keeps its node out of the run).

Faults: the fused function stores the index of the member it is about to call in a progress
slot, so when it raises the step knows the culprit: that node is bypassed (silence or thru, as
its type says) and reported with its own name, the members after it run unfused for the rest of
the block, and from then on the step runs its members one by one, each contained as the plan
contains any step. Members before the culprit ran once, so no state advances twice.

Escapes: a member may be an :class:`~neuralgraph._nodes.escape.EscapeKernel` (a model node's
per-block copies, with a Python call due now and then). Where its lines escape, the function
stores the member's index + 1 in the progress array's second slot and returns; the step makes
the member's call and calls the function again, which skips the members before it and re-enters
it (:func:`_escape_body`). A fault in the call is the member's fault, contained as above. A run
of one such member is fused too: its blocks without a call then never enter Python.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from neuralgraph._compile.chains import chained
from neuralgraph._compile.inline import Inline
from neuralgraph._compile.lanes import laned
from neuralgraph._compile.records import Process, StepRecord
from neuralgraph._nodes import aot
from neuralgraph._nodes.escape import EscapeKernel
from neuralgraph._nodes.lazyjit import LazyKernel

#: Generated source format; bump to invalidate every cached file.
FORMAT = 3
_DTYPES = {
    np.dtype(np.float32): "np.float32",
    np.dtype(np.float64): "np.float64",
    np.dtype(np.int32): "np.int32",
    np.dtype(np.int64): "np.int64",
    np.dtype(np.bool_): "np.bool_",
    np.dtype(np.uint64): "np.uint64",
    np.dtype(np.uint32): "np.uint32",
    np.dtype(np.int8): "np.int8",
    np.dtype(np.uint8): "np.uint8",
    np.dtype(np.int16): "np.int16",
    np.dtype(np.uint16): "np.uint16",
}
#: What every fused function is called with: the address table and the block's frame count.
SIGNATURE = "void(int64[::1], int64)"
_pointer = None
_clock = None
#: CLOCK_MONOTONIC (Linux)
MONOTONIC = 1


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


#: What a step offers for fusion: a kernel and its bound arguments, or source lines (which may escape).
Member = tuple[Any, tuple[Any, ...]] | Inline | EscapeKernel
#: The progress array: [the member being run, the member that escaped + 1 (0: none)].
PROGRESS = 2


def clock_gettime():
    """libc's ``clock_gettime(clock, timespec*)`` as a ctypes function, which numba calls from
    compiled code: the profile build reads ``CLOCK_MONOTONIC`` between members. An opaque call,
    so LLVM cannot move a member's loads and stores across it (``llvm.readcyclecounter`` let it
    sink whole loops past the read). About 20-30 ns a read."""
    global _clock
    if _clock is None:
        import ctypes

        fn = ctypes.CDLL(None).clock_gettime
        fn.argtypes, fn.restype = [ctypes.c_int, ctypes.c_void_p], ctypes.c_int
        _clock = fn
    return _clock


def kernel_of(node: Any, ins: Any, outs: Any) -> Member | None:
    """``node.kernel(ins, outs)`` when it can be fused, else None (not offered, or unusable)."""
    try:
        offered = node.kernel(ins, outs)
    except Exception:  # a plugin's kernel hook must not break compilation: run it unfused
        return None
    if offered is None:
        return None
    if isinstance(offered, EscapeKernel) and any(_import_path(f) is None for f in offered.functions):
        return None
    if isinstance(offered, (Inline, EscapeKernel)):
        args = offered.args
    else:
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
    return offered if isinstance(offered, (Inline, EscapeKernel)) else (dispatcher, tuple(args))


def _args(member: Member) -> tuple[Any, ...]:
    return member.args if isinstance(member, (Inline, EscapeKernel)) else member[1]


def _signature(member: Member | None) -> tuple[Any, ...] | None:
    """What a member binds: its scalars, and each array by address, shape and dtype (a fresh view
    of the same memory is the same binding; a replaced array is not)."""
    if member is None:
        return None
    return tuple(
        (a.__array_interface__["data"][0], a.shape, a.dtype.str) if isinstance(a, np.ndarray) else a
        for a in _args(member)
    )


def _import_path(dispatcher: Any) -> tuple[str, str] | None:
    """Where a kernel is importable from (a numba dispatcher, or a lazy one: ``_nodes/lazyjit.py``)."""
    func = getattr(dispatcher, "py_func", None)
    if func is None or not hasattr(dispatcher, "compile"):
        return None
    module, name = func.__module__, func.__qualname__
    if "." in name or "<" in name:
        return None
    try:
        found = getattr(importlib.import_module(module), name)
    except Exception:
        return None
    # a lazy kernel held elsewhere (a table, a class) is the same kernel once realised
    if found is not dispatcher and not (isinstance(dispatcher, LazyKernel) and found is dispatcher.dispatcher):
        return None
    return module, name


def _scalar(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return repr(int(value))
    if isinstance(value, np.float32):
        return f"np.float32({float(value)!r})"
    return repr(float(value))


def generate(
    members: Sequence[Member], progress: np.ndarray, ticks: np.ndarray | None = None
) -> tuple[str, list[np.ndarray], list[int]]:
    """The source of the fused function, the arrays whose addresses it takes, in order, and the
    sizes it reads after them (:func:`table`): one source (and one compiled module) serves every
    block size of a run without a mix (``_Bindings``).

    ``progress`` (int64, :data:`PROGRESS` elements) is array 0: the function stores the index of
    each member before calling it, so after an exception the step knows which member raised, and
    where a member escapes, its index + 1 (:func:`_escape_body`). ``ticks``
    (int64, one per member) makes the profile build (not cached: it calls libc through a
    pointer): after each member the monotonic clock is read and the nanoseconds since the
    previous read are added to the member's slot.
    """
    arrays: list[np.ndarray] = [progress]
    body: list[str] = []
    read = f"    _clock({MONOTONIC}, _ptr(addr[2]))", "    t1 = a2[0] * 1000000000 + a2[1]"
    if ticks is not None:
        arrays += [ticks, np.zeros(3, np.int64)]  # the slots, a timespec, the time of an escape
        body += [*read, "    t0 = t1"]
    imports: dict[tuple[str, str], str] = {}
    bound = _Bindings(arrays)
    name_of = bound.name_of

    parts: list[list[str]] = []
    for index, member in enumerate(members):
        lines = [f"a0[0] = {index}"]
        if isinstance(member, EscapeKernel):
            names = [name_of(a) for a in member.args]
            escape = f"a0[1] = {index + 1}; return"
            if ticks is not None:  # the member's time so far, and when its Python call began
                escape = f"{read[0].strip()}; {read[1].strip()}; a1[{index}] += t1 - t0; a2[2] = t1; {escape}"
            functions = {f"f{i}": _alias(imports, f) for i, f in enumerate(member.functions)}
            lines += [line.format(*names, m=f"m{index}_", escape=escape, **functions) for line in member.lines]
        elif isinstance(member, Inline):
            names = [name_of(a) for a in member.args]
            lines += [line.format(*names, m=f"m{index}_") for line in member.lines]
        else:
            dispatcher, args = member
            lines.append(f"{_alias(imports, dispatcher)}({', '.join([name_of(a) for a in args] + ['frames'])})")
        if ticks is not None:
            lines += [read[0].strip(), read[1].strip(), f"a1[{index}] += t1 - t0", "t0 = t1"]
        parts.append(lines)
    body += _escape_body(parts, [isinstance(m, EscapeKernel) for m in members], ticks is not None)
    views = bound.views()
    # numba's cache does not see changes in the functions a cached one calls (here inlined), so
    # the source, and with it the file name, carries a fingerprint of every member's module
    # (this module's own intrinsics included)
    stamps = [f"# {m}: {aot.module_stamp(m)}" for m in [__name__, *(m for m, _ in imports)]]
    head = [
        f"# generated by neuralgraph._compile.fusion (format {FORMAT}); do not edit",
        *stamps,
        "import numpy as np",
        "from numba import carray, njit",
        "from neuralgraph._compile.fusion import address_as_pointer, clock_gettime",
        *(f"from {m} import {n} as {alias}" for (m, n), alias in imports.items()),
        "_ptr = address_as_pointer()",
        "_clock = clock_gettime()",
        "",
        "",
        f"@njit(cache={ticks is None}, nogil=True)",
        "def fused(addr, frames):  # pragma: no cover - compiled",
    ]
    return "\n".join(head + views + body) + "\n", arrays, bound.sizes


class _Bindings:
    """How the generated function names what its members bind: an array by its slot in the
    address table (``a3``; one slot per memory, shape and dtype) and its last dimension (a
    block's width) by a local read from the table after the addresses (``s5``); a scalar as a
    literal. Lane counts (leading dimensions), scalars (flags, modes, settings) and a mix's
    inline sizes (``inline.py``) stay literals: read from the table they cost P1, P2 and the
    per-voice P2 5-20 % of their speed (their loops and branches are then unknown to LLVM)."""

    def __init__(self, arrays: list[np.ndarray]) -> None:
        self.arrays = arrays
        self.sizes: list[int] = []
        self._slot: dict[tuple[int, tuple[int, ...], str], int] = {}

    def _shape(self, shape: tuple[int, ...]) -> str:
        return f"({''.join(f'{n}, ' for n in shape[:-1])}{''.join(self.size_of(n) + ', ' for n in shape[-1:])})"

    def size_of(self, n: int) -> str:
        self.sizes.append(int(n))
        return f"s{len(self.sizes) - 1}"

    def name_of(self, a: Any) -> str:
        if isinstance(a, tuple):  # a lanes form's argument: one array (or scalar) per call
            return f"({''.join(self.name_of(x) + ', ' for x in a)})"
        if not isinstance(a, np.ndarray):
            return _scalar(a)
        key = (a.__array_interface__["data"][0], a.shape, a.dtype.str)
        if key not in self._slot:
            self._slot[key] = len(self.arrays)
            self.arrays.append(a)
        return f"a{self._slot[key]}"

    def views(self) -> list[str]:
        """The function's first lines: the sizes, read once from the table, then the arrays, each
        with its last dimension (a block's width) a size and the others (lanes) literals."""
        arrays = [
            f"    a{i} = carray(_ptr(addr[{i}]), {self._shape(a.shape)}, {_DTYPES[a.dtype]})"
            for i, a in enumerate(self.arrays)
        ]
        return [f"    s{k} = addr[{len(self.arrays) + k}]" for k in range(len(self.sizes))] + arrays


def table(arrays: Sequence[np.ndarray], sizes: Sequence[int]) -> np.ndarray:
    """The fused function's ``addr`` argument: the address of each array, then the sizes."""
    return np.array([a.__array_interface__["data"][0] for a in arrays] + list(sizes), np.int64)


def _alias(imports: dict[tuple[str, str], str], dispatcher: Any) -> str:
    """The generated module's name for a compiled function it imports (one import per function)."""
    path = _import_path(dispatcher)
    assert path is not None
    return imports.setdefault(path, f"k{len(imports)}")


def _escape_body(parts: list[list[str]], escapes: list[bool], profiled: bool = False) -> list[str]:
    """The members' lines as the function's body. With an escaping member, the function first
    reads where the last call stopped (``a0[1]``: the member that escaped + 1, 0 when none) and
    clears it; each member up to the last escaping one runs only from that member on, so on a
    resumed call the members before the escape point do not run twice. The profile build adds
    the escape's Python call (from ``a2[2]`` to now) to the member that escaped."""
    if not any(escapes):
        return ["    " + line for lines in parts for line in lines]
    last = max(k for k, e in enumerate(escapes) if e)
    body = ["    resume_at = a0[1] - 1", "    a0[1] = 0"]
    if profiled:
        body += ["    if resume_at >= 0:", "        a1[resume_at] += t0 - a2[2]"]
    for index, lines in enumerate(parts):
        if index <= last:
            body.append(f"    if resume_at <= {index}:")
            body += ["        " + line for line in lines]
        else:
            body += ["    " + line for line in lines]
    return body


class FusedStep:
    """One plan step running a run of fused nodes; falls back to them one by one on a fault.

    ``members``: the records of the steps it runs, as the plan would have run them.
    ``report(name, exc)`` records a member's fault (set by the compiler to the plan's).
    """

    #: Not state (``Engine.save_state``): the members' nodes save their own, the rest is wiring.
    transient = (
        "members",
        "nodes",
        "names",
        "arrays",
        "_signature",
        "kernel",
        "addresses",
        "report",
        "_kernels",
        "_plain",
        "_profiled",
        "ticks",
        "escapes",
    )

    def __init__(
        self,
        members: Sequence[StepRecord],
        kernels: list[Member],
        function: Callable[..., None] | None = None,
        linked: list[Member] | None = None,
    ) -> None:
        self.members = tuple(members)
        self.nodes = [m.kernel_source for m in members]
        self.names = [m.name for m in members]
        self.progress = np.zeros(PROGRESS, np.int64)
        self._kernels = kernels
        #: per member, the Python call an escaping member stops for (None for the others)
        self.escapes = [k.call if isinstance(k, EscapeKernel) else None for k in kernels]
        self._signature = [_signature(k) for k in kernels]
        # compile (or load from the disk cache) now, not in the first block: a failure here
        # leaves the run unfused instead of blaming its first member. ``function``: already
        # compiled from the same (grouped) source by fuse_steps (every run of a plan in one batch)
        self._plain = _build_grouped(kernels, self.progress, function, linked)
        self.kernel, self.addresses, self.arrays, self.digest = self._plain
        self._profiled: tuple[Callable[..., None], np.ndarray, list[np.ndarray], str] | None = None
        #: nanoseconds spent in each member while the profile build runs (:meth:`profile`)
        self.ticks = np.zeros(len(members), np.int64)
        self.fused = True
        self.faulted = [False] * len(members)
        self.report: Callable[[str, BaseException], None] = lambda name, exc: None

    def unwritten(self, member: int) -> frozenset[str]:
        """The outputs member ``member``'s lines leave unwritten (``EscapeKernel.unwritten``)."""
        kernel = self._kernels[member]
        return kernel.unwritten if isinstance(kernel, EscapeKernel) else frozenset()

    @property
    def name(self) -> str:
        if len(self.names) == 1:  # a lone kernel, compiled like a run: it keeps its node's name
            return self.names[0]
        return f"{self.names[0]} … {self.names[-1]} (fused, {len(self.names)} nodes)"

    def profile(self, on: bool) -> None:
        """Run the profile build (``on``) or the plain one (control thread, between blocks).

        The profile build is the same generated function with the clock read after each
        member, adding into :attr:`ticks` (zeroed when it is switched on): ``neuralgraph bench``
        splits the run's measured time between its members in those proportions. Where it
        cannot be built (no libc ``clock_gettime``), the plain build stays and ticks stay 0.
        """
        if on:
            if self._profiled is None:
                try:
                    self._profiled = _build(self._kernels, self.progress, self.ticks)
                except Exception:  # the run is then reported as one step
                    self._profiled = self._plain
            self.ticks.fill(0)
        self.kernel, self.addresses, self.arrays, _ = (
            self._profiled if on and self._profiled is not None else self._plain
        )

    def process(self, ins: Any, outs: Any, frames: int) -> None:
        if self.fused:
            try:
                kernel, addresses, progress = self.kernel, self.addresses, self.progress
                kernel(addresses, frames)
                # a member escaped: its call, then on from that member (``item``: a Python int,
                # not a numpy scalar whose test and arithmetic cost about 0.1 us a block)
                escaped = progress.item(1)
                while escaped:
                    self.escapes[escaped - 1]()
                    kernel(addresses, frames)
                    escaped = progress.item(1)
                return
            except BaseException as exc:  # SystemExit and KeyboardInterrupt included
                self.recover(exc, frames)
                return
        self.run_unfused(frames)

    def escape(self) -> None:
        """The call of the member that escaped (the offline driver's way back into Python); the
        next call of the fused function resumes at that member."""
        self.escapes[self.progress.item(1) - 1]()

    def recover(self, exc: BaseException, frames: int) -> None:
        """After the fused function raised: the members before the culprit ran; the culprit is
        bypassed and reported; the rest run unfused, now and from now on."""
        self.fused = False
        self.progress[1] = 0  # an escape left pending by a failed call is not resumed
        culprit = int(self.progress[0])
        member = self.members[culprit]
        self.faulted[culprit] = True
        self.report(member.name, exc)
        member.bypass(member.ins, member.outs, frames)
        self.run_unfused(frames, culprit + 1)

    def run_unfused(self, frames: int, start: int = 0) -> None:
        members = self.members
        for k in range(start, len(members)):
            member = members[k]
            if self.faulted[k]:
                member.bypass(member.ins, member.outs, frames)
                continue
            try:
                member.process(member.ins, member.outs, frames)
            except BaseException as exc:
                self.faulted[k] = True
                self.report(member.name, exc)
                member.bypass(member.ins, member.outs, frames)

    def ready_members(self) -> None:
        """Make every member's own ``process`` ready to run (control thread; ``Node.ready``), before
        the run falls back to them one by one while playing, so no kernel compiles on the audio
        thread."""
        for member in self.members:
            ready = getattr(member.kernel_source, "ready", None)  # a node's; a mix step has none
            if callable(ready):
                ready(member.ins, member.outs)

    def run_member_with(self, k: int, process: Process) -> None:
        """Run member ``k`` through ``process`` from now on (a tap point wrapping its step), and
        so the whole run member by member (control thread: the audio thread sees the old tuple
        of members or the new one, either whole)."""
        members = self.members
        self.members = (*members[:k], attrs.evolve(members[k], process=process), *members[k + 1 :])
        self.fused = False

    def reset(self) -> None:
        """Control thread: check that the nodes still bind the same arrays and scalars.

        A node whose ``reset`` replaced an array (instead of filling it) or changed a bound scalar
        would leave the fused kernel stale; the step then runs its members unfused from now on.
        """
        for k, node in enumerate(self.nodes):
            member = self.members[k]
            if _signature(kernel_of(node, member.ins, member.outs)) != self._signature[k]:
                self.fused = False


def _build(
    kernels: list[Member],
    progress: np.ndarray,
    ticks: np.ndarray | None = None,
    function: Callable[..., None] | None = None,
) -> tuple[Callable[..., None], np.ndarray, list[np.ndarray], str]:
    """The fused function (ahead of time, or by numba's JIT for the profile build), its address
    array, the arrays behind the addresses (kept referenced while the step lives) and its digest."""
    text, arrays, sizes = generate(kernels, progress, ticks)
    if function is not None:
        kernel = function
    elif ticks is None:
        [kernel] = aot.compiled([(text, SIGNATURE)])
    else:  # calls libc through a pointer: not cached, not ahead of time
        kernel = aot.jit(text, SIGNATURE)
    return kernel, table(arrays, sizes), arrays, aot.digest_of(text, SIGNATURE)


def grouped(kernels: Sequence[Member]) -> list[Member]:
    """A run's members with series chains (``chains``) and side-by-side lanes (``lanes``) each as one member."""
    return laned(chained(kernels))


def _build_grouped(
    kernels: list[Member],
    progress: np.ndarray,
    function: Callable[..., None] | None = None,
    linked: list[Member] | None = None,
) -> tuple[Callable[..., None], np.ndarray, list[np.ndarray], str]:
    """The plain build with series chains run sample by sample (``chains``) and independent calls
    side by side (``lanes``); the separate calls when that build fails (a plugin's chain or lanes
    form numba cannot compile). ``function``: compiled from the grouped source already;
    ``linked``: ``grouped(kernels)`` already made."""
    linked = grouped(kernels) if linked is None else linked
    if all(a is b for a, b in zip(linked, kernels)):
        return _build(kernels, progress, function=function)
    try:
        return _build(linked, progress, function=function)
    except Exception:
        return _build(kernels, progress)


#: The longest run fused into one function. LLVM inlines every member's kernel, and compile
#: time grows faster than linearly with the function's size: 201 members took 66 s to compile
#: cold, 22 members (P3) about 1.3 s. Longer runs are split into several fused steps. 48, not
#: 24: each run's call unpacks its arrays again, 1.15x on the per-voice P2 (130 members) for
#: +19 % cold compile of the 202-node wide patch (performance.md).
MAX_RUN = 48


def fuse_steps(records: list[StepRecord], *, min_run: int = 1, max_run: int = MAX_RUN) -> list[StepRecord]:
    """Replace maximal runs of consecutive kernel-offering steps by one ``fused`` record each.

    A lone kernel is a run of one: it runs from a compiled module too, so that a plan whose
    modules are cached calls no numba dispatcher (and imports no numba). A lone escaping member
    is fused whatever ``min_run`` (module doc).

    A record offers a kernel through its ``kernel_source`` (a node, or a compiler mix step);
    any other step ends a run. The fused record's ``members`` are the records it replaced.
    """
    kernels = [None if r.kernel_source is None else kernel_of(r.kernel_source, r.ins, r.outs) for r in records]
    runs = _runs(kernels, min_run, max_run)
    members = {i: [k for k in kernels[i:j] if k is not None] for i, j in runs}
    linked = {i: grouped(m) for i, m in members.items()}
    functions = _compile_runs(linked)
    out: list[StepRecord] = []
    done = 0
    for i, j in runs:
        out.extend(records[done:i])
        done = i
        try:
            step = FusedStep(records[i:j], members[i], functions.get(i), linked[i])
        except Exception as exc:  # no writable cache directory, a kernel numba cannot compile, ...
            warnings.warn(f"neuralgraph: {records[i].name} … {records[j - 1].name} not fused: {exc}", stacklevel=2)
            continue
        # the step contains its members' faults itself, so its "bypass" is the step again
        out.append(
            StepRecord(
                step.name,
                "fused",
                step.process,
                records[i].ins,
                records[j - 1].outs,
                step.process,
                state=step,
                members=tuple(records[i:j]),
            )
        )
        done = j
    out.extend(records[done:])
    return out


def _runs(kernels: Sequence[Member | None], min_run: int, max_run: int) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each run :func:`fuse_steps` fuses."""
    runs = []
    i, n = 0, len(kernels)
    while i < n:
        j = i
        while j < n and kernels[j] is not None and j - i < max_run:
            j += 1
        if j - i >= min_run or (j - i == 1 and isinstance(kernels[i], EscapeKernel)):
            runs.append((i, j))
        i = max(j, i + 1)
    return runs


def _compile_runs(runs: dict[int, list[Member]]) -> dict[int, Callable[..., None]]:
    """Every run's function compiled in one batch (one compile subprocess for a plan's missing
    ones), by the run's start, from its grouped members (:func:`grouped`); empty if the batch
    fails (each run then compiles on its own, and the one that fails is reported)."""
    try:
        progress = np.zeros(PROGRESS, np.int64)
        sources = [(generate(members, progress)[0], SIGNATURE) for members in runs.values()]
        return dict(zip(runs, aot.compiled(sources)))
    except Exception:
        return {}
