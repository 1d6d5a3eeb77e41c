"""Audio backends: the protocol they follow and the callback adapter they all run.

A backend plugin registers a factory through the ``ng_register_backends`` hook::

    @hookimpl
    def ng_register_backends(register):
        register("jack", JackBackend)

``factory(engine, **options)`` returns an object with ``start()``, ``stop()`` and ``status()``
(:class:`Backend`). The device library (sounddevice, JACK-Client) is imported inside ``start``,
so rendering works on machines without PortAudio or libjack; a missing library raises
:class:`~neuralgraph._errors.BackendError` saying what to install.

The audio thread's work is :class:`CallbackAdapter`: it runs ``engine.process()`` and copies the
``(channels, frames)`` block into the device's buffer with ``out=`` copies (no buffer-sized
allocation), never raises (a fault fills the buffer with silence and is counted), counts xruns,
and measures the callback's CPU load as a share of the period.

While a backend plays, :class:`RealtimeGuard` freezes the cyclic GC's existing objects
(``gc.freeze()``) and lowers ``sys.setswitchinterval`` from CPython's 5 ms to
:data:`SWITCH_INTERVAL_S`. Measured here (``research/neural.md``): with a busy second Python
thread and the default 5 ms interval an audio-style thread with a 2.67 ms period missed 68-92 %
of its deadlines, because it waits up to a whole switch interval to get the GIL back; at 0.1-0.5 ms
that fell to 0.5-19 %. Both settings are restored by ``stop()``.

A lower switch interval does not help against a busy second Python thread, such as one compiling
a swap: the scheduler parks it for several milliseconds while it holds the GIL and the
real-time audio thread waits (a priority inversion), and every time the audio thread lets the
GIL go inside a block (each compiled kernel does) that thread takes it for a whole switch
interval. Work done for a live edit while a backend plays (parse, compile, swap) therefore runs
inside :func:`control_priority`: at the lowest real-time priority, on the CPU the audio thread
is pinned to (:meth:`RealtimeGuard.pin_audio_thread`), so it only runs while the audio thread
waits for its next period (docs/live.md has the measurements).
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import attrs
import numpy as np

from neuralgraph._nodes.events import EventBuffer
from neuralgraph._nodes.gcpause import freeze_after_builds

#: The GIL switch interval while playing (seconds); CPython's default is 0.005.
SWITCH_INTERVAL_S = 0.0005
#: SCHED_FIFO priority of a thread doing live-edit work while a backend plays: the lowest
#: real-time priority, below every audio thread (JACK's clients run at 5 and above by default).
CONTROL_PRIORITY = 1
#: Callback load samples kept for the median and 99th percentile.
LOAD_SLOTS = 16384
#: MIDI events a backend can hand to one callback.
MIDI_SLOTS = 4096  # device MIDI messages per period (controllers merge beyond 3/4)


@attrs.frozen(kw_only=True)
class Status:
    """A snapshot of a running backend, for status lines and tests."""

    backend: str
    running: bool
    device: str
    sample_rate: int
    block_size: int
    period: int  #: frames per device callback (may be a multiple of the engine block)
    callbacks: int  #: callbacks run so far
    xruns: int  #: xruns or under/overflows reported by the device or server
    faults: int  #: callbacks that raised inside the adapter and played silence instead
    silent: int  #: callbacks played as silence while a new plan was being built
    load: float  #: CPU time of the last callback as a share of its period (1.0 = the whole period)
    load_p50: float
    load_p99: float
    load_max: float
    active_voices: int  #: voices sounding, summed over midi.voices nodes
    midi_events: int  #: MIDI events received from the device
    message: str = ""  #: why the backend stopped on its own (server shut down), else ""
    midi_dropped: int = 0  #: device MIDI messages that found no room in a period (controllers merged first)

    def line(self) -> str:
        """The one-line summary ``neuralgraph play`` shows."""
        return (
            f"{self.backend} {self.device} {self.sample_rate} Hz/{self.period}: "
            f"cpu {self.load * 100:5.1f}% (p50 {self.load_p50 * 100:4.1f}% p99 {self.load_p99 * 100:4.1f}% "
            f"max {self.load_max * 100:5.1f}%)  xruns {self.xruns}  voices {self.active_voices}"
            + (f"  faults {self.faults}" if self.faults else "")
            + (f"  midi dropped {self.midi_dropped}" if self.midi_dropped else "")
            + (f"  [{self.message}]" if self.message else "")
        )


class Backend(Protocol):
    """What a backend factory returns."""

    def start(self) -> None:
        """Open the device or server connection and start calling the engine."""

    def stop(self) -> None:
        """Stop calling the engine and release the device; safe to call twice."""

    def status(self) -> Status:
        """The current :class:`Status` (control thread)."""


class RealtimeGuard:
    """Interpreter settings for playing: frozen GC generations and a short GIL switch interval.

    ``enter()`` and ``exit()`` nest (two backends playing at once share one setting).
    """

    _depth = 0
    _saved_interval = 0.005
    _lock = threading.Lock()
    _audio_cpu: int | None = None  # the CPU a real-time audio thread is pinned to, while playing

    def __init__(self, switch_interval: float = SWITCH_INTERVAL_S) -> None:
        self.switch_interval = switch_interval
        self._entered = False

    def enter(self) -> None:
        with RealtimeGuard._lock:
            if self._entered:
                return
            self._entered = True
            if RealtimeGuard._depth == 0:
                RealtimeGuard._saved_interval = sys.getswitchinterval()
                gc.collect()
                gc.freeze()  # objects alive now are never scanned again: short GC pauses in the callback
                freeze_after_builds(True)  # and so are those a live edit's build leaves
                sys.setswitchinterval(self.switch_interval)
            RealtimeGuard._depth += 1

    def exit(self) -> None:
        with RealtimeGuard._lock:
            if not self._entered:
                return
            self._entered = False
            RealtimeGuard._depth -= 1
            if RealtimeGuard._depth == 0:
                sys.setswitchinterval(RealtimeGuard._saved_interval)
                freeze_after_builds(False)
                gc.unfreeze()
                RealtimeGuard._audio_cpu = None

    @staticmethod
    def pin_audio_thread(native_id: int) -> None:
        """Pin a real-time audio thread (its ``threading.get_native_id()``, which
        :attr:`CallbackAdapter.audio_thread` records) to one CPU, where :func:`control_priority`
        puts live-edit work: below the audio thread's priority on the same CPU, that work never
        runs while a block does, so it cannot take the GIL the block lets go in each compiled
        kernel. Control thread; a thread at normal priority, or no permission, changes nothing."""
        if not hasattr(os, "sched_setaffinity"):
            return
        try:
            if os.sched_getscheduler(native_id) == os.SCHED_OTHER:
                return
            cpu = max(os.sched_getaffinity(native_id))
            os.sched_setaffinity(native_id, {cpu})
        except OSError:  # gone, or not ours to change
            return
        RealtimeGuard._audio_cpu = cpu


@contextmanager
def control_priority() -> Iterator[None]:
    """While a backend plays, run the block at real-time priority (SCHED_FIFO
    :data:`CONTROL_PRIORITY`) on the audio thread's CPU, then restore the calling thread's
    scheduling and CPUs.

    The audio callback is Python: it needs the GIL, which the thread preparing a swap holds
    nearly all the time it runs. Parked by the scheduler for other processes, that thread kept
    the audio thread waiting for milliseconds (measured: 1 to 4 xruns per 100 swaps of a small
    patch on a busy 2-core machine, none at this priority); and each time a block let the GIL
    go in a compiled kernel it took it for a whole switch interval (10 swaps of a 1000-node
    patch: callbacks up to 8 periods long and about 100 xruns; on the audio thread's CPU, 0.3
    periods). Nothing changes when no backend plays, when the thread already has a policy other
    than the normal one, or without permission (no ``rtprio`` limit, or not Linux).
    """
    boosted = False
    cpus: set[int] | None = None
    before: set[int] = set()
    if RealtimeGuard._depth > 0 and hasattr(os, "sched_setscheduler"):
        try:
            if os.sched_getscheduler(0) == os.SCHED_OTHER:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(CONTROL_PRIORITY))
                boosted = True
        except OSError:  # not permitted here: normal priority
            pass
        before = _threads() if boosted else before
        cpu = RealtimeGuard._audio_cpu
        if boosted and cpu is not None:
            try:
                cpus = os.sched_getaffinity(0)
                os.sched_setaffinity(0, {cpu})
            except OSError:
                cpus = None
    try:
        yield
    finally:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        if boosted:
            _to_normal_priority()
            for native_id in _threads() - before:  # e.g. a model's worker, started by a swap
                _unboost(native_id, cpus)


def _threads() -> set[int]:
    """The native ids of this process's threads (Linux), or none."""
    try:
        return {int(name) for name in os.listdir("/proc/self/task")}
    except OSError:
        return set()


def _unboost(native_id: int, cpus: set[int] | None) -> None:
    """Give a thread started inside :func:`control_priority` (it inherited the real-time
    priority and the audio CPU) the normal priority and the caller's CPUs back."""
    try:
        if os.sched_getscheduler(native_id) != os.SCHED_FIFO:
            return
        if os.sched_getparam(native_id).sched_priority != CONTROL_PRIORITY:
            return  # raised on purpose by its own code
        os.sched_setscheduler(native_id, os.SCHED_OTHER, os.sched_param(0))
        if cpus is not None:
            os.sched_setaffinity(native_id, cpus)
    except OSError:  # ended meanwhile
        pass


def _to_normal_priority() -> None:
    """Put the calling thread back to normal scheduling with the GIL released.

    Demoted, the thread may be parked at once for the processes that waited for its CPU;
    ``os.sched_setscheduler`` keeps the GIL through the call, so the audio thread would wait
    for that as long (measured: xruns in 2 of 6 runs of 100 swaps). A ctypes call lets it go.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        param = ctypes.c_int(0)  # struct sched_param: one int, the priority
        if libc.sched_setscheduler(0, os.SCHED_OTHER, ctypes.byref(param)) == 0:
            return
    except (OSError, AttributeError):  # no C library to call: the os module's call then
        pass
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


class CallbackAdapter:
    """The audio-thread side of every backend: engine blocks into device buffers.

    ``process_planar`` (one array per channel, JACK) and ``process_interleaved`` (one
    ``(frames, channels)`` array, PortAudio) fill the device buffer completely, whatever happens.
    A device period that is a multiple of the engine's block runs several engine blocks; another
    size plays silence until the control thread has built an engine for it
    (:meth:`request_block_size`), which the callback swaps in at a period boundary.
    """

    def __init__(self, engine: Any, clock: Callable[[], float] = time.perf_counter) -> None:
        self.engine = engine
        self.pending: Any = None  # an engine built for a new period, swapped in by the callback
        self.retired: Any = None  # the engine swapped out, released by the control thread
        self.stopping = False
        self.clock = clock
        self.callbacks = 0
        self.xruns = 0
        self.faults = 0
        self.silent = 0
        self.last_error: BaseException | None = None
        self.period = engine.block_size
        self.loads = np.zeros(LOAD_SLOTS, np.float64)
        self.load = 0.0
        self.load_max = 0.0
        self.midi_events = 0
        self.midi_dropped = 0  #: device messages that found no room (after merging controllers)
        self.midi_in = EventBuffer(MIDI_SLOTS)  # this period's device MIDI, frames within the period
        #: the native id of the thread calling back, recorded by its first callback (0 before):
        #: what :meth:`RealtimeGuard.pin_audio_thread` pins
        self.audio_thread = 0
        self._pinned = False

    # ---- audio thread -----------------------------------------------------------------------
    def push_midi(self, frame: int, status: int, data1: int, data2: int) -> None:
        """Queue a device MIDI message at ``frame`` of the coming period (audio thread)."""
        if not self.midi_in.push_or_merge(frame, status, data1, data2):
            self.midi_dropped += 1
        self.midi_events += 1

    def _engine_for(self, frames: int) -> Any:
        pending = self.pending
        if pending is not None and self.retired is None and frames % pending.block_size == 0:
            self.retired = self.engine  # the control thread drops it; never freed here
            self.engine = pending
            self.pending = None
        engine = self.engine
        if frames % engine.block_size:
            return None
        return engine

    def _run_block(self, engine: Any, start: int, end: int) -> np.ndarray:
        events = self.midi_in
        n = events.count
        if n:
            midi = engine.plan.midi
            frame, status, d1, d2 = events.frame, events.status, events.data1, events.data2
            for i in range(n):
                f = int(frame[i])
                if start <= f < end and not midi.push_or_merge(f - start, int(status[i]), int(d1[i]), int(d2[i])):
                    self.midi_dropped += 1
        return engine.process()

    def _finish(self, t0: float, frames: int, sample_rate: int) -> None:
        if frames == 0:  # a 0-frame callback ran no block: no time passed, no load to measure
            self.callbacks += 1
            return
        load = (self.clock() - t0) * sample_rate / frames
        self.load = load
        if load > self.load_max:
            self.load_max = load
        self.loads[self.callbacks % LOAD_SLOTS] = load
        self.callbacks += 1
        self.midi_in.clear()
        self.period = frames

    def process_planar(self, outs: Sequence[np.ndarray], frames: int, ins: Sequence[np.ndarray] | None = None) -> None:
        """Fill ``outs`` (one ``(frames,)`` float32 array per device channel). Never raises."""
        self._fill(outs, ins, frames, True)

    def process_interleaved(self, outdata: np.ndarray, frames: int, indata: np.ndarray | None = None) -> None:
        """Fill ``outdata`` (``(frames, channels)`` float32). Never raises."""
        self._fill(outdata, indata, frames, False)

    def _fill(self, device: Any, inputs: Any, frames: int, planar: bool) -> None:
        """One device callback in either layout: engine blocks into ``device``, or silence."""
        t0 = self.clock()
        engine = self.engine
        if not self.audio_thread:
            self.audio_thread = threading.get_native_id()
        try:
            engine = None if self.stopping else self._engine_for(frames)
            if engine is None:
                _silence(device, planar)
                if not self.stopping:
                    self.silent += 1
            else:
                block = engine.block_size
                for start in range(0, frames, block):
                    end = start + block
                    dst = engine.plan.input
                    if inputs is not None and dst is not None:
                        _read_planar(inputs, dst, start, end) if planar else _read_interleaved(inputs, dst, start, end)
                    out = self._run_block(engine, start, end)
                    _write_planar(device, out, start, end) if planar else _write_interleaved(device, out, start, end)
        except BaseException as exc:  # never let the device stop calling us: play silence, count it
            self.faults += 1
            self.last_error = exc
            _silence(device, planar)
        self._finish(t0, frames, engine.sample_rate if engine is not None else self.engine.sample_rate)

    # ---- control thread ---------------------------------------------------------------------
    def request_block_size(self, frames: int) -> None:
        """Build an engine for a ``frames``-frame period and hand it to the callback (control thread)."""
        self.collect()
        current = self.pending or self.engine
        if current.block_size == frames:
            return
        self.pending = warm_up(current.rebuilt(block_size=frames))

    def collect(self) -> None:
        """Release the engine the callback swapped out (control thread)."""
        if self.retired is not None:
            self.retired = None

    def tend(self) -> None:
        """What a backend's control thread does a few times a second while it plays: release an
        engine the callback swapped out, and pin the audio thread once its first callback has
        named it (:meth:`RealtimeGuard.pin_audio_thread`), so that live edits run beside it."""
        self.collect()
        if self.audio_thread and not self._pinned:
            RealtimeGuard.pin_audio_thread(self.audio_thread)
            self._pinned = True

    def active_voices(self) -> int:
        """Voices sounding now: the lanes flagged by the plan's lane sources (``Node.lane_activity``)."""
        flags = (node.lane_activity() for node in self.engine.plan.nodes.values())
        return sum(int(np.count_nonzero(f)) for f in flags if f is not None)

    def load_stats(self) -> tuple[float, float]:
        """Median and 99th percentile of the callback load over the last callbacks."""
        n = min(self.callbacks, LOAD_SLOTS)
        if n == 0:
            return 0.0, 0.0
        p50, p99 = np.percentile(self.loads[:n], [50.0, 99.0])
        return float(p50), float(p99)

    def status(
        self, *, backend: str, running: bool, device: str, message: str = "", xruns: int | None = None
    ) -> Status:
        p50, p99 = self.load_stats()
        engine = self.engine
        return Status(
            backend=backend,
            running=running,
            device=device,
            sample_rate=int(engine.sample_rate),
            block_size=int(engine.block_size),
            period=int(self.period),
            callbacks=self.callbacks,
            xruns=self.xruns if xruns is None else xruns,
            faults=self.faults,
            silent=self.silent,
            load=self.load,
            load_p50=p50,
            load_p99=p99,
            load_max=self.load_max,
            active_voices=self.active_voices(),
            midi_events=self.midi_events,
            message=message,
            midi_dropped=self.midi_dropped,
        )


def _silence(device: Any, planar: bool) -> None:
    if planar:
        for buf in device:
            buf.fill(0.0)
    else:
        device.fill(0.0)


def _read_planar(ins: Sequence[np.ndarray], dst: np.ndarray, start: int, end: int) -> None:
    for c in range(min(len(ins), dst.shape[0])):
        np.copyto(dst[c], ins[c][start:end])


def _read_interleaved(indata: np.ndarray, dst: np.ndarray, start: int, end: int) -> None:
    n_in = min(indata.shape[1], dst.shape[0])
    np.copyto(dst[:n_in], indata[start:end, :n_in].T)


def _write_planar(outs: Sequence[np.ndarray], out: np.ndarray, start: int, end: int) -> None:
    """Engine channels to device channels; one engine channel feeds them all, extra ones are silent."""
    channels = out.shape[0]
    for c in range(len(outs)):
        if c < channels:
            np.copyto(outs[c][start:end], out[c])
        elif channels == 1:
            np.copyto(outs[c][start:end], out[0])
        else:
            outs[c][start:end].fill(0.0)


def _write_interleaved(outdata: np.ndarray, out: np.ndarray, start: int, end: int) -> None:
    """As :func:`_write_planar`, into ``(frames, channels)``."""
    channels, width = out.shape[0], outdata.shape[1]
    if channels == width or channels == 1:
        np.copyto(outdata[start:end], out.T)
    else:
        n = min(channels, width)
        np.copyto(outdata[start:end, :n], out[:n].T)
        if width > n:
            outdata[start:end, n:].fill(0.0)


def warm_up(engine: Any, blocks: int = 3) -> Any:
    """Run a few blocks and reset (control thread), so first-call costs (numba's compiled-code
    loading, lazy imports, first-touch page faults) are paid before the device calls back.
    Taps see none of these blocks: they are never played."""
    with engine.taps_muted():
        for _ in range(blocks):
            engine.process()
    engine.reset()
    return engine


def open_backend(name: str, engine: Any, registry: Any = None, **options: Any) -> Backend:
    """The backend ``name`` from the plugin registry, made for ``engine`` (not started yet)."""
    from neuralgraph._errors import UnknownBackendError, did_you_mean
    from neuralgraph._plugins.registry import default_registry

    registry = registry or default_registry()
    if name not in registry.backends:
        hint = did_you_mean(name, registry.backends) or ""
        have = ", ".join(sorted(registry.backends)) or "none installed"
        raise UnknownBackendError(
            f"no audio backend {name!r} (available: {have})" + (f"; {hint}" if hint.startswith("did you mean") else "")
        )
    return registry.backend(name)(engine, **options)


def backend_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Backend keyword options from ``config.load_settings()`` (device)."""
    return {"device": settings["device"]} if settings.get("device") else {}
