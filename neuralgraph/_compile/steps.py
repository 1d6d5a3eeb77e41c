"""Steps the compiler emits around nodes: input mixing/mapping, delays, feedback and bypass.

Each has the node signature ``process(ins, outs, frames)`` so the plan runs every step the same
way. All state is allocated in the constructor; ``process`` never allocates.
"""

from __future__ import annotations

import attrs
import numpy as np

from neuralgraph._compile.inline import Inline, mix_inline
from neuralgraph._nodes.mapping import apply_mapping, mapping_transform
from neuralgraph._nodes.node import Ports


@attrs.define
class Term:
    """One source feeding an input: its buffer and how to transform it.

    ``scale``/``offset`` map the source's span linearly (``exp`` then exponentiates, for exp
    curves, with the argument clamped to the range); ``ramp`` turns a control signal into a
    linear ramp across the block; ``view`` is the source buffer already sliced and broadcast to
    the destination's shape.
    """

    view: np.ndarray
    scale: float = 1.0
    offset: float = 0.0
    exp: bool = False
    clamp: tuple[float, float] | None = None
    ramp: bool = False


class MixStep:
    """Computes one input as ``constant + sum(transform(term))`` into its own buffer.

    Every operation keeps its operands the same shape: numpy allocates an iteration buffer
    (up to 32 KB) for a ufunc whose operand is broadcast with a zero stride, so broadcast
    sources are first copied (``np.copyto`` does not buffer) and control-to-audio ramps are one
    matrix product ``[delta, previous] @ [ramp; ones]``.
    """

    def __init__(self, terms: list[Term], constant: float, shape: tuple[int, int], block_size: int) -> None:
        lanes, width = shape
        self.terms = terms
        self.constant = np.float32(constant)
        self.scratch = np.zeros(shape, np.float32)
        # per ramped term: column 0 = this block's change, column 1 = the previous value
        self.ramp_state = [np.zeros((lanes, 2), np.float32) if t.ramp else None for t in terms]
        self.ramp_basis = np.ones((2, width), np.float32)
        self.ramp_basis[0] = np.arange(1, width + 1, dtype=np.float32) / np.float32(width)
        self.identity = [t.scale == 1.0 and t.offset == 0.0 and not t.exp and not t.ramp for t in terms]
        self.copy_only = len(terms) == 1 and self.identity[0] and constant == 0.0

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        out = outs.out
        if self.copy_only:  # a lane broadcast (1 -> N) made real
            np.copyto(out, self.terms[0].view)
            return
        out.fill(self.constant)
        scratch = self.scratch
        i = 0
        for term in self.terms:
            source = term.view
            state = self.ramp_state[i]
            if state is not None:
                delta, previous = state[:, 0:1], state[:, 1:2]
                np.add(previous, delta, out=previous)  # last block's target is this block's start
                np.subtract(source, previous, out=delta)
                np.matmul(state, self.ramp_basis, out=scratch)
                source = scratch
            elif source.shape != out.shape or 0 in source.strides:
                np.copyto(scratch, source)
                source = scratch
            # the same code as the map.range node, so both map bit-identically
            source = apply_mapping(source, term.scale, term.offset, term.clamp if term.exp else None, scratch)
            np.add(out, source, out=out)
            i += 1

    def kernel(self, ins: Ports, outs: Ports) -> Inline | None:
        """The step as source lines for a fused function (``inline.mix_inline``): any number
        of terms, mappings, exp curves, ramps and broadcasts, in one pass over the block."""
        return mix_inline(self.terms, self.constant, self.ramp_state, self.ramp_basis, outs.out, self.copy_only)

    def reset(self) -> None:
        for state in self.ramp_state:
            if state is not None:
                state.fill(0.0)


def mapping_coefficients(span: tuple[float, float], rng: tuple[float, float], curve: str) -> Term:
    """The Term transform mapping ``span`` onto ``rng`` (view filled in by the caller)."""
    scale, offset, clamp = mapping_transform(span, rng, curve)
    return Term(view=np.zeros(0), scale=scale, offset=offset, exp=clamp is not None, clamp=clamp)


class DelayStep:
    """Delays a signal by a whole number of samples (latency compensation), per lane."""

    def __init__(self, delay: int, lanes: int, block_size: int) -> None:
        self.delay = delay
        self.length = delay + block_size
        self.line = np.zeros((lanes, self.length), np.float32)
        self.write = 0

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        line, length = self.line, self.length
        src, out = ins.in_, outs.out
        w = self.write
        first = min(frames, length - w)
        line[:, w : w + first] = src[:, :first]
        if first < frames:
            line[:, : frames - first] = src[:, first:]
        r = (w - self.delay) % length
        first = min(frames, length - r)
        out[:, :first] = line[:, r : r + first]
        if first < frames:
            out[:, first:] = line[:, : frames - first]
        self.write = (w + frames) % length

    def reset(self) -> None:
        self.line.fill(0.0)
        self.write = 0


class ControlDelayStep(DelayStep):
    """Delays a control signal (one value per block) by the whole number of blocks nearest to the
    latency in samples it compensates: a control value cannot move by part of a block."""

    def __init__(self, delay: int, lanes: int, block_size: int) -> None:
        super().__init__(round(delay / block_size), lanes, 1)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        super().process(ins, outs, 1 if frames else 0)


class CopyStep:
    """Copies a buffer into a persistent one (feedback edges: read next block).

    Given the buffer's ``shape``, it also turns NaN and Inf into 0 (as VCV Rack does on every
    cable), so that one bad value cannot circulate around a feedback loop for ever.
    """

    def __init__(self, shape: tuple[int, int] | None = None) -> None:
        self.mask = None if shape is None else np.zeros(shape, bool)
        self.zero = np.zeros((), np.float32)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        out, mask = outs.out, self.mask
        np.copyto(out, ins.in_)
        if mask is not None:
            np.isfinite(out, out=mask)
            if not mask.all():
                np.logical_not(mask, out=mask)
                np.copyto(out, self.zero, where=mask)


class BypassStep:
    """What a faulted node runs instead: silence, or its first audio input passed through."""

    def __init__(self, thru: np.ndarray | None) -> None:
        self.thru = thru

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        first = True
        for name in outs:
            out = outs[name]
            if isinstance(out, np.ndarray):
                if first and self.thru is not None and self.thru.shape == out.shape:
                    np.copyto(out, self.thru)
                else:
                    out.fill(0.0)
                first = False
            else:  # an event buffer
                out.clear()
