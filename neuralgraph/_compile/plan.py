"""The compiled, immutable plan and the loop that runs it once per block (the audio thread)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from time import perf_counter_ns
from typing import Any

import numpy as np

from neuralgraph._compile.records import StepRecord
from neuralgraph._nodes import aot
from neuralgraph._nodes.events import EventBuffer
from neuralgraph._nodes.node import Node, Ports

Step = tuple[Callable[[Ports, Ports, int], None], Ports, Ports]

FAULT_SLOTS = 64
SUBNORMAL = np.float32(1e-30)


def _guard_pass(out, ceiling, tiny, stats):  # pragma: no cover - compiled by _guard_kernel
    """One pass over the output: NaN/Inf -> 0, below ``tiny`` -> 0, limit to ``ceiling``.

    Adds the replaced and clipped sample counts to ``stats[0]`` and ``stats[1]``, raises
    ``stats[2]`` to the largest finite magnitude seen, and returns this block's NaN/Inf count.
    """
    non_finite = 0
    clipped = 0
    peak = 0.0
    for c in range(out.shape[0]):
        for i in range(out.shape[1]):
            v = out[c, i]
            m = abs(v)
            if not m < np.inf:  # NaN or Inf
                out[c, i] = 0.0
                non_finite += 1
                continue
            if m > peak:
                peak = m
            if m < tiny:
                out[c, i] = 0.0
            elif m > ceiling:
                clipped += 1
                out[c, i] = ceiling if v > 0.0 else -ceiling
    stats[0] += non_finite
    stats[1] += clipped
    if peak > stats[2]:
        stats[2] = peak
    return non_finite


def _scan_pass(a, tally, k):  # pragma: no cover - compiled by _diagnostic_kernels
    """Add the NaN/Inf count of ``a`` to ``tally[k]`` and its subnormal count to ``tally[k + 1]``."""
    non_finite = 0
    subnormal = 0
    for c in range(a.shape[0]):
        for i in range(a.shape[1]):
            m = abs(a[c, i])
            if not m < np.inf:
                non_finite += 1
            elif 0.0 < m < 1.1754944e-38:
                subnormal += 1
    tally[k] += non_finite
    tally[k + 1] += subnormal


def _attribute_pass(tally, counts, step):  # pragma: no cover - compiled by _diagnostic_kernels
    """Charge a step with the bad values of its outputs (tally[2:4]) of each kind that its inputs
    (tally[0:2]) did not carry: a step that only passes NaN on did not produce it."""
    if tally[2] > 0 and tally[0] == 0:
        counts[step, 0] += tally[2]
    if tally[3] > 0 and tally[1] == 0:
        counts[step, 1] += tally[3]
    for k in range(4):
        tally[k] = 0


#: What the guard and the diagnostic passes are called with (compiled modules do not check types).
GUARD_SIGNATURE = "int64(float32[:, :], float32, float32, float64[::1])"
SCAN_SIGNATURE = "void(float32[:, :], int64[::1], int64)"
ATTRIBUTE_SIGNATURE = "void(int64[::1], int64[:, ::1], int64)"
_compiled: list[Callable[..., Any]] = []


def _plan_kernels() -> list[Callable[..., Any]]:
    """The guard, scan and attribute passes compiled in one batch, ahead of time where possible
    (``_nodes/aot.py``): a render whose modules are cached loads them without numba."""
    if not _compiled:
        _compiled.extend(
            aot.compiled_functions(
                __name__,
                ("_guard_pass", "_scan_pass", "_attribute_pass"),
                (GUARD_SIGNATURE, SCAN_SIGNATURE, ATTRIBUTE_SIGNATURE),
            )
        )
    return _compiled


def _guard_kernel() -> Callable[..., Any]:
    """``_guard_pass`` compiled (see :func:`_plan_kernels`)."""
    return _plan_kernels()[0]


@functools.cache
def shared_guard() -> Any:
    """``_guard_pass`` as ONE numba function, cached on disk, that every offline driver calls
    (``_compile/driver.py``; its generated sources import it, numba is imported by then). Each
    driver made a function of its own before: numba compiled the same guard again for every
    driver in a process and never cached it (82 compiles, 19 s of CPU in the test suite's
    process, docs/performance.md)."""
    from numba import njit

    return njit(cache=True, nogil=True)(_guard_pass)


def _diagnostic_kernels() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``_scan_pass`` and ``_attribute_pass`` compiled (see :func:`_plan_kernels`)."""
    scan, attribute = _plan_kernels()[1:]
    return scan, attribute


class _Stat:
    """One slot of ``OutputGuard.stats`` read and written as an attribute of the guard."""

    def __init__(self, index: int, kind: type, doc: str) -> None:
        self.index, self.kind, self.__doc__ = index, kind, doc

    def __get__(self, guard: Any, owner: type | None = None) -> Any:
        return self if guard is None else self.kind(guard.stats[self.index])

    def __set__(self, guard: Any, value: float) -> None:
        guard.stats[self.index] = value


class OutputGuard:
    """Keeps NaN, Inf, subnormals and overs out of the output; counts what it caught.

    ``ceiling`` is a hard limit in full-scale units (1.0 = 0 dBFS); set it to ``inf`` only on
    purpose (offline analysis), never in front of speakers. One compiled pass per block: six
    numpy calls cost 4.3 µs at block 64, the kernel about 1 µs (docs/performance.md).
    """

    def __init__(self, shape: tuple[int, int], ceiling: float) -> None:
        self.ceiling = np.float32(ceiling)
        #: samples replaced by 0, samples limited to the ceiling, largest magnitude before the ceiling
        self.stats = np.zeros(3, np.float64)
        self._kernel = _guard_kernel()

    non_finite = _Stat(0, int, "Samples replaced by 0 (NaN or Inf).")
    clipped = _Stat(1, int, "Samples limited to the ceiling.")
    peak = _Stat(2, float, "The largest finite magnitude seen before the ceiling.")

    def reset(self) -> None:
        """Zero the counts and the peak (control thread)."""
        self.stats.fill(0.0)

    def apply(self, out: np.ndarray) -> int:
        """Clean ``out`` in place; returns how many NaN/Inf samples this block held."""
        return self._kernel(out, self.ceiling, SUBNORMAL, self.stats)


class Plan:
    """Ordered steps bound to preallocated buffers; ``run_block`` computes one block.

    Made by :func:`neuralgraph._compile.compiler.build_plan`. Everything ``run_block`` touches was
    allocated when the plan was built.
    """

    def __init__(
        self,
        *,
        sample_rate: float,
        block_size: int,
        nodes: Mapping[str, Node],
        records: list[StepRecord],
        output: np.ndarray,
        input: np.ndarray | None,
        midi: EventBuffer,
        latency: int,
        buffer_count: int,
        slab_bytes: int,
        ceiling: float,
        order: tuple[str, ...],
        slab: np.ndarray | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.block_size = block_size
        self.nodes = dict(nodes)
        #: One record per step, in the order they run (what each one is; read by the profiler).
        self.records = tuple(records)
        #: What ``run_block`` calls, per step (a fault swaps in the step's bypass).
        self.steps: list[Step] = [(r.process, r.ins, r.outs) for r in records]
        self.step_names = [r.name for r in records]
        self._bypass: list[Step] = [(r.bypass, r.ins, r.outs) for r in records]  # built now: a fault allocates nothing
        #: Indices of the steps that run a fused run of nodes (one compiled call each).
        self.fused_indices = frozenset(i for i, r in enumerate(records) if r.kind == "fused")
        self.output = output
        self.input = input
        self.midi = midi
        self.latency = latency
        self.buffer_count = buffer_count
        self.slab_bytes = slab_bytes
        self.order = order
        self.slab = slab
        #: Outputs pinned at build time (``build_plan(..., pin=...)``): ``"node.port"`` -> its own
        #: buffer, no other signal's, so it can be read after each block (batch taps).
        self.pinned: dict[str, np.ndarray] = {}
        self.guard = OutputGuard(output.shape, ceiling)
        #: The compiler's steps (mix, delay) and fused runs that carry state from block to block,
        #: in the order they reset; ``Engine.save_state`` snapshots them.
        self.stateful_steps: tuple[object, ...] = tuple(s for r in records for s in r.states)
        self._init_fault_tracking(records)
        #: the steps as built: run_blocks checks that none was wrapped (tap) or bypassed (fault)
        self._plain_steps = tuple(self.steps)
        self._driver: Any = None  # the many-block loop (driver.py), built on first use

    def _init_fault_tracking(self, records: list[StepRecord]) -> None:
        """The fault slots, and the diagnostic mode that names the node making NaN/Inf."""
        self.bypassed = [False] * len(records)
        self.fault_step = np.full(FAULT_SLOTS, -1, np.int32)
        self.fault_error: list[BaseException | None] = [None] * FAULT_SLOTS
        #: the faulted node's name when the step was a fused run (else None: see step_names)
        self.fault_name: list[str | None] = [None] * FAULT_SLOTS
        self.fault_count = 0
        # Which node produced NaN/Inf: the guard only sees the mixed output, so when it catches
        # one, the following blocks run in diagnostic mode, scanning every step's inputs and
        # outputs, until a block reaches the output clean. Normal blocks pay one test of a flag.
        self.diagnostic = False
        #: Per step: NaN/Inf and subnormal samples it emitted from inputs free of that kind.
        self.bad_counts = np.zeros((len(records), 2), np.int64)
        #: Blocks run in diagnostic mode since the last reset.
        self.diagnostic_blocks = 0
        self._tally = np.zeros(4, np.int64)
        self._scan, self._attribute = _diagnostic_kernels()
        self._step_arrays = [(_signal_arrays(r.ins), _signal_arrays(r.outs)) for r in records]

    @property
    def channels(self) -> int:
        return int(self.output.shape[0])

    def run_block(self) -> np.ndarray:
        """Run every step once; return the output buffer (channels, block_size), reused per call."""
        if self.diagnostic:
            return self.run_block_diagnostic()
        frames = self.block_size
        steps = self.steps
        i = 0
        for process, ins, outs in steps:
            try:
                process(ins, outs, frames)
            except BaseException as exc:  # contain any fault, SystemExit and KeyboardInterrupt too
                self._fault(i, exc)
            i += 1
        self.midi.count = 0
        if self.guard.apply(self.output):
            self.diagnostic = True  # find the node that emits them, from the next block on
        return self.output

    def run_blocks(self, chunk: np.ndarray, count: int) -> int:
        """Offline: run ``count`` blocks in one compiled call, each block's output copied into
        ``chunk[:, b * block_size:(b + 1) * block_size]`` (``driver.py``).

        Only for a plan whose every step is a fused run still running fused and unwrapped (no
        tap, no fault, not profiling), outside diagnostic mode; returns 0 otherwise (run
        :meth:`run_block` instead), else the number of blocks run: fewer than ``count`` when the
        guard caught NaN or Inf, after which the plan is in diagnostic mode.
        """
        driver = self._driver
        if driver is None:
            driver = self._driver = self._make_driver()
        if driver is False or self.diagnostic or not driver.usable():
            return 0
        if any(a is not b for a, b in zip(self.steps, self._plain_steps)):
            return 0
        try:
            done = driver.run(chunk, count, self.guard)
        except Exception as exc:  # a run raised: contain it as run_block would, finish that block
            return self._finish_faulted_block(driver, exc, chunk)
        if done < 0:
            self.diagnostic = True  # find the node that emits them, from the next block on
            done = -done
        return done

    def _finish_faulted_block(self, driver: Any, exc: BaseException, chunk: np.ndarray) -> int:
        """The driver stopped in block ``b`` inside run ``k``: the blocks before ``b`` are done, runs
        before ``k`` ran in ``b``. Run ``k`` recovers (its culprit bypassed and reported), the
        later steps and the guard finish block ``b`` as :meth:`run_block` would."""
        block, k = int(driver.where[0]), int(driver.where[1])
        frames = self.block_size
        driver.runs[k].recover(exc, frames)
        for i in range(k + 1, len(self.steps)):
            process, ins, outs = self.steps[i]
            try:
                process(ins, outs, frames)
            except BaseException as later:
                self._fault(i, later)
        self.midi.count = 0
        if self.guard.apply(self.output):
            self.diagnostic = True
        chunk[:, block * frames : (block + 1) * frames] = self.output
        _stop_on_ctrl_c(exc)
        return block + 1

    def _make_driver(self) -> Any:
        """The compiled many-block loop, or False when a step is not a fused run (or it fails)."""
        from neuralgraph._compile.driver import Driver
        from neuralgraph._compile.fusion import FusedStep

        runs = [r.state for r in self.records]
        if not runs or not all(r.kind == "fused" and isinstance(s, FusedStep) for r, s in zip(self.records, runs)):
            return False
        try:
            return Driver(runs, self.output)
        except Exception:  # no writable cache, numba refusing it: block by block, as before
            return False

    def run_block_diagnostic(self) -> np.ndarray:
        """``run_block``, then after each step count the NaN/Inf and subnormal samples it produced.

        ``run_block`` switches to it after the output guard caught NaN or Inf, and back after
        a clean block. Allocation-free like ``run_block``: compiled scans into preallocated
        counters (``bad_counts``), which the control thread reads (``Engine.bad_values``).
        """
        frames = self.block_size
        scan, attribute, tally, counts = self._scan, self._attribute, self._tally, self.bad_counts
        arrays = self._step_arrays
        i = 0
        for process, ins, outs in self.steps:
            try:
                process(ins, outs, frames)
            except BaseException as exc:
                self._fault(i, exc)
            reads, writes = arrays[i]
            for a in reads:
                scan(a, tally, 0)
            for a in writes:
                scan(a, tally, 2)
            attribute(tally, counts, i)
            i += 1
        self.midi.count = 0
        self.diagnostic_blocks += 1
        if not self.guard.apply(self.output):
            self.diagnostic = False
        return self.output

    def run_block_timed(self, elapsed_ns: np.ndarray) -> np.ndarray:
        """``run_block`` with each step's ``perf_counter_ns`` duration added to ``elapsed_ns[i]``.

        For profiling (``neuralgraph bench``); kept apart so ``run_block`` pays nothing for it.
        ``elapsed_ns`` is an int64 array of ``len(steps)`` entries; the output guard's time goes
        to ``elapsed_ns[len(steps)]`` when the array has room for it.
        """
        frames = self.block_size
        clock = perf_counter_ns
        i = 0
        for process, ins, outs in self.steps:
            t0 = clock()
            try:
                process(ins, outs, frames)
            except BaseException as exc:
                self._fault(i, exc)
            elapsed_ns[i] += clock() - t0
            i += 1
        self.midi.count = 0
        t0 = clock()
        self.guard.apply(self.output)
        if elapsed_ns.shape[0] > i:
            elapsed_ns[i] += clock() - t0
        return self.output

    def _fault(self, index: int, exc: BaseException) -> None:
        self._record_fault(index, exc, None)
        self.bypassed[index] = True
        self.steps[index] = self._bypass[index]
        process, ins, outs = self.steps[index]
        try:
            process(ins, outs, self.block_size)
        except Exception:  # pragma: no cover - the bypass only fills buffers
            pass
        _stop_on_ctrl_c(exc)

    def _record_fault(self, index: int, exc: BaseException, name: str | None, reraise: bool = False) -> None:
        slot = self.fault_count % FAULT_SLOTS
        self.fault_step[slot] = index
        self.fault_error[slot] = exc
        self.fault_name[slot] = name
        self.fault_count += 1
        if reraise:
            _stop_on_ctrl_c(exc)

    def fused_fault(self, index: int) -> Callable[[str, BaseException], None]:
        """The callback by which the fused step ``index`` reports the node that raised in it
        (the step bypasses that node itself and keeps running the others)."""
        return lambda name, exc: self._record_fault(index, exc, name, reraise=True)

    def reset(self) -> None:
        """Reset every node and compiler step (control thread, not while a block runs)."""
        for node in self.nodes.values():
            node.reset()
        for item in self.stateful_steps:
            item.reset()
        if self.slab is not None:
            self.slab.fill(0.0)  # every wire, including feedback buffers holding the last block
        self.midi.count = 0
        self.guard.reset()
        self.diagnostic = False
        self.diagnostic_blocks = 0
        self.bad_counts.fill(0)

    def describe(self) -> str:
        """The order, buffers and latency, as ``neuralgraph check`` prints them."""
        lines = [f"order ({len(self.order)} nodes): " + " -> ".join(self.order)]
        fused = len(self.fused_indices)
        emitted = sum(1 for r in self.records if r.kind not in ("node", "fused"))
        lines.append(
            f"steps: {len(self.steps)} ({emitted} emitted by the compiler"
            + (f", {fused} fused runs)" if fused else ")")
        )
        lines.append(f"buffers: {self.buffer_count} in one slab of {self.slab_bytes} bytes")
        lines.append(f"latency: {self.latency} samples ({1000.0 * self.latency / self.sample_rate:.2f} ms)")
        lines.append(f"output: {self.channels} channels at {self.sample_rate:g} Hz, block {self.block_size}")
        return "\n".join(lines)


def _stop_on_ctrl_c(exc: BaseException) -> None:
    """Re-raise a contained KeyboardInterrupt in the main thread. Offline work runs blocks there,
    where Ctrl-C arrives as a KeyboardInterrupt inside whatever node runs: recorded and bypassed,
    it must still stop the render. A backend's audio thread is never the main thread: it plays on."""
    if isinstance(exc, KeyboardInterrupt) and threading.current_thread() is threading.main_thread():
        raise exc


def _signal_arrays(ports: Ports) -> tuple[np.ndarray, ...]:
    """The float32 signal arrays among a step's ports (event buffers are not scanned)."""
    return tuple(a for _, a in ports.items() if isinstance(a, np.ndarray) and a.ndim == 2 and a.dtype == np.float32)
