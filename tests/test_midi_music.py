"""Real music through midi.voices: a Bach chorale written as a type-1 MIDI file (a track and a
channel per part, a tempo change, note-on velocity 0 and running status), rendered, and every
note found again in the audio with its onset and its length."""

from __future__ import annotations

from collections import Counter

import mido
import numpy as np
import pytest
from midi_music import (
    BWV_66_6,
    SR,
    VOICE_CHANNELS_PATCH,
    chorale_notes,
    merged_events,
    reference_voices,
    sounded_notes,
    tempo_seconds,
    write_parts,
)

import neuralgraph as ng

RELEASE_MS = 3.0
# 150 BPM, then from bar 5 (tick 7680) 100 BPM: the second half's notes are 1.5 times longer
TEMPO_MAP = [(0, mido.bpm2tempo(150)), (7680, mido.bpm2tempo(100))]


def render_voices(path, count: int, seconds: float, tail_ms: float = RELEASE_MS + 1.0) -> np.ndarray:
    patch_file = path.parent / "voices.toml"
    patch_file.write_text(VOICE_CHANNELS_PATCH.format(count=count, tail_ms=tail_ms, release_ms=RELEASE_MS))
    patch = ng.load_patch(patch_file)
    engine = ng.Engine(patch, sample_rate=SR, block_size=256, ceiling=np.inf)
    return engine.render(seconds, midi=path)


@pytest.mark.parametrize("legato_ticks", [0, 4])
def test_every_note_of_a_bach_chorale_sounds_its_full_written_length(tmp_path, legato_ticks):
    # legato 4 ticks (about 4 ms): each note is held a moment past the next note on its key, as in
    # performed files; 0: written lengths exactly, a part's note-on and another's note-off of the
    # same key then fall on one tick
    notes = chorale_notes(BWV_66_6, legato_ticks)
    path = write_parts(tmp_path / "bwv66_6.mid", notes, TEMPO_MAP, off_as_zero_velocity=(1, 3))
    song = mido.MidiFile(str(path))
    assert song.type == 1 and len(song.tracks) == 5
    alto = path.read_bytes().split(b"MTrk")[3]  # header + tempo track, soprano, then the alto's chunk
    assert alto.count(bytes([0x91])) == 1  # running status: note-on (velocity 0 for offs) written once
    seconds = tempo_seconds(TEMPO_MAP)
    # what makes this music hard for a voice allocator: same-key overlaps and unisons across parts
    sounding_together = [
        (a, b)
        for a in notes
        for b in notes  # unisons (and, legato, overlapping handovers)
        if a.key == b.key and a.part < b.part and a.on_tick < b.off_tick and b.on_tick < a.off_tick
    ]
    handovers = [
        (a, b)
        for a in notes
        for b in notes
        if a.key == b.key and a.part != b.part and b.on_tick == a.off_tick - legato_ticks
    ]
    assert (len(sounding_together), len(handovers)) == (9 if legato_ticks == 0 else 18, 9)

    audio = render_voices(path, count=12, seconds=seconds(max(n.off_tick for n in notes)) + 0.1)
    heard = sounded_notes(audio)
    assert len(heard) == len(notes) == 163
    unmatched = list(heard)
    tolerance = int(RELEASE_MS * SR / 1000) + 2
    for n in sorted(notes, key=lambda n: (n.on_tick, n.part)):
        start = round(seconds(n.on_tick) * SR)
        length = round(seconds(n.off_tick) * SR) - start
        match = [h for h in unmatched if h.key == n.key and abs(h.start - start) <= 1]
        assert match, f"part {n.part} key {n.key} at tick {n.on_tick}: not heard at frame {start}"
        best = min(match, key=lambda h: abs(h.length - length))
        # sounds from its onset for its written length, plus at most the release below the threshold
        assert 0 <= best.length - length <= tolerance, (n, best, length)
        unmatched.remove(best)
    assert not unmatched
    # unisons: at some moments two voices sound the same key together
    assert max(Counter((h.key, h.start) for h in heard).values()) == 2


@pytest.mark.parametrize("count", [3, 4, 6])
def test_too_few_voices_steal_as_documented(tmp_path, count):
    # fewer voices than the music needs: every lane's gate and note, frame by frame, equal what
    # the documented policy (written out plainly in midi_music.reference_voices) predicts
    notes = chorale_notes(BWV_66_6, legato_ticks=4)
    path = write_parts(tmp_path / "bwv66_6.mid", notes, TEMPO_MAP, off_as_zero_velocity=(2,))
    seconds = tempo_seconds(TEMPO_MAP)
    frames = round((seconds(max(n.off_tick for n in notes)) + 0.05) * SR)
    tail = 20  # frames
    out = {}
    for port in ("gate", "note"):
        patch = ng.load_patch(
            {
                "schema": 1,
                "nodes": {
                    "keys": {"type": "midi.voices", "count": count, "tail_ms": tail * 1000 / SR},
                    "out": {"type": "io.output", "channels": count, "in": f"keys.{port}"},
                },
            }
        )
        out[port] = ng.Engine(patch, sample_rate=SR, block_size=128, ceiling=np.inf).render(frames / SR, midi=path)
    gate, note = reference_voices(merged_events(notes), lambda tick: round(seconds(tick) * SR), count, tail, frames)
    np.testing.assert_array_equal(out["gate"], gate)
    np.testing.assert_array_equal(out["note"], note)
