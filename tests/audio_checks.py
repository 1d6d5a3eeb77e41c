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

SINE = {"schema": 1, "nodes": {
    "osc": {"type": "osc.sine", "freq": 1000.0},
    "amp": {"type": "math.mul", "in": "osc", "gain": 0.5},
    "out": {"type": "io.output", "channels": 2, "in": "amp"}}}

GATE = {"schema": 1, "nodes": {
    "keys": {"type": "midi.voices", "count": 1},
    "out": {"type": "io.output", "channels": 1, "in": "keys.gate"}}}


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
        self.client.set_process_callback(self._process)

    def _process(self, frames: int) -> None:
        if self.stopping or not self.recording:
            return
        pos = self.pos
        if pos + frames > self.data.shape[1]:
            self.recording = False
            return
        for c, port in enumerate(self.ports):
            self.data[c, pos:pos + frames] = port.get_array()
        self.frame_at[pos:pos + frames] = np.arange(frames) + self.client.last_frame_time
        self.pos = pos + frames

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data[:, :self.pos], self.frame_at[:self.pos]

    def close(self) -> None:
        self.stopping = True
        time.sleep(0.05)  # let a running callback see the flag before jack2 cancels the thread
        self.client.deactivate()
        self.client.close()


def clean_runs(x: np.ndarray, freq: float, amp: float, rate: int) -> tuple[int, float]:
    """Glitches (jumps steeper than the sine can make) and the longest run without one, in seconds."""
    limit = 1.5 * 2 * np.pi * freq / rate * amp
    jumps = np.flatnonzero(np.abs(np.diff(x)) > limit)
    edges = np.concatenate([[0], jumps + 1, [len(x)]])
    return int(len(jumps)), float(np.max(np.diff(edges)) / rate)


def check_jack_sine(args: dict[str, Any]) -> dict[str, Any]:
    import jack

    engine = ng.Engine(ng.load_patch(SINE), block_size=args.get("block", 256))
    backend = ng.open_backend("jack", engine, client_name="ng_sine", connect=False)
    rec = Recorder(jack, "ng_rec", 2, args["seconds"] + 1.0)
    backend.start()
    rec.client.activate()
    for port, dest in zip(backend.port_names(), [p.name for p in rec.ports]):
        rec.client.connect(port, dest)
    time.sleep(0.2)
    rec.recording = True
    changed_to = None
    if args.get("change_block"):
        time.sleep(args["seconds"] / 2)
        old = rec.client.blocksize
        rec.client.blocksize = args["change_block"]
        time.sleep(args["seconds"] / 2)
        changed_to = backend.engine.block_size
        rec.client.blocksize = old
        time.sleep(0.2)
    else:
        time.sleep(args["seconds"])
    rec.recording = False
    status = backend.status()
    backend.stop()
    rec.close()
    data, _ = rec.take()
    rate = engine.sample_rate
    tail = data[0, len(data[0]) // 2:]
    glitches, longest = clean_runs(data[0], 1000.0, 0.5, rate)
    return {"frames": int(data.shape[1]), "freq": peak_frequency(data[0], rate),
            "freq_second_half": peak_frequency(tail, rate),
            "peak": float(np.abs(data).max()), "rms": float(np.sqrt(np.mean(data[0].astype(np.float64) ** 2))),
            "channels_equal": bool(np.array_equal(data[0], data[1])), "glitches": glitches, "longest_clean_s": longest,
            "xruns": status.xruns, "callbacks": status.callbacks, "faults": status.faults, "silent": status.silent,
            "load_p50": status.load_p50, "load_p99": status.load_p99, "ports": backend.port_names(),
            "block_after_change": changed_to, "block_at_end": backend.engine.block_size}


def check_jack_midi(args: dict[str, Any]) -> dict[str, Any]:
    """A sender client writes note on/off at chosen offsets; the recorded gate must move on those frames."""
    import jack

    engine = ng.Engine(ng.load_patch(GATE), block_size=256)
    sender = jack.Client("ng_midi_send", no_start_server=True)
    period = sender.blocksize  # offsets spread over the whole period, first and last frame included
    plan = [(0, period * 3 // 10, bytes([0x90, 60, 100])), (3, period * 8 // 10, bytes([0x80, 60, 0])),
            (6, 0, bytes([0x91, 64, 90])), (9, period - 1, bytes([0x81, 64, 0])), (12, period // 2, bytes([0x90, 67, 1]))]
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
    time.sleep(0.2)
    rec.recording = True
    time.sleep(0.05)
    state["cycle"] = 0
    time.sleep(0.4)
    rec.recording = False
    status = backend.status()
    midi_sources = [p.name for p in rec.client.get_all_connections(f"{backend.client.name}:midi_in")]
    state["stopping"] = True
    backend.stop()
    time.sleep(0.05)
    sender.deactivate()
    sender.close()
    rec.close()
    data, frame_at = rec.take()
    gate = data[0] > 0.5
    change = np.flatnonzero(gate[1:] != gate[:-1]) + 1
    edges = [(int(frame_at[i]), 0x90 if gate[i] else 0x80) for i in change]
    return {"sent": state["sent"], "edges": edges, "xruns": status.xruns, "midi_events": status.midi_events,
            "period": status.period, "midi_sources": midi_sources}


def check_sounddevice_jack(args: dict[str, Any]) -> dict[str, Any]:
    """The sounddevice backend on PortAudio's JACK host API, recorded by a JACK client."""
    import jack
    import sounddevice as sd

    devices = [i for i, d in enumerate(sd.query_devices())
               if sd.query_hostapis(d["hostapi"])["name"] == "JACK Audio Connection Kit" and d["max_output_channels"]]
    if not devices:
        return {"error": "PortAudio lists no JACK output device (was jackd started after this process?)"}
    engine = ng.Engine(ng.load_patch(SINE), block_size=256)
    backend = ng.open_backend("sounddevice", engine, device=devices[0])
    rec = Recorder(jack, "ng_sd_rec", 2, args["seconds"] + 1.0)
    rec.client.activate()
    backend.start()
    sources = [p.name for p in rec.client.get_ports("PortAudio.*", is_audio=True, is_output=True)]
    for src, port in zip(sources, rec.ports):
        rec.client.connect(src, port)
    time.sleep(0.3)
    rec.recording = True
    time.sleep(args["seconds"])
    rec.recording = False
    status = backend.status()
    backend.stop()
    rec.close()
    data, _ = rec.take()
    glitches, longest = clean_runs(data[0], 1000.0, 0.5, engine.sample_rate)
    return {"device": status.device, "sources": sources, "frames": int(data.shape[1]),
            "freq": peak_frequency(data[0], engine.sample_rate) if data.shape[1] else 0.0,
            "peak": float(np.abs(data).max()) if data.size else 0.0, "glitches": glitches, "longest_clean_s": longest,
            "xruns": status.xruns, "callbacks": status.callbacks, "period": status.period, "faults": status.faults}


def check_jack_thru(args: dict[str, Any]) -> dict[str, Any]:
    """io.input fed by a JACK client playing a 500 Hz sine into the backend's in_1, recorded after out_1."""
    import jack

    thru = {"schema": 1, "nodes": {"in": {"type": "io.input", "channels": 1},
                                   "out": {"type": "io.output", "channels": 1, "in": "in"}}}
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
    time.sleep(0.2)
    rec.recording = True
    time.sleep(args.get("seconds", 1.0))
    rec.recording = False
    status = backend.status()
    backend.stop()
    player.deactivate()
    player.close()
    rec.close()
    data, _ = rec.take()
    glitches, longest = clean_runs(data[0], 500.0, 0.5, rate)
    return {"frames": int(data.shape[1]), "freq": peak_frequency(data[0], rate), "peak": float(np.abs(data).max()),
            "glitches": glitches, "longest_clean_s": longest, "xruns": status.xruns, "faults": status.faults}


CHECKS = {"jack_thru": check_jack_thru, "jack_sine": check_jack_sine, "jack_midi": check_jack_midi, "sounddevice_jack": check_sounddevice_jack}

if __name__ == "__main__":
    result = CHECKS[sys.argv[1]](json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
    print(json.dumps(result), flush=True)
    os._exit(0)  # skip interpreter teardown: PortAudio/JACK atexit handlers are where hangs live
