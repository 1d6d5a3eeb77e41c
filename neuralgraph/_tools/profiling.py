"""Measure a patch: real-time factor, CPU per block, and the cost of every step (``neuralgraph bench``)."""

from __future__ import annotations

import math

import attrs
import numpy as np

from neuralgraph._runtime.engine import Engine

GUARD = "(output guard)"


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
    # one row per block: the median per step discards blocks where the process was descheduled
    elapsed = np.zeros((blocks, len(plan.steps) + 1), np.int64)
    drain = engine.apply_commands
    timed = plan.run_block_timed
    for b in range(blocks):
        drain()
        timed(elapsed[b])
    medians = np.median(elapsed, axis=0)
    labels = [*((r.name, r.label) for r in plan.records), (GUARD, "compiler")]
    costs = [StepCost(name, kind, ns) for (name, kind), ns in zip(labels, medians.tolist())]
    costs.sort(key=lambda c: c.ns_per_block, reverse=True)
    return Profile(blocks, plan.block_size, int(plan.sample_rate), cpu, tuple(costs))


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
        lines.append(f"  {c.name:<{width}}  {c.kind:<{kind_width}}  {c.ns_per_block / 1000.0:>9.2f}  "
                     f"{100.0 * c.ns_per_block / total:>5.1f}%")
    return "\n".join(lines)
