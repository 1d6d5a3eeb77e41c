"""Write examples/midi/expressive.mid: a short phrase that uses every control of the neural instruments.

    python examples/midi/make_expressive.py          # writes expressive.mid next to this script
    neuralgraph render graphs/neural_violin.toml --midi examples/midi/expressive.mid -o violin.wav

Type 0 file at 120 BPM, one channel: G4 A4 B4 at rising velocities (the recordings' own vibrato,
since no CC 1 has come yet), a long D5 swelled by channel pressure while the mod wheel deepens
its vibrato, a C5 scooped up from a semitone below with the pitch bend (wheel back to 0: a
straight tone), and a low G2 that every instrument folds into its range (and reports).
"""

from __future__ import annotations

import sys
from pathlib import Path

import mido

TPS = 960  # ticks per second (480 per quarter note at 120 BPM)


def build() -> mido.MidiFile:
    """The phrase as a mido MidiFile."""
    events: list[tuple[float, mido.Message]] = []

    def note(start: float, end: float, key: int, velocity: int) -> None:
        events.append((start, mido.Message("note_on", note=key, velocity=velocity)))
        events.append((end, mido.Message("note_off", note=key, velocity=0)))

    note(0.0, 0.5, 67, 70)
    note(0.5, 1.0, 69, 85)
    note(1.0, 1.5, 71, 100)
    note(1.5, 3.3, 74, 100)
    for k in range(11):  # over the long D5: pressure swells, the wheel deepens the vibrato
        events.append((1.9 + 0.1 * k, mido.Message("aftertouch", value=round(127 * k / 10))))
        events.append((1.9 + 0.1 * k, mido.Message("control_change", control=1, value=round(90 * k / 10))))
    events.append((3.3, mido.Message("aftertouch", value=0)))
    events.append((3.3, mido.Message("control_change", control=1, value=0)))
    for k in range(7):  # C5 scooped up from B4: the bend slides from one semitone down to centre
        events.append((3.4 + 0.05 * k, mido.Message("pitchwheel", pitch=round(-4096 * (1 - k / 6)))))
    note(3.4, 4.6, 72, 105)
    note(4.8, 5.6, 43, 90)
    song = mido.MidiFile(type=0, ticks_per_beat=480)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0))
    now = 0
    for t, msg in sorted(events, key=lambda e: e[0]):
        tick = round(t * TPS)
        track.append(msg.copy(time=tick - now))
        now = tick
    song.tracks.append(track)
    return song


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("expressive.mid")
    build().save(str(out))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
