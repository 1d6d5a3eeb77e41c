"""Reading and writing audio files (soundfile, which wraps libsndfile: WAV, FLAC, OGG, AIFF)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuralgraph._errors import NeuralgraphError

SUBTYPES = {"float": "FLOAT", "16": "PCM_16", "24": "PCM_24", "32": "PCM_32"}


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int, bits: str = "float") -> None:
    """Write (channels, frames) float audio; ``bits`` is "float", "16", "24" or "32"."""
    import soundfile

    try:
        soundfile.write(str(path), np.ascontiguousarray(audio.T), int(sample_rate), subtype=SUBTYPES[bits])
    except (RuntimeError, OSError, TypeError, ValueError) as exc:
        raise NeuralgraphError(f"cannot write {path}: {exc}") from None


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a file as float32 (channels, frames) and its sample rate."""
    import soundfile

    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, TypeError, ValueError) as exc:
        raise NeuralgraphError(f"cannot read {path}: {exc}") from None
    return np.ascontiguousarray(data.T), int(rate)
