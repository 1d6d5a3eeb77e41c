"""Which node is too slow for real time: every step timed in one block out of ``every``.

The audio thread runs :meth:`StepTimer.sample` instead of ``run_block`` on sampled blocks; it
writes per-step nanoseconds into preallocated arrays (no allocation beyond the clock's integers).
The control thread asks :meth:`StepTimer.slow_steps` which steps took longer than the block's
real-time budget (its period), naming the node (or the fused run).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import attrs
import numpy as np

from neuralgraph._compile.plan import Plan


@attrs.frozen
class SlowStep:
    """A step whose sampled time for one block exceeded the block's period."""

    name: str  #: the node (or the compiler step / fused run) as ``Engine.faults`` names it
    worst_ms: float  #: the longest sampled time for one block
    budget_ms: float  #: the block's period: what real time allows for the whole block
    times_over: int  #: sampled blocks in which the step alone exceeded the budget
    samples: int  #: blocks sampled so far


#: Offline renders time one block in this many. A timed block runs every step on its own (no fused
#: runs, no many-block driver call), which cost offline renders of P1 and P2 at block 64 3-15 % of
#: their CPU at one block in 32; a node too slow for real time is slow in every block, so it is
#: still named after the first few hundred blocks.
OFFLINE_EVERY = 256


class StepTimer:
    """Per-step timing of one block in ``every`` (default 32: ~3 % of blocks pay ~2 clock reads per step)."""

    def __init__(self, plan: Plan, sample_rate: float, block_size: int, every: int = 32) -> None:
        self.plan = plan
        self.every = every
        self.countdown = every
        self.budget_ns = 1e9 * block_size / sample_rate
        steps = len(plan.steps)
        self.ns = np.zeros(steps + 1, np.int64)  # the last slot takes the output guard's time
        self.worst_ns = np.zeros(steps + 1, np.int64)
        self.over = np.zeros(steps + 1, np.int64)
        self._over_now = np.zeros(steps + 1, np.bool_)
        # the budget as an int64 array: comparing int64 with a float would cast ns into a new array
        self._budget = np.full(steps + 1, int(self.budget_ns), np.int64)
        self._one = np.ones(steps + 1, np.int64)  # added where over: int64 + bool would cast into a new array
        self.samples = 0

    def due(self) -> bool:
        """Audio thread: count a block; True when this one is to be timed."""
        self.countdown -= 1
        return self.countdown <= 0 and not self.plan.diagnostic

    def sample(self) -> np.ndarray:
        """Audio thread: run the block with every step timed; returns the output like ``run_block``."""
        self.countdown = self.every
        ns = self.ns
        ns.fill(0)
        out = self.plan.run_block_timed(ns)
        np.maximum(self.worst_ns, ns, out=self.worst_ns)
        np.greater(ns, self._budget, out=self._over_now)
        np.add(self.over, self._one, out=self.over, where=self._over_now)
        self.samples += 1
        return out

    def slow_steps(self) -> list[SlowStep]:
        """Control thread: the steps over budget in some sampled block, slowest first."""
        names = self.plan.step_names
        found = [
            SlowStep(
                names[i] if i < len(names) else "(output guard)",
                float(self.worst_ns[i]) / 1e6,
                self.budget_ns / 1e6,
                int(self.over[i]),
                self.samples,
            )
            for i in np.flatnonzero(self.over)
        ]
        return sorted(found, key=lambda s: -s.worst_ms)

    @contextlib.contextmanager
    def offline(self) -> Iterator[None]:
        """While an offline render runs: one block in :data:`OFFLINE_EVERY` (at least) is timed."""
        every = self.every
        self.every = max(every, OFFLINE_EVERY)
        try:
            yield
        finally:
            self.every = every
            self.countdown = min(self.countdown, every)

    def reset(self) -> None:
        self.countdown = self.every
        self.worst_ns.fill(0)
        self.over.fill(0)
        self.samples = 0
