"""The checked form of a batch job (:class:`Job`, one :class:`Axis` per ``[params]`` entry) and
the error a job file's problems are raised as; :mod:`.job` reads the file into them and
:mod:`.checks` checks them against the patch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import attrs

from neuralgraph._errors import PatchError

RANDOM_KINDS = ("uniform", "log_uniform", "choice")


class JobError(PatchError):
    """A batch job file has one or more problems (``problems`` lists them, located)."""


@attrs.frozen
class Axis:
    """One ``[params]`` entry: grid values, a fixed value, or a distribution drawn per render."""

    name: str  #: "node.param" or "node.input"
    kind: str  #: "grid" (values), "fixed" (values[0]), "uniform", "log_uniform" (values = (lo, hi)), "choice"
    values: tuple[Any, ...]
    integer: bool = False  #: an int parameter: draws are rounded
    live: bool = True  #: False: the parameter shapes buffers, so a new value means compiling again


@attrs.frozen
class Job:
    """A checked batch job. Paths are absolute; ``midi_files`` and ``notes`` are alternatives."""

    file: Path
    patch: Path
    seconds: float | None  #: None: each MIDI file's length plus ``tail``
    tail: float
    sample_rate: int
    block_size: int
    seed: int
    samples: int
    axes: tuple[Axis, ...]
    midi_files: tuple[Path, ...] = ()
    notes: tuple[int, ...] = ()
    velocities: tuple[int, ...] = ()
    hold: float = 0.0  #: seconds a note of ``notes`` is held before its note-off
    audio: str = "wav"
    bits: str = "float"
    taps: tuple[str, ...] = ()

    @property
    def directory(self) -> Path:
        return self.file.parent

    @property
    def grid(self) -> tuple[Axis, ...]:
        return tuple(a for a in self.axes if a.kind == "grid")

    @property
    def random(self) -> tuple[Axis, ...]:
        return tuple(a for a in self.axes if a.kind in RANDOM_KINDS)

    @property
    def midi_count(self) -> int:
        """Renders per parameter draw: one per MIDI file, or per note × velocity, else 1."""
        if self.midi_files:
            return len(self.midi_files)
        return len(self.notes) * len(self.velocities) or 1

    @property
    def grid_points(self) -> int:
        return math.prod(len(a.values) for a in self.grid)

    @property
    def total(self) -> int:
        return self.grid_points * self.samples * self.midi_count


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
