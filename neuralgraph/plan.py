"""The compiled, immutable plan and the loop that runs it once per block (the audio thread)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from .events import EventBuffer
from .node import Node, Ports

Step = tuple[Callable[[Ports, Ports, int], None], Ports, Ports]

FAULT_SLOTS = 64
SUBNORMAL = np.float32(1e-30)


class OutputGuard:
    """Keeps NaN, Inf, subnormals and overs out of the output; counts what it caught.

    ``ceiling`` is a hard limit in full-scale units (1.0 = 0 dBFS); set it to ``inf`` only on
    purpose (offline analysis), never in front of speakers.
    """

    def __init__(self, shape: tuple[int, int], ceiling: float) -> None:
        self.ceiling = np.float32(ceiling)
        self.mask = np.zeros(shape, bool)
        self.magnitude = np.zeros(shape, np.float32)
        self.zero = np.zeros((), np.float32)
        self.non_finite = 0  # samples replaced by 0
        self.clipped = 0  # samples limited to the ceiling
        self.peak = 0.0  # largest magnitude seen before the ceiling

    def apply(self, out: np.ndarray) -> None:
        mask, mag = self.mask, self.magnitude
        np.isfinite(out, out=mask)
        if not mask.all():
            np.logical_not(mask, out=mask)
            self.non_finite += int(np.count_nonzero(mask))
            np.copyto(out, self.zero, where=mask)
        np.abs(out, out=mag)
        peak = float(mag.max()) if mag.size else 0.0
        if peak > self.peak:
            self.peak = peak
        np.less(mag, SUBNORMAL, out=mask)
        np.copyto(out, self.zero, where=mask)
        if peak > self.ceiling:
            np.greater(mag, self.ceiling, out=mask)
            self.clipped += int(np.count_nonzero(mask))
            np.minimum(out, self.ceiling, out=out)  # np.clip keeps a growing cache; ufuncs don't
            np.maximum(out, -self.ceiling, out=out)


class Plan:
    """Ordered steps bound to preallocated buffers; ``run_block`` computes one block.

    Made by :func:`neuralgraph.compiler.build_plan`. Everything ``run_block`` touches was
    allocated when the plan was built.
    """

    def __init__(
        self,
        *,
        sample_rate: float,
        block_size: int,
        nodes: Mapping[str, Node],
        steps: list[Step],
        step_names: list[str],
        bypass: list[Step],
        output: np.ndarray,
        input: np.ndarray | None,
        midi: EventBuffer,
        latency: int,
        buffer_count: int,
        slab_bytes: int,
        ceiling: float,
        resettable: list[object],
        order: tuple[str, ...],
        slab: np.ndarray | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.block_size = block_size
        self.nodes = dict(nodes)
        self.steps = steps
        self.step_names = step_names
        self._bypass = bypass
        self.output = output
        self.input = input
        self.midi = midi
        self.latency = latency
        self.buffer_count = buffer_count
        self.slab_bytes = slab_bytes
        self.order = order
        self.slab = slab
        self.guard = OutputGuard(output.shape, ceiling)
        self._resettable = resettable
        self.bypassed = [False] * len(steps)
        self.fault_step = np.full(FAULT_SLOTS, -1, np.int32)
        self.fault_error: list[BaseException | None] = [None] * FAULT_SLOTS
        self.fault_count = 0

    @property
    def channels(self) -> int:
        return int(self.output.shape[0])

    def run_block(self) -> np.ndarray:
        """Run every step once; return the output buffer (channels, block_size), reused per call."""
        frames = self.block_size
        steps = self.steps
        i = 0
        for process, ins, outs in steps:
            try:
                process(ins, outs, frames)
            except Exception as exc:  # contain the fault: bypass this step from now on
                self._fault(i, exc)
            i += 1
        self.midi.count = 0
        self.guard.apply(self.output)
        return self.output

    def _fault(self, index: int, exc: BaseException) -> None:
        slot = self.fault_count % FAULT_SLOTS
        self.fault_step[slot] = index
        self.fault_error[slot] = exc
        self.fault_count += 1
        self.bypassed[index] = True
        self.steps[index] = self._bypass[index]
        process, ins, outs = self.steps[index]
        try:
            process(ins, outs, self.block_size)
        except Exception:  # pragma: no cover - the bypass only fills buffers
            pass

    def reset(self) -> None:
        """Reset every node and compiler step (control thread, not while a block runs)."""
        for node in self.nodes.values():
            node.reset()
        for item in self._resettable:
            item.reset()
        if self.slab is not None:
            self.slab.fill(0.0)  # every wire, including feedback buffers holding the last block
        self.midi.count = 0
        self.guard.non_finite = self.guard.clipped = 0
        self.guard.peak = 0.0

    def describe(self) -> str:
        """The order, buffers and latency, as ``neuralgraph check`` prints them."""
        lines = [f"order ({len(self.order)} nodes): " + " -> ".join(self.order)]
        lines.append(f"steps: {len(self.steps)} ({len(self.steps) - len(self.order)} emitted by the compiler)")
        lines.append(f"buffers: {self.buffer_count} in one slab of {self.slab_bytes} bytes")
        lines.append(f"latency: {self.latency} samples ({1000.0 * self.latency / self.sample_rate:.2f} ms)")
        lines.append(f"output: {self.channels} channels at {self.sample_rate:g} Hz, block {self.block_size}")
        return "\n".join(lines)
