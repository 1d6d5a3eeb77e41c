"""Measure a patch: real-time factor, CPU per block, and the cost of every step (``neuralgraph bench``)."""

from __future__ import annotations

import math

import attrs
import numpy as np

from neuralgraph._compile.fusion import FusedStep
from neuralgraph._compile.records import StepRecord
from neuralgraph._runtime.engine import Engine

GUARD = "(output guard)"
#: Appended to the kind of a step that ran inside a fused run (its cost from the profile build).
FUSED_MARK = "*"


@attrs.frozen
class StepCost:
    """One step's median cost per block."""

    name: str
    kind: str  # the node type, "fused" for a fused run, or "compiler" for emitted steps and the guard
    ns_per_block: float


@attrs.frozen
class Profile:
    """What :func:`profile` measured."""

    blocks: int
    block_size: int
    sample_rate: int
    cpu_per_block_s: float  # process time, normal (untimed) run
    steps: tuple[StepCost, ...]  # sorted, most expensive first

    @property
    def realtime_factor(self) -> float:
        """Audio seconds rendered per CPU second."""
        period = self.block_size / self.sample_rate
        return period / self.cpu_per_block_s if self.cpu_per_block_s > 0 else math.inf


def hold_notes(engine: Engine, count: int) -> None:
    """Hold ``count`` notes (a spread chord from C3 up in fifths and thirds) for voice patches."""
    for k in range(count):
        engine.note_on(48 + (k * 7) % 48, 100)
    engine.process()


def profile(engine: Engine, blocks: int, *, warmup: int = 20) -> Profile:
    """Run ``blocks`` blocks untimed (for the real-time factor), then ``blocks`` timed per step.

    The first pass runs the normal :meth:`Engine.process`; the second runs
    :meth:`Plan.run_block_timed`, whose per-step clock reads cost about 0.1 µs per step, so the
    per-step figures add up to slightly more than the first pass's CPU per block.
    """
    blocks = max(1, int(blocks))
    cpu = engine.benchmark(blocks, warmup)["cpu_per_block_s"]

    plan = engine.plan
    fused = [r.state for r in plan.records if isinstance(r.state, FusedStep)]
    for step in fused:  # the profile build: cycles counted per member inside each fused run
        step.profile(True)
    # one row per block: the median per step discards blocks where the process was descheduled
    elapsed = np.zeros((blocks, len(plan.steps) + 1), np.int64)
    drain = engine.apply_commands
    timed = plan.run_block_timed
    ticks = {id(step): np.zeros((blocks, len(step.ticks)), np.int64) for step in fused}
    try:
        for b in range(blocks):
            drain()
            timed(elapsed[b])
            for step in fused:  # per block, so that the median drops descheduled blocks here too
                ticks[id(step)][b] = step.ticks
                step.ticks.fill(0)
    finally:
        for step in fused:
            step.profile(False)
    medians = np.median(elapsed, axis=0)
    costs = [StepCost(GUARD, "compiler", float(medians[-1]))]
    for record, ns in zip(plan.records, medians.tolist()):
        costs += (
            _member_costs(record, ns, ticks[id(record.state)])
            if isinstance(record.state, FusedStep)
            else [StepCost(record.name, record.label, ns)]
        )
    costs.sort(key=lambda c: c.ns_per_block, reverse=True)
    return Profile(blocks, plan.block_size, int(plan.sample_rate), cpu, tuple(costs))


def _member_costs(record: StepRecord, ns: float, ticks: np.ndarray) -> list[StepCost]:
    """A fused run's measured time split between its members in the proportions of the median
    nanoseconds its profile build clocked for each; the kind says it ran in a fused run."""
    share = np.median(ticks, axis=0)
    total = float(share.sum())
    if total <= 0.0 or not record.state.fused:  # no clock, or the run fell back to unfused
        return [StepCost(record.name, record.label, ns)]
    return [StepCost(m.name, f"{m.label}{FUSED_MARK}", ns * float(t) / total) for m, t in zip(record.members, share)]


def format_profile(p: Profile, title: str) -> str:
    """The report ``neuralgraph bench`` prints."""
    period_us = 1e6 * p.block_size / p.sample_rate
    cpu_us = 1e6 * p.cpu_per_block_s
    lines = [
        f"{title}: {p.sample_rate} Hz, block {p.block_size}, {p.blocks} blocks "
        f"({p.blocks * p.block_size / p.sample_rate:.2f} s of audio)",
        f"real-time factor: {p.realtime_factor:.1f}x",
        f"CPU per block: {cpu_us:.2f} µs of {period_us:.1f} µs ({100.0 * cpu_us / period_us:.2f}% of one core)",
        "cost per block (median of the timed pass), most expensive first:",
    ]
    width = max([len(c.name) for c in p.steps] + [4])
    kind_width = max([len(c.kind) for c in p.steps] + [4])
    total = sum(c.ns_per_block for c in p.steps) or 1.0
    lines.append(f"  {'step':<{width}}  {'type':<{kind_width}}  {'µs/block':>9}  {'share':>6}")
    for c in p.steps:
        lines.append(
            f"  {c.name:<{width}}  {c.kind:<{kind_width}}  {c.ns_per_block / 1000.0:>9.2f}  "
            f"{100.0 * c.ns_per_block / total:>5.1f}%"
        )
    if any(c.kind.endswith(FUSED_MARK) for c in p.steps):
        lines.append(
            f"{FUSED_MARK} ran inside a fused run: its share of the run's time, clocked "
            "between members by the run's profile build"
        )
    return "\n".join(lines)
