"""Standard MIDI files (type 0 and 1, tempo changes, all channels) to frame-stamped messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neuralgraph._errors import (  # an unreadable input file is the user's to fix: exit status 2
    NeuralgraphError,
    UsageError,
)

CHANNEL_MESSAGES = {"note_on", "note_off", "control_change", "pitchwheel", "aftertouch", "polytouch", "program_change"}


def open_midi(path: str | Path) -> Any:
    """``path`` as a ``mido.MidiFile``; UsageError (naming the file) when it is missing,
    unreadable, or of type 2, whose tracks are independent sequences with no common time line."""
    try:
        import mido
    except ImportError as exc:  # pragma: no cover - mido is a dependency
        raise NeuralgraphError("reading MIDI files needs mido: pip install mido") from exc
    try:
        song = mido.MidiFile(str(path))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such MIDI file") from None
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise UsageError(f"{path}: not a readable standard MIDI file ({exc})") from None
    if song.type == 2:
        raise UsageError(
            f"{path}: type 2 MIDI files (independent sequences) are not supported; "
            "save it as type 0 or 1 (one song, tracks played together)"
        )
    return song


def read_midi_events(path: str | Path, sample_rate: float) -> tuple[list[int], list[tuple[int, int, int]]]:
    """The channel messages of ``path`` as (frames, [(status, data1, data2), ...]), in time order.

    Times follow every tempo change (mido converts ticks to seconds while iterating); tracks are
    merged by time, messages of one tick in track order.
    """
    song = open_midi(path)
    frames: list[int] = []
    messages: list[tuple[int, int, int]] = []
    seconds = 0.0
    for msg in song:  # merged tracks, msg.time in seconds
        seconds += msg.time
        if msg.type not in CHANNEL_MESSAGES:
            continue
        raw = msg.bytes()
        frames.append(int(round(seconds * sample_rate)))
        messages.append((raw[0], raw[1] if len(raw) > 1 else 0, raw[2] if len(raw) > 2 else 0))
    return frames, messages


def midi_length(path: str | Path) -> float:
    """Length of a MIDI file in seconds."""
    return float(open_midi(path).length)
