"""Progress of a long render: a tqdm bar with ETA on a terminal, plain lines every ~10 % elsewhere.

CI logs and batch jobs (stderr not a terminal) get one line per tenth of the render with the
percentage, the speed as a multiple of real time and the time left; ``quiet`` silences both.
"""

from __future__ import annotations

import sys
import time
from typing import IO


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class RenderProgress:
    """Reports ``update(audio_seconds_done)`` of a render ``total`` audio seconds long."""

    def __init__(
        self, label: str, total: float, *, quiet: bool = False, stream: IO[str] | None = None, tty: bool | None = None
    ) -> None:
        self.label = label
        self.total = max(total, 1e-9)
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        tty = self.stream.isatty() if tty is None else tty
        self._bar = None
        if not quiet and tty:
            from tqdm import tqdm

            self._bar = tqdm(
                total=round(total, 3),
                desc=label,
                unit="s",
                unit_scale=False,
                file=self.stream,
                leave=False,
                dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s audio "
                "[{elapsed}<{remaining}, {rate_fmt}]",
            )
        self._t0 = time.perf_counter()
        self._next_line = 0.1  # the next tenth a plain line is printed at
        self._done = 0.0

    def update(self, done: float) -> None:
        """``done`` audio seconds have been rendered so far."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.update(round(done - self._done, 6))
            self._done = done
            return
        fraction = done / self.total
        if fraction + 1e-9 < self._next_line:
            return
        while self._next_line <= fraction + 1e-9:
            self._next_line += 0.1
        wall = time.perf_counter() - self._t0
        speed = done / wall if wall > 0 else float("inf")
        eta = (self.total - done) / speed if speed > 0 else 0.0
        self.stream.write(
            f"{self.label}: {fraction * 100:3.0f}% ({done:.1f} of {self.total:.1f} s), "
            f"{speed:.1f}x real time, ETA {_clock(eta)}\n"
        )
        self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
