"""Checks against a real JACK server, each run in its own process by tests/test_jack.py and
tests/test_sounddevice.py (a JACK client can deadlock Python at exit; the parent kills it on a timeout).

    python tests/audio_checks.py CHECK '{"json": "args"}'

Prints one JSON line with the measurements; the tests assert on them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("JACK_NO_START_SERVER", "1")

from analysis import peak_frequency  # noqa: E402

import neuralgraph as ng  # noqa: E402

SINE = {
    "schema": 1,
    "nodes": {
        "osc": {"type": "osc.sine", "freq": 1000.0},
        "amp": {"type": "math.mul", "in": "osc", "gain": 0.5},
        "out": {"type": "io.output", "channels": 2, "in": "amp"},
    },
}

GATE = {
    "schema": 1,
    "nodes": {
        "keys": {"type": "midi.voices", "count": 1},
        "out": {"type": "io.output", "channels": 1, "in": "keys.gate"},
    },
}


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    """Poll ``predicate`` every few milliseconds until it holds; fail after ``timeout`` seconds.
    Tests synchronise on what happened, never on how long it usually takes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(0.002)


class IdleClient:
    """A JACK client that does nothing but count xruns (incidents 1 ms apart, as the backend does)
    and processed frames: the machine's own xrun rate, measured in the same run as the engine's."""

    def __init__(self, jack: Any, name: str = "ng_idle") -> None:
        self.client = jack.Client(name, no_start_server=True)
        self.xruns = 0
        self.frames = 0
        self._last = 0.0
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._xrun)
        self.client.activate()

    def _process(self, frames: int) -> None:
        self.frames += frames

    def _xrun(self, delayed_usecs: float) -> None:
        now = time.monotonic()
        if now - self._last > 0.001:
            self.xruns += 1
        self._last = now

    def run_for(self, seconds: float) -> int:
        """Let ``seconds`` of audio frames pass (counted by its callback); the xruns meanwhile."""
        start, xruns = self.frames, self.xruns
        wait_until(
            lambda: self.frames - start >= seconds * self.client.samplerate,
            10 + 4 * seconds,
            "the idle client's frames",
        )
        return self.xruns - xruns

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


class Recorder:
    """A second JACK client recording its audio inputs, each period stamped with its absolute frame."""

    def __init__(self, jack: Any, name: str, channels: int, seconds: float) -> None:
        self.client = jack.Client(name, no_start_server=True)
        self.ports = [self.client.inports.register(f"in_{i + 1}") for i in range(channels)]
        rate = self.client.samplerate
        self.data = np.zeros((channels, int(seconds * rate) + 8192), np.float32)
        self.frame_at = np.zeros(self.data.shape[1], np.int64)  # absolute JACK frame of each sample
        self.pos = 0
        self.recording = False
        self.stopping = False
        self.cycles = 0  # callbacks run: close() waits for one that saw `stopping`
        self.heard = False  # a non-zero sample arrived (the connection is live)
        self.client.set_process_callback(self._process)

    def _process(self, frames: int) -> None:
        self.cycles += 1
        if self.stopping:
            return
        if not self.heard:
            self.heard = any(port.get_array().any() for port in self.ports)
        if not self.recording:
            return
        pos = self.pos
        if pos + frames > self.data.shape[1]:
            self.recording = False
            return
        for c, port in enumerate(self.ports):
            self.data[c, pos : pos + frames] = port.get_array()
        self.frame_at[pos : pos + frames] = np.arange(frames) + self.client.last_frame_time
        self.pos = pos + frames

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data[:, : self.pos], self.frame_at[: self.pos]

    def record(self, seconds: float) -> None:
        """Start recording once signal arrives, and return when ``seconds`` of it are recorded."""
        wait_until(lambda: self.heard, 10.0, "signal at the recorder")
        start = self.pos
        self.recording = True
        self.wait_frames(start + int(seconds * self.client.samplerate))

    def wait_frames(self, count: int) -> None:
        wait_until(
            lambda: self.pos >= count or not self.recording,
            10.0 + count / self.client.samplerate,
            f"{count} recorded frames",
        )
        if self.pos < count:
            raise RuntimeError(f"recording stopped at {self.pos} of {count} frames (buffer full)")

    def close(self) -> None:
        self.stopping = True
        seen = self.cycles
        try:  # a callback that saw the flag has run before jack2 cancels the thread
            wait_until(lambda: self.cycles > seen + 1, 2.0, "a recorder callback after stopping")
        except TimeoutError:
            pass  # the server stopped calling us: nothing can be running
        self.client.deactivate()
        self.client.close()


def glitches(x: np.ndarray, freq: float, amp: float, rate: int) -> int:
    """Discontinuities anywhere in a recorded sine: jumps steeper than the sine itself can make."""
    limit = 1.5 * 2 * np.pi * freq / rate * amp
    return int(np.count_nonzero(np.abs(np.diff(x)) > limit))


def check_jack_sine(args: dict[str, Any]) -> dict[str, Any]:
    import jack

    engine = ng.Engine(ng.load_patch(SINE), block_size=args.get("block", 256))
    seconds = args["seconds"]
    idle = IdleClient(jack)
    idle_alone = idle.run_for(seconds)  # the machine's own xruns, before the engine runs
    backend = ng.open_backend("jack", engine, client_name="ng_sine", connect=False)
    # room for the engine swap's wait too (up to 10 s: a rebuild on a cold cache compiles kernels)
    rec = Recorder(jack, "ng_rec", 2, seconds + 11.0)
    backend.start()
    rec.client.activate()
    for port, dest in zip(backend.port_names(), [p.name for p in rec.ports]):
        rec.client.connect(port, dest)
    idle_xruns, engine_xruns = idle.xruns, backend.status().xruns
    changed_to, change_at = None, None
    if args.get("change_block"):
        rec.record(seconds / 2)
        old = rec.client.blocksize
        rec.client.blocksize = args["change_block"]
        wait_until(lambda: backend.engine.block_size == args["change_block"], 10.0, "the engine swap")
        change_at = rec.pos  # everything recorded from here on comes from the rebuilt engine
        rec.wait_frames(change_at + int(seconds / 2 * engine.sample_rate))
        changed_to = backend.engine.block_size
        rec.recording = False
        rec.client.blocksize = old
    else:
        rec.record(seconds)
    rec.recording = False
    idle_xruns = idle.xruns - idle_xruns
    status = backend.status()
    engine_xruns = status.xruns - engine_xruns  # while recording, as the idle client's
    backend.stop()
    rec.close()
    idle.close()
    data, _ = rec.take()
    rate = engine.sample_rate
    tail = data[0, change_at if change_at is not None else len(data[0]) // 2 :]
    return {
        "frames": int(data.shape[1]),
        "freq": peak_frequency(data[0], rate),
        "freq_second_half": peak_frequency(tail, rate),
        "frames_after_change": int(len(tail)),
        "peak": float(np.abs(data).max()),
        "rms": float(np.sqrt(np.mean(data[0].astype(np.float64) ** 2))),
        "channels_equal": bool(np.array_equal(data[0], data[1])),
        "glitches": glitches(data[0], 1000.0, 0.5, rate),
        "xruns": engine_xruns,
        "idle_xruns": idle_xruns,
        "idle_xruns_alone": idle_alone,
        "callbacks": status.callbacks,
        "faults": status.faults,
        "silent": status.silent,
        "load_p50": status.load_p50,
        "load_p99": status.load_p99,
        "ports": backend.port_names(),
        "block_after_change": changed_to,
        "block_at_end": backend.engine.block_size,
    }


def check_jack_midi(args: dict[str, Any]) -> dict[str, Any]:
    """A sender client writes note on/off at chosen offsets; the recorded gate must move on those frames."""
    import jack

    engine = ng.Engine(ng.load_patch(GATE), block_size=256)
    sender = jack.Client("ng_midi_send", no_start_server=True)
    period = sender.blocksize  # offsets spread over the whole period, first and last frame included
    plan = [
        (0, period * 3 // 10, bytes([0x90, 60, 100])),
        (3, period * 8 // 10, bytes([0x80, 60, 0])),
        (6, 0, bytes([0x91, 64, 90])),
        (9, period - 1, bytes([0x81, 64, 0])),
        (12, period // 2, bytes([0x90, 67, 1])),
    ]
    out = sender.midi_outports.register("out")
    state = {"cycle": -1, "sent": [], "stopping": False}

    def send(frames: int) -> None:
        out.clear_buffer()
        if state["stopping"] or state["cycle"] < 0:
            return
        cycle = state["cycle"]
        for when, offset, msg in plan:
            if when == cycle:
                out.write_midi_event(offset, msg)
                state["sent"].append((int(sender.last_frame_time + offset), msg[0] & 0xF0))
        state["cycle"] = cycle + 1

    sender.set_process_callback(send)
    sender.activate()
    rec = Recorder(jack, "ng_gate_rec", 1, 1.0)
    # the backend connects the sender's port itself (play --midi-in), by glob
    backend = ng.open_backend("jack", engine, client_name="ng_keys", connect=False, midi_in="ng_midi_*:out")
    backend.start()
    rec.client.activate()
    rec.client.connect(backend.port_names()[0], rec.ports[0].name)
    wait_until(lambda: backend.status().callbacks > 2, 10.0, "the backend's first callbacks")
    rec.recording = True
    rec.wait_frames(2 * period)
    state["cycle"] = 0
    wait_until(lambda: state["cycle"] > 14, 10.0, "the sender's 15 cycles")  # the plan ends at cycle 12
    rec.wait_frames(rec.pos + 2 * period)
    rec.recording = False
    status = backend.status()
    midi_sources = [p.name for p in rec.client.get_all_connections(f"{backend.client.name}:midi_in")]
    state["stopping"] = True
    backend.stop()
    sender.deactivate()
    sender.close()
    rec.close()
    data, frame_at = rec.take()
    gate = data[0] > 0.5
    change = np.flatnonzero(gate[1:] != gate[:-1]) + 1
    edges = [(int(frame_at[i]), 0x90 if gate[i] else 0x80) for i in change]
    return {
        "sent": state["sent"],
        "edges": edges,
        "xruns": status.xruns,
        "midi_events": status.midi_events,
        "period": status.period,
        "midi_sources": midi_sources,
    }


def check_sounddevice_jack(args: dict[str, Any]) -> dict[str, Any]:
    """The sounddevice backend on PortAudio's JACK host API, recorded by a JACK client."""
    import jack
    import sounddevice as sd

    devices = [
        i
        for i, d in enumerate(sd.query_devices())
        if sd.query_hostapis(d["hostapi"])["name"] == "JACK Audio Connection Kit" and d["max_output_channels"]
    ]
    if not devices:
        return {"error": "PortAudio lists no JACK output device (was jackd started after this process?)"}
    engine = ng.Engine(ng.load_patch(SINE), block_size=256)
    backend = ng.open_backend("sounddevice", engine, device=devices[0])
    rec = Recorder(jack, "ng_sd_rec", 2, args["seconds"] + 1.0)
    rec.client.activate()
    others = {p.name for p in rec.client.get_ports("PortAudio.*", is_audio=True, is_output=True)}
    backend.start()  # the shared server may hold other PortAudio clients (PortAudio-01, ...): ours is new
    sources = [
        p.name for p in rec.client.get_ports("PortAudio.*", is_audio=True, is_output=True) if p.name not in others
    ]
    for src, port in zip(sources, rec.ports):
        rec.client.connect(src, port)
    idle = IdleClient(jack, "ng_sd_idle")
    idle_xruns, engine_xruns = idle.xruns, backend.status().xruns
    rec.record(args["seconds"])
    rec.recording = False
    idle_xruns = idle.xruns - idle_xruns
    status = backend.status()
    engine_xruns = status.xruns - engine_xruns
    audio_thread = backend.adapter.audio_thread  # PortAudio's callback thread, pinned by the backend
    realtime = os.sched_getscheduler(audio_thread) != os.SCHED_OTHER
    audio_cpus = len(os.sched_getaffinity(audio_thread))
    backend.stop()
    rec.close()
    idle.close()
    data, _ = rec.take()
    return {
        "realtime": realtime,
        "audio_cpus": audio_cpus,
        "device": status.device,
        "sources": sources,
        "frames": int(data.shape[1]),
        "freq": peak_frequency(data[0], engine.sample_rate) if data.shape[1] else 0.0,
        "peak": float(np.abs(data).max()) if data.size else 0.0,
        "glitches": glitches(data[0], 1000.0, 0.5, engine.sample_rate),
        "idle_xruns": idle_xruns,
        "xruns": engine_xruns,
        "callbacks": status.callbacks,
        "period": status.period,
        "faults": status.faults,
    }


def check_jack_thru(args: dict[str, Any]) -> dict[str, Any]:
    """io.input fed by a JACK client playing a 500 Hz sine into the backend's in_1, recorded after out_1."""
    import jack

    thru = {
        "schema": 1,
        "nodes": {"in": {"type": "io.input", "channels": 1}, "out": {"type": "io.output", "channels": 1, "in": "in"}},
    }
    engine = ng.Engine(ng.load_patch(thru), block_size=256)
    player = jack.Client("ng_player", no_start_server=True)
    port = player.outports.register("out")
    rate = player.samplerate
    phase = [0]

    def play(frames: int) -> None:
        n = np.arange(phase[0], phase[0] + frames)
        port.get_array()[:] = 0.5 * np.sin(2 * np.pi * 500.0 * n / rate)
        phase[0] += frames

    player.set_process_callback(play)
    backend = ng.open_backend("jack", engine, client_name="ng_thru", connect=False)
    rec = Recorder(jack, "ng_thru_rec", 1, 1.5)
    backend.start()
    player.activate()
    rec.client.activate()
    player.connect(port, "ng_thru:in_1")
    rec.client.connect("ng_thru:out_1", rec.ports[0].name)
    idle = IdleClient(jack, "ng_thru_idle")
    idle_xruns, engine_xruns = idle.xruns, backend.status().xruns
    rec.record(args.get("seconds", 1.0))
    rec.recording = False
    idle_xruns = idle.xruns - idle_xruns
    status = backend.status()
    engine_xruns = status.xruns - engine_xruns
    backend.stop()
    player.deactivate()
    player.close()
    rec.close()
    idle.close()
    data, _ = rec.take()
    return {
        "frames": int(data.shape[1]),
        "freq": peak_frequency(data[0], rate),
        "peak": float(np.abs(data).max()),
        "glitches": glitches(data[0], 500.0, 0.5, rate),
        "xruns": engine_xruns,
        "idle_xruns": idle_xruns,
        "faults": status.faults,
    }


def check_jack_node_raises(args: dict[str, Any]) -> dict[str, Any]:
    """A node raising ``args["kind"]`` (SystemExit, KeyboardInterrupt, ...) in JACK's process thread."""
    import jack
    import testnodes

    registry = ng.Registry.load(plugins={"testnodes": testnodes})
    patch = ng.load_patch(
        {
            "schema": 1,
            "nodes": {
                "osc": {"type": "osc.sine", "freq": 1000.0},
                "bad": {"type": "test.raiser", "after": 20, "kind": args["kind"], "in": "osc"},
                "amp": {"type": "math.mul", "in": "osc", "gain": 0.5},
                "sum": {"type": "math.add", "a": "amp", "b": "bad"},
                "out": {"type": "io.output", "channels": 1, "in": "sum"},
            },
        },
        registry=registry,
    )
    engine = ng.Engine(patch, block_size=256)
    backend = ng.open_backend("jack", engine, client_name="ng_raise", connect=False)
    rec = Recorder(jack, "ng_rec_raise", 1, 2.0)
    backend.start()
    rec.client.activate()
    rec.client.connect(backend.port_names()[0], rec.ports[0].name)
    time.sleep(0.3)  # the node raises in its 21st block, about 0.1 s in
    rec.recording = True
    first = backend.status().callbacks
    time.sleep(0.5)
    rec.recording = False
    status = backend.status()
    faults = backend.engine.faults()
    backend.stop()
    rec.close()
    data, _ = rec.take()
    return {
        "callbacks_while_recording": status.callbacks - first,
        "running": status.running,
        "message": status.message,
        "faults": [[f.node, type(f.error).__name__] for f in faults],
        "freq": peak_frequency(data[0], engine.sample_rate),
        "peak": float(np.abs(data).max()),
    }


def check_jack_slow_node(args: dict[str, Any]) -> dict[str, Any]:
    """A node sleeping 20 ms per 5.3 ms period in JACK's process thread: is it named?"""
    import testnodes

    registry = ng.Registry.load(plugins={"testnodes": testnodes})
    patch = ng.load_patch(
        {
            "schema": 1,
            "nodes": {
                "osc": {"type": "osc.sine", "freq": 1000.0},
                "slow": {"type": "test.sleeper", "ms": 20.0, "in": "osc"},
                "out": {"type": "io.output", "channels": 1, "in": "slow"},
            },
        },
        registry=registry,
    )
    engine = ng.Engine(patch, block_size=256)
    backend = ng.open_backend("jack", engine, client_name="ng_slow", connect=False)
    backend.start()
    time.sleep(2.0)
    status = backend.status()
    slow = backend.engine.slow_steps()
    backend.stop()
    return {
        "slow": [[s.name, s.worst_ms, s.budget_ms] for s in slow],
        "callbacks": status.callbacks,
        "xruns": status.xruns,
    }


def check_jack_range_notice(args: dict[str, Any]) -> dict[str, Any]:
    """The neural violin on JACK gets G2 twice and E7 once from a MIDI sender; the control thread
    polls ``Engine.notices()`` while it plays (what ``neuralgraph play`` prints)."""
    import jack

    engine = ng.Engine(
        ng.load_patch(Path(__file__).resolve().parent.parent / "graphs" / "neural_violin.toml"), block_size=256
    )
    sender = jack.Client("ng_midi_low", no_start_server=True)
    plan = {
        0: bytes([0x90, 43, 100]),
        10: bytes([0x80, 43, 0]),
        20: bytes([0x90, 43, 100]),
        30: bytes([0x80, 43, 0]),
        40: bytes([0x90, 100, 100]),
        50: bytes([0x80, 100, 0]),
    }
    out = sender.midi_outports.register("out")
    state = {"cycle": -1}

    def send(frames: int) -> None:
        out.clear_buffer()
        if state["cycle"] < 0:
            return
        if state["cycle"] in plan:
            out.write_midi_event(0, plan[state["cycle"]])
        state["cycle"] += 1

    sender.set_process_callback(send)
    sender.activate()
    backend = ng.open_backend("jack", engine, client_name="ng_range", connect=False, midi_in="ng_midi_low:out")
    backend.start()
    wait_until(lambda: backend.status().callbacks > 2, 10.0, "the backend's first callbacks")
    state["cycle"] = 0
    notices: list[list[str]] = []
    deadline = time.monotonic() + 10.0
    while state["cycle"] < 70 and time.monotonic() < deadline:
        notices += [[n.node, n.text] for n in backend.engine.notices()]
        time.sleep(0.02)
    time.sleep(0.1)
    notices += [[n.node, n.text] for n in backend.engine.notices()]
    status = backend.status()
    backend.stop()
    sender.deactivate()
    sender.close()
    return {"notices": notices, "midi_events": status.midi_events, "cycles": state["cycle"]}


CHECKS = {
    "jack_slow_node": check_jack_slow_node,
    "jack_range_notice": check_jack_range_notice,
    "jack_node_raises": check_jack_node_raises,
    "jack_thru": check_jack_thru,
    "jack_sine": check_jack_sine,
    "jack_midi": check_jack_midi,
    "sounddevice_jack": check_sounddevice_jack,
}

if __name__ == "__main__":
    result = CHECKS[sys.argv[1]](json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
    print(json.dumps(result), flush=True)
    os._exit(0)  # skip interpreter teardown: PortAudio/JACK atexit handlers are where hangs live
