"""Audio taps: read any signal of a running engine from another thread, in real time.

``engine.tap(port, seconds=2.0)`` returns a :class:`Tap`: a preallocated single-producer
single-consumer ring of float32 frames. The audio thread is the producer: after the step that
produces the port (or after the whole block, for the output) it copies the block into the ring
and then publishes the new write count. It never allocates a buffer, takes a lock or waits; when
the reader has fallen a whole ring behind it overwrites the oldest frames and counts an
overrun. The reader (any one other thread) calls :meth:`Tap.read` for everything new since its
last read, as one contiguous :class:`TapChunk` with its start frame, or :meth:`Tap.latest` for
the newest frames without consuming them (what a level meter or a scope polls).

Frames are counted from the moment the tap was attached (the tap's own clock; a control-rate
port yields one column per block, stamped in sample frames). Taps follow the engine through
:meth:`Engine.swap <neuralgraph.Engine.swap>` and through a backend's rebuild for a new
buffer size. Detach with :meth:`Tap.close`.

A port inside a fused run is written after the run; when a later member of the run reuses its
buffer, or the run leaves it unwritten because nothing in the patch reads it
(``EscapeKernel.unwritten``), the run instead runs its members one by one (each node's own ``process``, which the
contract makes equal to its kernel) and the tap is written right after that member.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import numpy as np

from neuralgraph._compile.fusion import FusedStep
from neuralgraph._errors import ParameterError, did_you_mean
from neuralgraph._nodes.ports import Rate

#: Serialises attach/detach/carry on the control side (never taken by the audio thread).
_control_lock = threading.Lock()


@attrs.frozen
class TapChunk:
    """Frames read from a tap: ``data`` is (lanes, frames) float32, a copy owned by the reader."""

    start: int  #: the first frame's position on the tap's clock (frames since the tap was attached)
    data: np.ndarray
    lost: int  #: frames skipped just before this chunk because the reader fell behind

    @property
    def frames(self) -> int:
        return int(self.data.shape[1])


class Tap:
    """A lock-free ring the audio thread writes and one reader thread reads."""

    def __init__(self, port: str | None, lanes: int, capacity: int, frames_per_column: int, sample_rate: float) -> None:
        self.port = port
        self.capacity = capacity
        self.ring = np.zeros((lanes, capacity), np.float32)
        self.frames_per_column = frames_per_column
        self.sample_rate = sample_rate
        self.written = 0  #: columns written (the writer publishes it after the copy)
        self.read_pos = 0  #: columns consumed (reader only)
        self.overruns = 0  #: writes that overwrote frames the reader had not read (writer only)
        self.lost = 0  #: columns the reader skipped because of overruns (reader only)
        self.largest = 1  #: the longest single write: the margin the reader keeps from the writer
        self.open = True
        self.port_gone = False  #: the port left the patch in a swap
        self._engine: Any = None
        self._point: TapPoint | None = None

    # ---- audio thread ---------------------------------------------------------------------------
    def write(self, block: np.ndarray) -> None:
        """Append ``block`` (lanes, n); never blocks, never allocates an array."""
        n = block.shape[1]
        w = self.written
        cap = self.capacity
        if w + n - self.read_pos > cap:
            self.overruns += 1
        pos = w % cap
        end = pos + n
        if end <= cap:
            np.copyto(self.ring[:, pos:end], block)
        else:
            first = cap - pos
            np.copyto(self.ring[:, pos:], block[:, :first])
            np.copyto(self.ring[:, : n - first], block[:, first:])
        if n > self.largest:
            self.largest = n
        self.written = w + n

    # ---- reader thread --------------------------------------------------------------------------
    def _copy(self, start: int, n: int) -> np.ndarray:
        cap = self.capacity
        pos = start % cap
        if pos + n <= cap:
            return self.ring[:, pos : pos + n].copy()
        return np.concatenate([self.ring[:, pos:], self.ring[:, : pos + n - cap]], axis=1)

    def read(self, max_frames: int | None = None) -> TapChunk | None:
        """Everything written since the last read (up to ``max_frames``), or None if nothing is new."""
        cap = self.capacity
        r = self.read_pos
        w = self.written
        lost = 0
        oldest = w - cap + self.largest  # the writer may be overwriting the frames before this
        if r < oldest:
            lost, r = oldest - r, oldest
        n = w - r
        if max_frames is not None:
            n = min(n, max(0, int(max_frames) // self.frames_per_column))
        data = self._copy(r, n) if n > 0 else None
        torn = self.written - cap + self.largest - r  # overwritten while we copied
        if data is not None and torn > 0:
            cut = min(torn, n)
            data, lost, r, n = data[:, cut:], lost + cut, r + cut, n - cut
        self.lost += lost
        self.read_pos = r + max(n, 0)
        if data is None or n <= 0:
            return None
        return TapChunk(r * self.frames_per_column, data, lost * self.frames_per_column)

    def latest(self, frames: int) -> np.ndarray:
        """A copy of the newest ``frames`` frames (fewer at the start), without consuming anything."""
        w = self.written
        n = min(max(0, int(frames) // self.frames_per_column), w, self.capacity - self.largest)
        return self._copy(w - n, n) if n else np.zeros((self.ring.shape[0], 0), np.float32)

    @property
    def available(self) -> int:
        """Frames written and not read yet (may exceed the capacity after an overrun)."""
        return (self.written - self.read_pos) * self.frames_per_column

    def close(self) -> None:
        """Detach: the audio thread stops writing at its next block (control thread)."""
        with _control_lock:
            self.open = False
            engine = self._engine
            if engine is not None:
                engine._out_taps = tuple(t for t in engine._out_taps if t is not self)
                engine._tap_list = [t for t in engine._tap_list if t is not self]
            if self._point is not None:
                self._point.taps = tuple(t for t in self._point.taps if t[0] is not self)

    def __enter__(self) -> Tap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<Tap {self.port or 'output'}: {self.ring.shape[0]} lanes, {self.capacity} columns, "
            f"{self.available} unread, {self.overruns} overruns>"
        )


class TapPoint:
    """A plan step wrapped so that its taps are written right after it runs (audio thread)."""

    def __init__(self, process: Any) -> None:
        self.inner = process
        self.inner_owner = getattr(process, "__self__", None)
        self.taps: tuple[tuple[Tap, np.ndarray], ...] = ()  # (tap, the buffer it copies)

    def process(self, ins: Any, outs: Any, frames: int) -> None:
        self.inner(ins, outs, frames)
        for tap, buffer in self.taps:
            tap.write(buffer)


def _owner(process: Any) -> Any:
    owner = getattr(process, "__self__", None)
    return owner.inner_owner if isinstance(owner, TapPoint) else owner


def locate(engine: Any, port: str) -> tuple[int, int, np.ndarray, int]:
    """Where ``port``'s buffer holds this block: the step index, the member of a fused run to
    wrap (-1: wrap the whole step), the buffer, and frames per column."""
    plan = engine.plan
    node_name, _, out_name = port.partition(".")
    node = plan.nodes.get(node_name)
    if node is None:
        raise ParameterError(f"tap {port}: no node `{node_name}`" + _hint(did_you_mean(node_name, plan.nodes)))
    outputs = node.outputs()
    out_name = out_name or node.main_output
    decl = outputs.get(out_name)
    if decl is None:
        raise ParameterError(
            f"tap {port}: `{node.type_name}` has no output `{out_name}`"
            + _hint(did_you_mean(out_name, outputs))
            + f" (outputs: {', '.join(outputs)})"
        )
    if decl.rate is Rate.EVENTS:
        raise ParameterError(f"tap {port}: `{out_name}` carries events, not samples; tap an audio or control output")
    per_column = engine.block_size if decl.rate is Rate.CONTROL else 1
    for i, (process, _, outs) in enumerate(plan.steps):
        owner = _owner(process)
        if owner is node:
            return i, -1, outs[out_name], per_column
        if isinstance(owner, FusedStep) and node_name in owner.names:
            k = owner.names.index(node_name)
            buffer = owner.members[k].outs[out_name]
            if out_name in owner.unwritten(k):
                return i, k, buffer, per_column  # the run does not write it: tap the member itself
            for later in owner.members[k + 1 :]:
                if any(isinstance(a, np.ndarray) and np.shares_memory(a, buffer) for _, a in later.outs.items()):
                    return i, k, buffer, per_column  # reused inside the run: tap the member itself
            return i, -1, buffer, per_column
    raise ParameterError(f"tap {port}: `{node_name}` runs no step of its own in this plan")


def _install(engine: Any, tap: Tap, plan_of: Any = None) -> None:
    """Hook ``tap`` into ``engine``, its port into the plan of ``plan_of`` (default: ``engine``;
    a swap's new engine, not running yet). On a running plan the step list's item and the taps
    tuple are each replaced in one assignment, which the audio thread sees whole."""
    tap._engine = engine
    tap._point = None
    if tap.port is None:
        engine._out_taps = (*engine._out_taps, tap)
        return
    source = plan_of or engine
    index, member, buffer, _ = locate(source, tap.port)
    plan = source.plan
    process, ins, outs = plan.steps[index]
    fused = _owner(process)
    if member >= 0:  # the fused run must run its members one by one while this tap is on
        process = fused.members[member].process
    point = getattr(process, "__self__", None)
    if not isinstance(point, TapPoint):
        point = TapPoint(process)
        point.taps = ((tap, buffer),)
        tap._point = point
        if member >= 0:
            fused.ready_members()  # compiled here, not in the audio thread's next block
            fused.run_member_with(member, point.process)  # and unfused from now on: either way the block is whole
        else:
            plan.steps[index] = (point.process, ins, outs)
        return
    tap._point = point
    point.taps = (*point.taps, (tap, buffer))


def attach(engine: Any, port: str | None = None, seconds: float = 2.0) -> Tap:
    """``Engine.tap``: make a tap holding ``seconds`` of ``port`` and hook it in (control thread)."""
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and 0 < seconds <= 600):
        raise ParameterError(f"tap seconds must be between 0 and 600, got {seconds!r}")
    if port is not None and port.partition(".")[0] == engine.patch.topology.output_node:
        port = None  # the io.output node: the output as played, after the guard
    if port is None:
        lanes, per_column = engine.channels, 1
    else:
        _, _, buffer, per_column = locate(engine, port)
        lanes = buffer.shape[0]
    columns = max(1, math.ceil(seconds * engine.sample_rate / per_column))
    # room for the writer's margin: at least two blocks beyond what was asked
    columns += 2 * max(1, engine.block_size // per_column)
    tap = Tap(port, lanes, columns, per_column, engine.sample_rate)
    with _control_lock:
        _install(engine, tap)
        engine._tap_list = [*engine._tap_list, tap]
    return tap


def carry_taps(old: Any, new: Any, swap: bool = False) -> list[TapPoint]:
    """Hook every open tap of ``old`` into ``new``, which is not running yet: a rebuilt engine
    that replaces ``old`` (the taps move to it), or with ``swap`` the engine whose plan ``old``
    is about to switch to (port taps are hooked into that plan; ``old`` keeps its taps).

    Returns the tap points of ``old``'s plan, which the switch silences. A tapped port the new
    patch no longer has stops receiving frames (``tap.port_gone`` is True)."""
    with _control_lock:
        taps = [t for t in old._tap_list if t.open]
        owner = old if swap else new
        previous = points(old.plan)
        if not swap:
            owner._out_taps = ()
        kept = []
        for tap in taps:
            if swap and tap.port is None:  # the output taps stay on the engine, which keeps playing
                kept.append(tap)
                continue
            try:
                _install(owner, tap, plan_of=new)
            except ParameterError:
                tap._engine, tap._point = None, None
                tap.port_gone = True
                continue
            kept.append(tap)
        owner._tap_list = kept
        return previous


def points(plan: Any) -> list[TapPoint]:
    """The tap points hooked into ``plan``'s steps and into the members of its fused runs."""
    found = []
    for process, _, _ in plan.steps:
        owner = getattr(process, "__self__", None)
        if isinstance(owner, TapPoint):
            found.append(owner)
            owner = owner.inner_owner
        if isinstance(owner, FusedStep):
            found.extend(
                m.process.__self__ for m in owner.members if isinstance(getattr(m.process, "__self__", None), TapPoint)
            )
    return found


@contextmanager
def muted(engine: Any) -> Iterator[None]:
    """No tap of ``engine`` is written inside the block (warm-up blocks that are never played)."""
    saved = engine._out_taps
    hooked = [(point, point.taps) for point in points(engine.plan)]
    engine._out_taps = ()
    for point, _ in hooked:
        point.taps = ()
    try:
        yield
    finally:
        engine._out_taps = saved
        for point, taps in hooked:
            point.taps = taps


def _hint(text: str | None) -> str:
    return f" ({text})" if text else ""
