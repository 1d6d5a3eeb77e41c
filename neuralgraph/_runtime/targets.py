"""What ``Engine.set`` writes to: a live node parameter, or the ramp of an unconnected input.

The compiler hands the engine each unconnected input as a :class:`~neuralgraph._compile.compiler.ConstantInput`
(where its persistent buffer is and what it starts at); the ramp in progress is runtime state
and lives here, applied on the audio thread at a block boundary.
"""

from __future__ import annotations

import numpy as np

from neuralgraph._compile.compiler import ConstantInput
from neuralgraph._nodes.node import Node
from neuralgraph._nodes.ports import Input, Param


class ParamTarget:
    """A live parameter: set on the node at a block boundary, then ``on_param`` is called."""

    def __init__(self, node: Node, name: str, decl: Param) -> None:
        self.node, self.name, self.decl = node, name, decl

    def apply(self, value: float) -> None:
        decl = self.decl
        if decl.kind is float:
            self.node.__dict__[self.name] = value
        elif decl.kind is int:
            self.node.__dict__[self.name] = int(value)
        elif decl.kind is bool:
            self.node.__dict__[self.name] = value != 0.0
        else:  # a string choice, sent as its index
            self.node.__dict__[self.name] = decl.choices[int(value)]
        self.node.on_param(self.name)


class InputRamp:
    """An unconnected input's constant, ramped linearly to its new value over ``ramp_ms``.

    ``active`` is the engine's list of ramps in progress: ``apply`` joins it, the engine drops a
    ramp once ``advance`` returns False.
    """

    def __init__(self, constant: ConstantInput, sample_rate: float, block_size: int, active: list[InputRamp]) -> None:
        self.decl: Input = constant.decl
        self.buffer = constant.buffer  # (lanes, width): every lane carries the same value
        self.value = constant.value
        self.target = 0.0
        self.step = 0.0
        self.remaining = 0
        self.ramping = False
        self.ramp_frames = max(1, int(round(constant.decl.ramp_ms * sample_rate / 1000.0)))
        self.block_size = block_size
        self.index = np.arange(1, block_size + 1, dtype=np.float32)
        self.row = np.zeros(block_size, np.float32)
        self.active = active

    def apply(self, value: float) -> None:
        self.target = value
        self.remaining = self.ramp_frames
        self.step = (value - self.value) / self.ramp_frames
        if not self.ramping:
            self.ramping = True
            self.active.append(self)

    def jump(self, value: float) -> None:
        """Hold ``value`` at once, no ramp (control thread, while no block runs): the buffer is
        filled and a ramp in progress is dropped, as if the engine had been built with it."""
        self.value = self.target = value
        self.step, self.remaining = 0.0, 0
        self.buffer.fill(value)
        if self.ramping:
            self.ramping = False
            self.active.remove(self)

    def advance(self) -> bool:
        """Write this block's part of the ramp; False once the buffer holds the target flat."""
        buf = self.buffer
        frames = self.block_size
        if self.remaining == 0:
            buf.fill(self.target)
            self.ramping = False
            return False
        n = min(self.remaining, frames)
        if buf.shape[1] == 1:  # a control-rate input moves once per block
            self.value = self.target if n == self.remaining else self.value + self.step * frames
            buf.fill(self.value)
        else:
            np.multiply(self.index, self.step, out=self.row)
            np.add(self.row, self.value, out=self.row)
            if n < frames:
                self.row[n:] = self.target
            np.copyto(buf, self.row)
            self.value = self.target if n == self.remaining else self.value + self.step * frames
        self.remaining -= n
        return True

    def take_over(self, old: InputRamp) -> None:
        """Continue ``old``'s value and any ramp in progress: a swap hands an input over to the
        new plan (audio thread, at the switch)."""
        np.copyto(self.buffer, old.buffer)
        self.value, self.target, self.step, self.remaining = old.value, old.target, old.step, old.remaining
        if old.ramping and not self.ramping:
            self.ramping = True
            self.active.append(self)

    def save(self) -> tuple[np.ndarray, float, float, float, int, bool]:
        """The ramp's state, for ``Engine.save_state`` (allocates: control thread)."""
        return self.buffer.copy(), self.value, self.target, self.step, self.remaining, self.ramping

    def load(self, saved: tuple[np.ndarray, float, float, float, int, bool]) -> None:
        """Put back a :meth:`save`; the caller re-lists the ramp as active when it was."""
        buffer, self.value, self.target, self.step, self.remaining, self.ramping = saved
        np.copyto(self.buffer, buffer)
