"""The engine: runs a compiled plan block by block, offline or inside a backend's callback."""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from neuralgraph._compile.compiler import build_plan
from neuralgraph._errors import ParameterError, did_you_mean
from neuralgraph._nodes.events import CONTROL_CHANGE, NOTE_OFF, NOTE_ON, EventBuffer
from neuralgraph._nodes.gcpause import gc_paused
from neuralgraph._patch.patch import Patch
from neuralgraph._runtime.ring import MIDI, SET, CommandRing, MidiQueue, must_keep
from neuralgraph._runtime.steptimer import SlowStep, StepTimer
from neuralgraph._runtime.swap import SwapReport, Switch, swap_engine
from neuralgraph._runtime.tap import Tap, attach, carry_taps, muted
from neuralgraph._runtime.targets import InputRamp, ParamTarget


@attrs.frozen
class Fault:
    """A step that raised in the audio thread and has been bypassed since."""

    node: str
    error: BaseException


@attrs.frozen
class Notice:
    """A message from a node about what its audio thread counted (``Node.notices``), once."""

    node: str
    text: str


@attrs.frozen
class BadValues:
    """Samples of NaN/Inf and subnormals one step emitted while its inputs carried none of them.

    Counted in diagnostic mode, which the output guard turns on after it replaced a NaN or Inf
    and which lasts until a block reaches the output clean (docs/reliability.md).
    """

    node: str  #: the node's name (or a compiler step's, e.g. ``lpf.cutoff (mix)``)
    non_finite: int
    subnormal: int


class Engine:
    """Runs a patch: ``process()`` one block at a time, or ``render()`` a whole piece offline.

    ``set``, ``note_on`` and ``note_off`` may be called from any thread; they reach the audio
    thread through a preallocated ring and take effect at the next block boundary.
    ``ceiling`` is the output guard's hard limit (full scale = 1.0). ``warmup`` runs one block
    and resets before returning, so that JIT compilation never lands in a callback. ``fuse``
    (default True) lets the compiler fuse runs of nodes that offer compiled kernels into one call
    per block (docs/architecture.md, "Fusion"); ``fuse=False`` keeps one step per node.
    ``pin`` names outputs (``"node.port"``) readable after every block as ``plan.pinned[...]``.
    """

    @gc_paused()  # compile, prepare and warm up without collector passes over the new objects
    def __init__(
        self,
        patch: Patch,
        sample_rate: int | None = None,
        block_size: int | None = None,
        *,
        ceiling: float = 1.0,
        warmup: bool = True,
        fuse: bool = True,
        pin: tuple[str, ...] = (),
    ) -> None:
        self.patch = patch
        self.sample_rate = int(sample_rate or patch.sample_rate)
        self.block_size = int(block_size or patch.block_size)
        if not 1 <= self.block_size <= 16384:
            raise ParameterError(f"block size {self.block_size} is out of range (1..16384)")
        if not 8000 <= self.sample_rate <= 384000:
            raise ParameterError(f"sample rate {self.sample_rate} is out of range (8000..384000 Hz)")
        self.fuse = fuse
        self.plan, constants = build_plan(patch, self.sample_rate, self.block_size, ceiling=ceiling, fuse=fuse, pin=pin)
        self._ring = CommandRing()
        self._midi = MidiQueue(self._ring)
        self._ramping: list[InputRamp] = []
        # (generation, targets, index by name): replaced as one when a swap switches plans, so a
        # set() racing with the switch tags its command with the plan it looked the target up in
        self._lookup: tuple[int, list[ParamTarget | InputRamp], dict[str, int]] = (0, [], {})
        self._remap: np.ndarray | None = None  # previous generation's target index -> this one's
        self._swap: Switch | None = None  # a prepared swap, taken by the audio thread at the next block
        self._retired: Switch | None = None  # the finished switch holding the old plan, released by collect()
        self._out_taps: tuple[Tap, ...] = ()  # taps on the output, written after every block
        self._tap_list: list[Tap] = []  # every open tap of this engine (control thread)
        for key, constant in constants.items():
            self._add_target(key, InputRamp(constant, self.sample_rate, self.block_size, self._ramping))
        for name, node in self.plan.nodes.items():
            for pname, decl in node.params().items():
                if decl.live:
                    self._add_target(f"{name}.{pname}", ParamTarget(node, pname, decl))
        self.frames_done = 0
        self._faults_seen = 0
        #: samples every step's time in one block of 32 (``slow_steps``)
        self.step_timer = StepTimer(self.plan, self.sample_rate, self.block_size)
        _quiet_float_warnings({type(node).__module__ for node in self.plan.nodes.values()})
        if warmup:
            # One block now, then a reset: JIT compilation and first-call costs happen here, not
            # in the first audio callback or inside a timed render.
            self.plan.run_block()
            self.plan.run_block_diagnostic()  # compiles its scans now, not when a NaN first appears
            self.plan.midi.coalesce(CONTROL_CHANGE, 1, 0)  # compiles the overflow merge now
            self.plan.reset()
        #: The last value given to ``set`` per target, so :meth:`rebuilt` can carry settings over.
        self.settings: dict[str, float | str | bool] = {}

    @property
    def _targets(self) -> list[ParamTarget | InputRamp]:
        return self._lookup[1]

    @property
    def _target_index(self) -> dict[str, int]:
        return self._lookup[2]

    def _add_target(self, key: str, target: Any) -> None:
        self._target_index[key] = len(self._targets)
        self._targets.append(target)

    # ---- properties -----------------------------------------------------------------------------
    @property
    def channels(self) -> int:
        return self.plan.channels

    @property
    def targets(self) -> tuple[str, ...]:
        """Every ``"node.param"`` and ``"node.port"`` that :meth:`set` accepts."""
        return tuple(self._target_index)

    @property
    def latency(self) -> int:
        """Samples of delay from input (or note) to output, summed over the longest path."""
        return self.plan.latency

    @property
    def input(self) -> np.ndarray | None:
        """The io.input buffer (channels, block_size) to fill before ``process``, if the patch has one."""
        return self.plan.input

    # ---- control thread ---------------------------------------------------------------------------
    def set(self, target: str, value: float | str | bool) -> None:
        """Set ``"node.param"`` or an unconnected input ``"node.port"``; applied at the next block.

        Inputs ramp to the new value over their ``ramp_ms``. Raises :class:`ParameterError` for an
        unknown target, a connected input, a parameter that cannot change while running, or a
        value out of range.
        """
        generation, index, number = self._checked(target, value)
        if not self._ring.push(SET, index, number, generation):
            raise ParameterError("too many pending changes: the engine is not running blocks")
        self.settings[target] = value

    def set_now(self, target: str, value: float | str | bool) -> None:
        """Give ``target`` its value at once: an unconnected input jumps to it (no ramp), a
        parameter is set on its node now, bypassing the command ring.

        For offline use between renders (control thread, while no block runs), followed by
        :meth:`reset`: the engine is then in the state a fresh engine built with that value would
        be in (batch rendering re-uses one compiled engine this way). Raises like :meth:`set`.
        """
        _, index, number = self._checked(target, value)
        obj = self._targets[index]
        if isinstance(obj, InputRamp):
            obj.jump(number)
        else:
            obj.apply(number)
        self.settings[target] = value

    def _checked(self, target: str, value: float | str | bool) -> tuple[int, int, float]:
        """The lookup's generation, the target's index and the value as the command ring carries
        it (a choice's index)."""
        generation, targets, target_index = self._lookup
        index = target_index.get(target)
        if index is None:
            raise ParameterError(self._unknown_target(target))
        obj = targets[index]
        if isinstance(obj, InputRamp):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParameterError(f"{target}: expected a number, got {value!r}")
            reason = obj.decl.check(value)  # converts, and refuses ints too large for a float
            if reason:
                raise ParameterError(f"{target}: {value!r} {reason}")
            return generation, index, float(value)
        try:
            coerced = obj.decl.coerce(value)
        except ValueError as exc:
            raise ParameterError(f"{target}: {value!r} {exc}") from None
        return generation, index, float(obj.decl.choices.index(coerced)) if obj.decl.kind is str else float(coerced)

    def _unknown_target(self, target: str) -> str:
        node, _, port = target.partition(".")
        if node not in self.plan.nodes:
            return f"{target}: no node `{node}`" + _hint(did_you_mean(node, self.plan.nodes))
        n = self.plan.nodes[node]
        if port in n.inputs():
            return f"{target}: the input is connected; change its source instead"
        decl = n.params().get(port)
        if decl is not None and not decl.live:
            return f"{target}: `{port}` shapes the node's buffers and cannot change while running; reload the patch"
        settable = [k.split(".", 1)[1] for k in self._target_index if k.startswith(node + ".")]
        return f"{target}: `{n.type_name}` has no settable `{port}`" + _hint(did_you_mean(port, settable))

    def rebuilt(self, sample_rate: int | None = None, block_size: int | None = None) -> Engine:
        """A new engine for the same patch at another rate or block size, with the same settings.

        Builds and prepares everything (call it off the audio thread); every value given to
        :meth:`set` is applied to the new engine. Node state (phases, envelopes) starts afresh.
        Backends use it to follow a device's buffer-size change and swap at a block boundary.
        """
        engine = Engine(
            self.patch,
            sample_rate or self.sample_rate,
            block_size or self.block_size,
            ceiling=float(self.plan.guard.ceiling),
            fuse=self.fuse,
        )
        for target, value in self.settings.items():
            engine.set(target, value)
        carry_taps(self, engine)
        return engine

    def swap(self, patch: Patch, fade: float = 0.05) -> SwapReport:
        """Play ``patch`` from the next block on, keeping the state of every node it keeps.

        Parses nothing and compiles on the calling thread (never the audio thread), then hands
        the new plan over; returns a :class:`~neuralgraph.SwapReport` at once. Nodes whose
        name, type, fixed parameters and lanes are unchanged keep their state; changed values
        glide as :meth:`set` makes them; added or removed nodes crossfade over ``fade`` seconds.
        An identical patch is not swapped. See docs/live.md.
        """
        return swap_engine(self, patch, fade)

    def collect(self) -> None:
        """Release the plan a finished swap replaced (control thread)."""
        retired, self._retired = self._retired, None
        if retired is not None:
            retired.release()

    def tap(self, port: str | None = None, seconds: float = 2.0) -> Tap:
        """A :class:`~neuralgraph.Tap` on ``port`` (``"node"`` or ``"node.port"``; None: the
        output as played), filled by the audio thread; read it from any other thread."""
        return attach(self, port, seconds)

    def taps_muted(self) -> AbstractContextManager[None]:
        """Inside it no tap of this engine is written: blocks run to warm up, never played
        (control thread)."""
        return muted(self)

    def send_midi(self, status: int, data1: int = 0, data2: int = 0, frame: int = 0) -> bool:
        """Queue a short MIDI message for the next block, at ``frame`` within it.

        True when queued. Note-offs, the sustain pedal and channel-mode controllers are always
        queued (a burst beyond the queue waits and arrives in later blocks); other messages are
        refused with False once 65536 wait, counted in :attr:`midi_dropped`.
        """
        if not (0x80 <= status <= 0xFF and 0 <= data1 < 128 and 0 <= data2 < 128):
            raise ParameterError(f"not a MIDI message: {status:#x} {data1} {data2}")
        frame = min(max(int(frame), 0), self.block_size - 1)
        return self._midi.push(status | (data1 << 8) | (data2 << 16), frame, must_keep(status, data1, data2))

    @property
    def midi_dropped(self) -> int:
        """MIDI messages refused because too many were waiting (``send_midi`` returned False)."""
        return self._midi.dropped

    @property
    def midi_waiting(self) -> int:
        """MIDI messages queued and not yet handed to a block."""
        return len(self._midi.spill) + sum(
            1 for k in range(self._ring.tail, self._ring.head) if self._ring.kind[k % self._ring.capacity] == MIDI
        )

    def note_on(self, note: int, velocity: int = 100, channel: int = 0) -> bool:
        return self.send_midi(NOTE_ON | channel, note, velocity)

    def note_off(self, note: int, velocity: int = 0, channel: int = 0) -> bool:
        return self.send_midi(NOTE_OFF | channel, note, velocity)

    def control_change(self, controller: int, value: int, channel: int = 0) -> bool:
        return self.send_midi(CONTROL_CHANGE | channel, controller, value)

    def faults(self) -> list[Fault]:
        """Faults recorded since the last call (control thread)."""
        plan = self.plan
        new: list[Fault] = []
        first = max(self._faults_seen, plan.fault_count - len(plan.fault_error))
        for k in range(first, plan.fault_count):
            slot = k % len(plan.fault_error)
            name = plan.fault_name[slot] or plan.step_names[int(plan.fault_step[slot])]
            new.append(Fault(name, plan.fault_error[slot]))
        self._faults_seen = plan.fault_count
        return new

    def notices(self) -> list[Notice]:
        """New messages from the nodes (e.g. a note outside an instrument's range), each once (control thread)."""
        return [Notice(name, text) for name, node in self.plan.nodes.items() for text in node.notices()]

    def slow_steps(self) -> list[SlowStep]:
        """Nodes (steps) that alone took longer than the block's period in a sampled block, slowest
        first (control thread). Sampled: one block in ``step_timer.every`` is timed per step (32; one in
        256 while an offline render runs, ``steptimer.OFFLINE_EVERY``)."""
        return self.step_timer.slow_steps()

    def save_state(self) -> dict[str, Any]:
        """A snapshot of everything that carries a running patch from one block to the next.

        Each node's :meth:`~neuralgraph._nodes.node.Node.save_state`, every wire (feedback buffers hold
        the last block), the compiler's delay lines and input ramps, and the unconnected inputs'
        values and ramps in progress. For presets, undo and tests; call it from the control
        thread while no block runs (it allocates). Parameters set with :meth:`set` are part of
        the nodes' states; queued changes not yet applied are not.
        """
        from neuralgraph._nodes.state import snapshot

        plan = self.plan
        return {
            "nodes": {name: node.save_state() for name, node in plan.nodes.items()},
            "steps": [
                snapshot(item, skip=("terms", *getattr(item, "transient", ())))  # terms: bound views
                for item in plan.stateful_steps
            ],
            "wires": None if plan.slab is None else plan.slab.copy(),
            "constants": [t.save() for t in self._targets if isinstance(t, InputRamp)],
            "frames_done": self.frames_done,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`save_state` snapshot of an engine of the same patch, rate and block.

        Everything is written back in place, so the compiled plan runs on as if the blocks since
        the save never happened. Control thread, while no block runs. Raises ``ValueError`` when
        the state does not fit (another patch, block size or lane count).
        """
        from neuralgraph._nodes.state import restore

        plan = self.plan
        nodes = state["nodes"]
        if set(nodes) != set(plan.nodes) or len(state["steps"]) != len(plan.stateful_steps):
            raise ValueError("the state was saved from another patch")
        constants = [t for t in self._targets if isinstance(t, InputRamp)]
        if len(state["constants"]) != len(constants):
            raise ValueError("the state was saved from another patch")
        for name, node in plan.nodes.items():
            node.load_state(nodes[name])
        for item, saved in zip(plan.stateful_steps, state["steps"]):
            restore(item, saved)
        if plan.slab is not None:
            if state["wires"] is None or state["wires"].shape != plan.slab.shape:
                raise ValueError("the state was saved from another patch or block size")
            np.copyto(plan.slab, state["wires"])
        self._ramping.clear()
        for target, saved in zip(constants, state["constants"]):
            target.load(saved)
            if target.ramping:
                self._ramping.append(target)
        self.frames_done = state["frames_done"]

    def bad_values(self) -> list[BadValues]:
        """The nodes that produced NaN/Inf or subnormals, worst first (control thread).

        Counts are cumulative since the last :meth:`reset`. ``plan.guard.non_finite`` is how
        many samples the output guard replaced; the block in which a NaN first reaches the output
        is cleaned but not attributed (attribution starts with the next block), so a node that
        emits NaN in one single block is counted at the output only.
        """
        plan = self.plan
        counts = plan.bad_counts.copy()  # one consistent read of both columns
        found = [
            BadValues(plan.step_names[i], int(counts[i, 0]), int(counts[i, 1]))
            for i in np.flatnonzero(counts.any(axis=1))
        ]
        return sorted(found, key=lambda b: (-b.non_finite, -b.subnormal, b.node))

    def reset(self) -> None:
        """Reset every node's state (call between renders, not while a backend runs)."""
        self.plan.reset()
        self.step_timer.reset()
        self.frames_done = 0

    # ---- audio thread ---------------------------------------------------------------------------
    def apply_commands(self) -> None:
        """Apply the queued ``set`` and MIDI commands and advance the input ramps (audio thread;
        :meth:`process` calls it before each block, a profiler before each timed block).

        A ``set`` is tagged with the generation of the target lookup it used; one made just
        before a swap switched plans is remapped onto the new plan's target (docs/live.md)."""
        ring = self._ring
        tail, head = ring.tail, ring.head
        if tail != head:
            midi = self.plan.midi
            cap = ring.capacity
            generation, targets, _ = self._lookup
            while tail != head:
                slot = tail % cap
                kind = ring.kind[slot]
                if kind == SET:
                    index = ring.a[slot]
                    if ring.frame[slot] != generation:  # looked up before a swap: follow the target over
                        remap = self._remap
                        index = remap[index] if remap is not None and ring.frame[slot] == generation - 1 else -1
                    if index >= 0:
                        targets[index].apply(float(ring.value[slot]))
                elif kind == MIDI and not _push_event(midi, int(ring.a[slot]), int(ring.frame[slot])):
                    break  # the block's events are full: the rest waits for the next block, in order
                tail += 1
            ring.tail = tail
        spill = self._midi.spill
        if spill and ring.tail == ring.head:  # the overflow list, behind everything in the ring
            midi = self.plan.midi
            while spill and _push_event(midi, spill[0][0], spill[0][1]):
                spill.popleft()
        ramping = self._ramping
        if ramping:
            i = 0
            while i < len(ramping):
                if ramping[i].advance():
                    i += 1
                else:
                    ramping.pop(i)

    def process(self) -> np.ndarray:
        """Run one block; returns the output (channels, block_size), overwritten by the next call."""
        switch = self._swap
        if switch is not None:  # a swap prepared by Engine.swap: switch plans at this block boundary
            out = switch.process(self)
        else:
            self.apply_commands()
            timer = self.step_timer
            out = timer.sample() if timer.due() else self.plan.run_block()
        for tap in self._out_taps:
            tap.write(out)
        self.frames_done += self.block_size
        return out

    # ---- offline --------------------------------------------------------------------------------
    def render(
        self,
        seconds: float,
        *,
        midi: str | Path | None = None,
        input: np.ndarray | None = None,
        progress: Callable[[float], None] | None = None,
        on_block: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Render ``seconds`` of audio as fast as the CPU allows: float32 (channels, frames).

        ``midi`` plays a standard MIDI file through the patch (events land on their exact
        frame); ``input`` (channels, frames) feeds the patch's io.input node. ``on_block(b)`` is
        called after block ``b`` ran (to read pinned outputs or queue the next block's events).
        The whole output is held in memory; :meth:`stream` (or :func:`neuralgraph.render_to_file`)
        hands it over block by block instead, for renders of any length.
        """
        total = self._frames(seconds)
        out = np.zeros((self.channels, total), np.float32)
        if midi is None and input is None and on_block is None and progress is None:
            start = 0
            for chunk in self.stream_chunks(seconds):  # many blocks per compiled call where it can
                out[:, start : start + chunk.shape[1]] = chunk
                start += chunk.shape[1]
            return out
        blocks = -(-total // self.block_size)
        report_every = max(1, blocks // 100)
        start = 0
        for b, chunk in enumerate(self.stream(seconds, midi=midi, input=input)):
            n = chunk.shape[1]
            out[:, start : start + n] = chunk
            start += n
            if on_block is not None:
                on_block(b)
            if progress is not None and (b % report_every == 0 or b == blocks - 1):
                progress((b + 1) / blocks)
        return out

    def _frames(self, seconds: float) -> int:
        if not math.isfinite(seconds) or seconds < 0:
            raise ParameterError(f"seconds must be a finite number >= 0, got {seconds!r}")
        return int(round(seconds * self.sample_rate))

    def stream(
        self,
        seconds: float,
        *,
        midi: str | Path | None = None,
        input: np.ndarray | None = None,
    ) -> Iterator[np.ndarray]:
        """Render ``seconds`` block by block: yields (channels, n) views of each output block
        (n = the block size, less for the last one), each overwritten by the next block.
        Memory stays flat however long the render; the MIDI file is read before the first block."""
        total = self._frames(seconds)
        block = self.block_size
        schedule = None
        if midi is not None:
            from neuralgraph._io.midifile import read_midi_events

            schedule = read_midi_events(midi, self.sample_rate)
        next_event = 0
        with self.step_timer.offline():
            for start in range(0, total, block):
                if schedule is not None:
                    frames, messages = schedule
                    end = start + block
                    while next_event < len(frames) and frames[next_event] < end:
                        status, d1, d2 = messages[next_event]
                        self.send_midi(status, d1, d2, frame=frames[next_event] - start)
                        next_event += 1
                if input is not None and self.plan.input is not None:
                    self._feed_input(input, start)
                block_out = self.process()
                yield block_out[:, : min(block, total - start)]

    def stream_chunks(self, seconds: float, *, chunk_frames: int = 8192) -> Iterator[np.ndarray]:
        """Render ``seconds`` as (channels, n) arrays of up to ``chunk_frames`` frames (whole
        blocks; each overwritten by the next): :meth:`stream`'s samples, with less Python per
        block. A plan made only of fused runs renders the blocks between two of the step timer's
        sampled blocks in one compiled call (``_compile/driver.py``) whenever no command, ramp,
        tap or swap is waiting; anything else goes block by block, as :meth:`stream`."""
        total = self._frames(seconds)
        block = self.block_size
        per_chunk = max(1, chunk_frames // block)
        chunk = np.zeros((self.channels, per_chunk * block), np.float32)
        start = 0
        with self.step_timer.offline():
            while start < total:
                filled = 0
                while filled < per_chunk and start + filled * block < total:
                    room = min(per_chunk - filled, (total - start) // block - filled)
                    done = self._run_blocks(chunk[:, filled * block :], room) if room > 1 else 0
                    if done == 0:  # one block the ordinary way
                        chunk[:, filled * block : (filled + 1) * block] = self.process()
                        done = 1
                    filled += done
                n = min(filled * block, total - start)
                yield chunk[:, :n]
                start += n

    def _run_blocks(self, chunk: np.ndarray, room: int) -> int:
        """Offline: up to ``room`` blocks in one compiled call when nothing needs Python between
        them; stops before the step timer's next sampled block. 0 when it cannot."""
        timer = self.step_timer
        count = min(room, timer.countdown - 1)
        ring = self._ring
        if (
            count < 2
            or self._swap is not None
            or self._out_taps
            or self._ramping
            or ring.tail != ring.head
            or self._midi.spill
        ):
            return 0
        done = self.plan.run_blocks(chunk, count)
        timer.countdown -= done
        self.frames_done += done * self.block_size
        return done

    def _feed_input(self, source: np.ndarray, start: int) -> None:
        dst = self.plan.input
        dst.fill(0.0)
        chunk = source[:, start : start + self.block_size]
        lanes = min(dst.shape[0], chunk.shape[0])
        if chunk.shape[0] == 1 and dst.shape[0] > 1:
            dst[:, : chunk.shape[1]] = chunk
        else:
            dst[:lanes, : chunk.shape[1]] = chunk[:lanes]

    def benchmark(self, blocks: int = 500, warmup: int = 20) -> dict[str, float]:
        """Time ``blocks`` blocks: CPU seconds per block and the real-time factor."""
        for _ in range(warmup):
            self.process()
        t0 = time.process_time()
        for _ in range(blocks):
            self.process()
        cpu = (time.process_time() - t0) / blocks
        period = self.block_size / self.sample_rate
        return {"cpu_per_block_s": cpu, "realtime_factor": period / cpu if cpu > 0 else math.inf}


def _push_event(midi: EventBuffer, word: int, frame: int) -> bool:
    """Audio thread: one queued MIDI word into the block's events (controllers merged once they
    are three quarters full); False when it must wait for the next block."""
    return midi.push_or_merge(frame, word & 0xFF, (word >> 8) & 0x7F, (word >> 16) & 0x7F)


def _quiet_float_warnings(modules: set[str]) -> None:
    """No numpy overflow/invalid-value warnings printed from node code (nor the compiler's steps):
    printing is I/O in the audio thread, and the output guard already replaces and reports the
    NaN/Inf those operations make (``bad_values``). Warnings from the user's own code still show."""
    for module in sorted(modules | {"neuralgraph"}):
        warnings.filterwarnings(
            "ignore",
            r"(overflow|invalid value|divide by zero|underflow) encountered",
            RuntimeWarning,
            rf"{re.escape(module)}(\.|$)",
        )


def _hint(text: str | None) -> str:
    return f" ({text})" if text else ""
