"""Write examples/midi/arpeggio.mid: a two-bar arpeggio over a pedalled bass, with a tempo change.

    python examples/midi/make_arpeggio.py            # writes arpeggio.mid next to this script
    neuralgraph render graphs/poly_saw.toml --midi examples/midi/arpeggio.mid -o arpeggio.wav

Type 1 file: track 0 holds the tempo map (120 BPM, then 90 BPM from bar 2), track 1 the
arpeggio on channel 1 (eighth notes), track 2 a bass line on channel 2 held by the sustain pedal.
"""

from __future__ import annotations

import sys
from pathlib import Path

import mido

TPB = 480  # ticks per quarter note


def build() -> mido.MidiFile:
    """The song as a mido MidiFile."""
    song = mido.MidiFile(type=1, ticks_per_beat=TPB)
    tempo = mido.MidiTrack()
    tempo.append(mido.MetaMessage("track_name", name="tempo", time=0))
    tempo.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0))
    tempo.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90), time=4 * TPB))
    song.tracks.append(tempo)

    arp = mido.MidiTrack()
    arp.append(mido.MetaMessage("track_name", name="arpeggio", time=0))
    notes = [57, 60, 64, 69, 72, 69, 64, 60] * 2  # A minor up and down, twice
    for i, note in enumerate(notes):
        arp.append(mido.Message("note_on", channel=0, note=note, velocity=70 + (i % 4) * 12, time=0))
        arp.append(mido.Message("note_off", channel=0, note=note, velocity=0, time=TPB // 2))
    song.tracks.append(arp)

    bass = mido.MidiTrack()
    bass.append(mido.MetaMessage("track_name", name="bass", time=0))
    for note in (45, 41):  # A2 then F2, one bar each: the key is short, the pedal holds it
        bass.append(mido.Message("control_change", channel=1, control=64, value=127, time=0))
        bass.append(mido.Message("note_on", channel=1, note=note, velocity=90, time=0))
        bass.append(mido.Message("note_off", channel=1, note=note, velocity=0, time=TPB))
        bass.append(mido.Message("control_change", channel=1, control=64, value=0, time=3 * TPB))
    song.tracks.append(bass)
    return song


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("arpeggio.mid")
    build().save(str(out))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
