"""A job's renders: render ``i`` is a pure function of the job and ``i``.

Order: grid point (the product of the ``[params]`` lists, the last list changing fastest), then
the random draw (``samples`` per grid point), then the MIDI file or note × velocity (fastest).
Each render's random values come from a generator seeded by :func:`render_seed` (the job seed
and the render's index), drawn in ``[params]`` order, so they never depend on which worker ran
what, or in which order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from neuralgraph._tools.batch.spec import Axis, Job


@attrs.frozen
class Render:
    """One render: its index and id, every parameter value, its seed and its MIDI material."""

    index: int
    id: str
    params: dict[str, Any]
    seed: int
    midi: Path | None = None
    note: int | None = None
    velocity: int | None = None

    def fixed_key(self, job: Job) -> tuple[tuple[str, Any], ...]:
        """The values of parameters that shape buffers: renders sharing it share a compiled engine."""
        return tuple((a.name, self.params[a.name]) for a in job.axes if not a.live)


def render_seed(job_seed: int, index: int) -> int:
    """The seed of render ``index``: 63 bits from ``SeedSequence([job_seed, index])``."""
    return int(np.random.SeedSequence([job_seed, index]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def draw(axis: Axis, rng: np.random.Generator) -> Any:
    """One value of a random axis."""
    if axis.kind == "choice":
        return axis.values[int(rng.integers(len(axis.values)))]
    lo, hi = axis.values
    if axis.kind == "log_uniform":
        value = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        value = min(max(value, lo), hi)  # exp(log(x)) may land one ulp outside
    else:
        value = float(rng.uniform(lo, hi))
    return int(round(value)) if axis.integer else value


def id_width(job: Job) -> int:
    return max(6, len(str(job.total - 1)))


def render_at(job: Job, index: int) -> Render:
    """Render ``index`` of ``job`` (0 <= index < job.total)."""
    if not 0 <= index < job.total:
        raise IndexError(f"render {index} of a job of {job.total}")
    rest, material = divmod(index, job.midi_count)
    point, _sample = divmod(rest, job.samples)
    seed = render_seed(job.seed, index)
    params: dict[str, Any] = {}
    digits: dict[str, int] = {}
    for axis in reversed(job.grid):  # mixed radix, the last list fastest
        point, digits[axis.name] = divmod(point, len(axis.values))
    rng = np.random.default_rng(seed)
    for axis in job.axes:
        if axis.kind == "grid":
            params[axis.name] = axis.values[digits[axis.name]]
        elif axis.kind == "fixed":
            params[axis.name] = axis.values[0]
        else:
            params[axis.name] = draw(axis, rng)
    midi = note = velocity = None
    if job.midi_files:
        midi = job.midi_files[material]
    elif job.notes:
        n, v = divmod(material, len(job.velocities))
        note, velocity = job.notes[n], job.velocities[v]
    return Render(index, f"{index:0{id_width(job)}d}", params, seed, midi, note, velocity)


def renders(job: Job) -> Iterator[Render]:
    for index in range(job.total):
        yield render_at(job, index)
