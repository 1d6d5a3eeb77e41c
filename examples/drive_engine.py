"""Drive an engine from Python: play notes with ``note_on``/``note_off`` and sweep a filter with ``set``.

    python examples/drive_engine.py -o arpeggio.wav              # offline: no sound card needed
    python examples/drive_engine.py --backend jack               # the same calls, played live

Offline, the script calls ``engine.process()`` block by block and collects the output, so it
runs anywhere and the result is exactly repeatable. With ``--backend`` the audio thread calls
``process()`` instead and this script only sends notes and settings from the main thread, which
is how an application, a sequencer or a GUI drives a playing engine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

import neuralgraph as ng

#: An A minor arpeggio, MIDI note numbers (A3 C4 E4 A4).
NOTES = (57, 60, 64, 69)

PATCH: dict[str, Any] = {
    "schema": 1,
    "name": "Driven poly saw",
    "nodes": {
        "keys": {"type": "midi.voices", "count": 4, "tail_ms": 80.0},
        "osc": {"type": "osc.saw", "freq": "keys.freq"},
        "env": {
            "type": "env.adsr",
            "gate": "keys.gate",
            "attack_ms": 5.0,
            "decay_ms": 80.0,
            "sustain": 0.7,
            "release_ms": 60.0,
        },
        "vca": {"type": "math.mul", "in": "osc", "gain": "env"},
        "mix": {"type": "voices.sum", "in": "vca"},
        "lpf": {"type": "filter.lowpass", "in": "mix", "cutoff": 300.0, "q": 1.2},
        "level": {"type": "math.mul", "in": "lpf", "gain": 0.4},
        "out": {"type": "io.output", "channels": 2, "in": "level"},
    },
}


def schedule(note_seconds: float, lo_hz: float, hi_hz: float, total: float) -> Iterator[tuple[float, str, Any]]:
    """Timed actions ``(time, what, value)``: notes in turn, and a cutoff sweep every 10 ms."""
    events: list[tuple[float, str, Any]] = []
    for i, note in enumerate(NOTES):
        start = i * note_seconds
        events.append((start, "on", note))
        events.append((start + 0.8 * note_seconds, "off", note))  # a short gap between notes
    steps = int(total / 0.01)
    for k in range(steps + 1):  # exponential sweep: equal steps in pitch
        events.append((k * 0.01, "cutoff", lo_hz * (hi_hz / lo_hz) ** (k / steps)))
    return iter(sorted(events, key=lambda e: (e[0], e[1] != "off")))


def apply(engine: ng.Engine, what: str, value: Any) -> None:
    if what == "on":
        engine.note_on(value, velocity=100)
    elif what == "off":
        engine.note_off(value)
    else:
        engine.set("lpf.cutoff", value)  # an unconnected input: ramps to the new value, no click


def run_offline(engine: ng.Engine, actions: Iterator[tuple[float, str, Any]], total: float) -> np.ndarray:
    """Render by calling ``process()``; each action is sent before the block it falls in."""
    blocks = int(np.ceil(total * engine.sample_rate / engine.block_size))
    out = np.zeros((engine.channels, blocks * engine.block_size), np.float32)
    pending = next(actions, None)
    for b in range(blocks):
        now = b * engine.block_size / engine.sample_rate
        while pending is not None and pending[0] <= now:
            apply(engine, pending[1], pending[2])
            pending = next(actions, None)
        out[:, b * engine.block_size : (b + 1) * engine.block_size] = engine.process()
    return out[:, : int(total * engine.sample_rate)]


def run_live(engine: ng.Engine, actions: Iterator[tuple[float, str, Any]], total: float, backend: str) -> None:
    """Play through an audio backend; this thread only sends notes and settings, on time."""
    from neuralgraph import open_backend

    player = open_backend(backend, engine)
    player.start()
    try:
        t0 = time.monotonic()
        for when, what, value in actions:
            time.sleep(max(0.0, t0 + when - time.monotonic()))
            apply(engine, what, value)
        time.sleep(max(0.0, t0 + total - time.monotonic()))
    finally:
        player.stop()
    print(f"played {total:g} s: {player.status().line()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="driven.wav", help="WAV file to write offline (driven.wav)")
    parser.add_argument("--note-seconds", type=float, default=0.5, help="length of each note (0.5)")
    parser.add_argument(
        "--sweep",
        type=float,
        nargs=2,
        default=(300.0, 4000.0),
        metavar=("LO_HZ", "HI_HZ"),
        help="cutoff sweep over the whole piece (300 4000)",
    )
    parser.add_argument("--backend", help="play live through this backend (sounddevice, jack) instead")
    args = parser.parse_args(argv)

    engine = ng.Engine(ng.load_patch(PATCH), sample_rate=48000, block_size=128)
    total = len(NOTES) * args.note_seconds + 0.2  # room for the last release
    actions = schedule(args.note_seconds, *args.sweep, total)
    if args.backend:
        run_live(engine, actions, total, args.backend)
        return 0
    audio = run_offline(engine, actions, total)
    soundfile.write(args.output, audio.T, engine.sample_rate)
    print(
        f"wrote {Path(args.output).name}: {len(NOTES)} notes, cutoff {args.sweep[0]:g} -> {args.sweep[1]:g} Hz, "
        f"{total:g} s, peak {float(np.abs(audio).max()):.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
