"""``--record``: write the output tap to an audio file from a thread of its own.

The audio thread only fills the tap (:mod:`neuralgraph._runtime.tap`); this thread drains it every
:data:`DRAIN_S` and appends to the file through soundfile. :meth:`Recorder.close` drains what is
left and closes the file, so it is complete and valid however playback stopped (``--seconds``,
Ctrl-C, SIGTERM). WAV is written as 32-bit float, the samples exactly as played; FLAC holds
24-bit integers.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from neuralgraph._errors import NeuralgraphError

#: Seconds between two drains of the tap; the tap holds :data:`BUFFER_S`, far more.
DRAIN_S = 0.02
BUFFER_S = 4.0
FORMATS = {".wav": ("WAV", "FLOAT"), ".flac": ("FLAC", "PCM_24")}


def check_record_path(path: str | Path) -> Path:
    """The path, or a clear error before anything starts when its format is not one we write."""
    p = Path(path)
    if p.suffix.lower() not in FORMATS:
        raise NeuralgraphError(
            f"--record {path}: write .wav (32-bit float) or .flac (24-bit), not {p.suffix or 'a file without a suffix'}"
        )
    if not p.parent.exists():
        raise NeuralgraphError(f"--record {path}: the folder {p.parent} does not exist")
    return p


class Recorder:
    """Records ``engine``'s output (as the backend plays it) to ``path`` until :meth:`close`."""

    def __init__(self, engine: Any, path: str | Path) -> None:
        self.path = check_record_path(path)
        self.channels = engine.channels
        self.file: Any = None  # opened at the first frames, at the rate of the engine playing them
        self.tap = engine.tap(None, seconds=BUFFER_S)
        self.frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="neuralgraph-record", daemon=True)
        self._thread.start()

    def _open(self) -> None:
        import soundfile

        engine = self.tap._engine  # a backend may have rebuilt the engine at the device's rate
        rate = int(engine.sample_rate if engine is not None else self.tap.sample_rate)
        fmt, subtype = FORMATS[self.path.suffix.lower()]
        self.file = soundfile.SoundFile(
            str(self.path), "w", samplerate=rate, channels=self.channels, format=fmt, subtype=subtype
        )

    def _drain(self) -> None:
        while True:
            chunk = self.tap.read()
            if chunk is None:
                return
            if self.file is None:
                self._open()
            self.file.write(chunk.data.T)
            self.frames += chunk.frames

    def _run(self) -> None:
        while not self._stop.wait(DRAIN_S):
            self._drain()

    @property
    def lost(self) -> int:
        """Frames the writer could not keep up with (a gap in the file)."""
        return self.tap.lost

    def close(self) -> None:
        """Stop after the audio has stopped: drain the rest, close the file (idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=10.0)
        self.tap.close()
        self._drain()
        if self.file is None:
            self._open()  # nothing was played: still a valid, empty file
        self.file.close()
