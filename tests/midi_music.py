"""Real music as MIDI files, and the per-voice analysis that finds every note in rendered audio.

``BWV_66_6`` is the closing four-part chorale of Bach's Cantata 66 (BWV 66.6, on the melody
"Christ ist erstanden"), typed from the public-domain score: per part, ``pitch:onset:length`` with onset and length in
sixteenths. It has nine unisons between parts and nine places where one part takes over a key
another part has just sounded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

SR = 48000
TPB = 480

BWV_66_6 = {
    "soprano": "73:0:2 71:2:2 69:4:4 71:8:4 73:12:4 76:16:4 73:20:4 71:24:4 69:28:4 73:32:4 69:36:2 71:38:2 "
    "68:40:4 66:44:4 69:48:4 71:52:4 71:56:4 66:60:4 64:64:4 69:68:4 71:72:4 73:76:4 73:80:4 "
    "69:84:4 71:88:4 73:92:4 69:96:4 68:100:4 66:104:4 68:108:8 66:116:8 66:124:4 66:128:8 "
    "66:136:2 65:138:2 66:140:4",
    "alto": "64:0:4 66:4:4 64:8:4 64:12:4 64:16:4 64:20:2 69:22:2 68:24:4 64:28:4 68:32:4 66:36:2 68:38:2 "
    "65:40:4 61:44:4 66:48:4 66:52:4 64:56:4 63:60:4 61:64:4 61:68:2 66:70:2 64:72:4 64:76:4 69:80:4 "
    "66:84:4 66:88:4 68:92:4 66:96:4 66:100:2 65:102:2 66:104:2 54:106:2 61:108:8 61:116:2 62:118:2 "
    "64:120:8 62:128:2 61:130:2 59:132:2 61:134:2 62:136:4 61:140:4",
    "tenor": "57:0:2 59:2:2 61:4:4 59:8:4 57:12:4 59:16:4 57:20:2 64:22:2 64:24:2 62:26:2 61:28:4 61:32:4 "
    "61:36:2 62:38:2 61:40:2 59:42:2 57:44:4 61:48:4 59:52:4 59:56:4 59:60:2 57:62:2 56:64:4 54:68:2 "
    "62:70:2 61:72:2 59:74:2 57:76:4 64:80:4 62:84:4 62:88:4 61:92:4 61:96:4 62:100:2 61:102:4 "
    "59:106:2 53:108:8 54:116:4 61:120:8 59:128:2 58:130:2 59:132:4 59:136:4 58:140:4",
    "bass": "57:0:2 56:2:2 54:4:4 56:8:4 57:12:4 56:16:4 57:20:2 49:22:2 52:24:4 45:28:4 53:32:4 54:36:2 "
    "47:38:2 49:40:4 42:44:4 54:48:4 56:52:2 54:54:2 56:56:2 57:58:2 59:60:2 47:62:2 49:64:4 54:68:4 "
    "56:72:4 57:76:4 57:80:4 62:84:4 59:88:4 53:92:4 54:96:4 47:100:2 49:102:2 50:104:4 49:108:8 "
    "46:116:8 47:124:4 49:128:4 50:132:4 47:136:4 54:140:4",
}


@dataclass(frozen=True)
class Note:
    part: int
    key: int
    on_tick: int
    off_tick: int


def chorale_notes(score: dict[str, str], legato_ticks: int = 0) -> list[Note]:
    """The score's notes in ticks; ``legato_ticks`` holds every note that much past its written
    end, as a player (and many corpus files) do, so the next note on that key starts first."""
    notes = []
    for part, text in enumerate(score.values()):
        for item in text.split():
            key, onset, length = (int(x) for x in item.split(":"))
            on = onset * TPB // 4
            notes.append(Note(part, key, on, on + length * TPB // 4 + legato_ticks))
    return notes


def tempo_seconds(tempo_map: list[tuple[int, int]]):
    """Tick -> seconds for ``[(tick, microseconds per beat), ...]`` (first at tick 0), computed here
    independently of mido, as the reference the rendering is checked against."""

    def seconds(tick: int) -> float:
        t = 0.0
        for i, (start, tempo) in enumerate(tempo_map):
            end = tempo_map[i + 1][0] if i + 1 < len(tempo_map) else None
            if end is not None and tick > end:
                t += (end - start) * tempo / 1e6 / TPB
            else:
                return t + (tick - start) * tempo / 1e6 / TPB
        return t

    return seconds


def write_parts(
    path: Path, notes: list[Note], tempo_map: list[tuple[int, int]], *, off_as_zero_velocity: tuple[int, ...] = ()
) -> Path:
    """A type-1 file: a tempo track, then one track and channel per part. Parts listed in
    ``off_as_zero_velocity`` end notes with note-on velocity 0 (mido then writes running status)."""
    song = mido.MidiFile(type=1, ticks_per_beat=TPB)
    tempo_track = mido.MidiTrack()
    last = 0
    for tick, tempo in tempo_map:
        tempo_track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=tick - last))
        last = tick
    song.tracks.append(tempo_track)
    for part in sorted({n.part for n in notes}):
        events = []
        for n in (n for n in notes if n.part == part):
            events.append((n.on_tick, 1, mido.Message("note_on", note=n.key, velocity=90, channel=part)))
            if part in off_as_zero_velocity:
                off = mido.Message("note_on", note=n.key, velocity=0, channel=part)
            else:
                off = mido.Message("note_off", note=n.key, velocity=64, channel=part)
            events.append((n.off_tick, 0, off))
        track = mido.MidiTrack()
        last = 0
        for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
            track.append(msg.copy(time=tick - last))
            last = tick
        song.tracks.append(track)
    song.save(str(path))
    return path


VOICE_CHANNELS_PATCH = """
schema = 1
[nodes.keys]
type = "midi.voices"
count = {count}
tail_ms = {tail_ms}
[nodes.osc]
type = "osc.sine"
freq = "keys.freq"
[nodes.lift]
type = "math.add"   # 1..3, so a note's start and end are edges whatever the sine's phase
a = "osc"
b = 2.0
[nodes.env]
type = "env.ar"
gate = "keys.gate"
attack_ms = 0.0
release_ms = {release_ms}
curve = "lin"
[nodes.vca]
type = "math.mul"
in = "lift"
gain = "env"
[nodes.out]
type = "io.output"   # one channel per voice
channels = {count}
in = "vca"
"""


@dataclass(frozen=True)
class Sounded:
    voice: int
    start: int  # frame
    length: int  # frames
    key: int  # nearest MIDI note of the measured pitch


def sounded_notes(
    audio: np.ndarray, sample_rate: int = SR, threshold: float = 0.3, release_ms: float = 3.0
) -> list[Sounded]:
    """Every note in per-voice audio (one channel per voice, signal (sine + 2) * envelope): where
    the channel rises above ``threshold``, how long it stays there, and its pitch (zero crossings
    of the sine while the envelope is flat at 1). In the release the signal may cross the
    threshold more than once (the sine lifts it): dips shorter than the release are bridged."""
    found = []
    bridge = int(release_ms * sample_rate / 1000)
    for voice, x in enumerate(audio.astype(np.float64)):
        loud = x > threshold
        edges = np.flatnonzero(loud[1:] != loud[:-1]) + 1
        if loud[0]:
            edges = np.r_[0, edges]
        if loud[-1]:
            edges = np.r_[edges, len(x)]
        spans: list[list[int]] = []
        for start, end in zip(edges[0::2], edges[1::2]):
            if spans and start - spans[-1][1] < bridge:
                spans[-1][1] = int(end)
            else:
                spans.append([int(start), int(end)])
        for start, end in spans:
            held = x[start:end] - 2.0
            flat = held[: max(0, len(held) - int(0.004 * sample_rate))]  # before the release
            rising = np.flatnonzero((flat[:-1] < 0.0) & (flat[1:] >= 0.0))
            if len(rising) < 2:
                key = -1
            else:
                # interpolated crossing times: frequency from the whole run of cycles
                t = rising + flat[rising] / (flat[rising] - flat[rising + 1])
                freq = (len(t) - 1) * sample_rate / (t[-1] - t[0])
                key = int(round(69 + 12 * np.log2(freq / 440.0)))
            found.append(Sounded(voice, int(start), int(end - start), key))
    return found


def merged_events(notes: list[Note]) -> list[tuple[int, int, int, int]]:
    """(tick, channel, key, is_on) in the order a reader of :func:`write_parts`' file sees them:
    by tick, then by track (part), note-offs before note-ons inside a track's tick."""
    events = [(n.on_tick, n.part, 1, n.key) for n in notes] + [(n.off_tick, n.part, 0, n.key) for n in notes]
    return [(tick, part, key, kind) for tick, part, kind, key in sorted(events)]


def reference_voices(
    events: list[tuple[int, int, int, int]], frame_of, count: int, tail: int, frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """The voice allocation policy of docs/midi.md, written out plainly (no pedal here): per voice
    the ``gate`` and ``note`` it should output, frame by frame. The test's reference for
    midi.voices' compiled kernel."""
    FREE, HELD, RELEASED = 0, 1, 3
    state = [FREE] * count
    key = [69] * count
    chan = [0] * count
    on_seq = [0] * count
    off_seq = [k - count for k in range(count)]
    off_time = [-(1 << 40)] * count
    orphans: Counter = Counter()
    seq = 0
    gate = np.zeros((count, frames), np.float32)
    note = np.full((count, frames), 69.0, np.float32)
    for tick, ch, k, is_on in events:
        t = frame_of(tick)
        if is_on:
            free = [v for v in range(count) if state[v] == FREE or (state[v] == RELEASED and t - off_time[v] >= tail)]
            released = [v for v in range(count) if state[v] == RELEASED]
            if free:
                v = min(free, key=lambda u: off_seq[u])
            elif released:
                v = min(released, key=lambda u: off_seq[u])
            else:
                v = min(range(count), key=lambda u: on_seq[u])
                orphans[(chan[v], key[v])] += 1
            stolen = state[v] == HELD
            state[v], key[v], chan[v], on_seq[v] = HELD, k, ch, seq
            seq += 1
            gate[v, t:] = 1.0
            if stolen:
                gate[v, t] = 0.0  # one frame of gate 0: the envelope sees a new edge
            note[v, t:] = k
        else:
            if orphans[(ch, k)]:
                orphans[(ch, k)] -= 1
                continue
            held = [v for v in range(count) if state[v] == HELD and key[v] == k and chan[v] == ch]
            if held:
                v = min(held, key=lambda u: on_seq[u])
                state[v], off_time[v], off_seq[v] = RELEASED, t, seq
                seq += 1
                gate[v, t:] = 0.0
    return gate, note
