"""Standard MIDI files (type 0 and 1, tempo changes, all channels) to frame-stamped messages."""

from __future__ import annotations

from pathlib import Path

from neuralgraph._errors import NeuralgraphError

CHANNEL_MESSAGES = {"note_on", "note_off", "control_change", "pitchwheel", "aftertouch", "polytouch",
                    "program_change"}


def read_midi_events(path: str | Path, sample_rate: float) -> tuple[list[int], list[tuple[int, int, int]]]:
    """The channel messages of ``path`` as (frames, [(status, data1, data2), ...]), in time order.

    Times follow every tempo change (mido converts ticks to seconds while iterating).
    """
    try:
        import mido
    except ImportError as exc:  # pragma: no cover - mido is a dependency
        raise NeuralgraphError("reading MIDI files needs mido: pip install mido") from exc
    try:
        song = mido.MidiFile(str(path))
    except FileNotFoundError:
        raise NeuralgraphError(f"{path}: no such MIDI file") from None
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise NeuralgraphError(f"{path}: not a readable standard MIDI file ({exc})") from None
    if song.type == 2:
        raise NeuralgraphError(f"{path}: type 2 MIDI files (independent sequences) are not supported")
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
    import mido

    return float(mido.MidiFile(str(path)).length)
