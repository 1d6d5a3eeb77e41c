"""Arithmetic on signals: multiply, add, subtract, absolute value, minimum, maximum."""

from __future__ import annotations

import numpy as np

from neuralgraph.plugin import Input, Node, Output, Ports, PrepareContext, dense, hookimpl, njit


@njit(cache=True, nogil=True, inline="always")
def _mul_kernel(a, b, out, frames):  # pragma: no cover - compiled
    """``out = a * b`` (float32, the same samples as ``np.multiply``): Mul's kernel for fusion."""
    for lane in range(out.shape[0]):
        for i in range(frames):
            out[lane, i] = a[lane, i] * b[lane, i]


class _Pairwise(Node):
    """Two signals ``a`` and ``b`` combined sample by sample by the numpy ufunc ``op``."""

    op: np.ufunc

    def prepare(self, ctx: PrepareContext) -> None:
        self.scratch = np.zeros((ctx.lanes, ctx.block_size), np.float32)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        out = outs.out
        np.copyto(out, ins.a)  # copy, then in place: numpy buffers a broadcast (1 -> N lanes) operand
        self.op(out, dense(ins.b, self.scratch), out=out)


class Mul(Node):
    """Multiplies a signal by a gain (a VCA when the gain is an envelope)."""

    type_name = "math.mul"
    bypass = "thru"
    in_ = Input(init=0.0, doc="The signal.")
    gain = Input(init=1.0, doc="The factor; connect an envelope or LFO to modulate.")
    out = Output(doc="in × gain.")

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        np.multiply(ins.in_, ins.gain, out=outs.out)

    def kernel(self, ins: Ports, outs: Ports):
        return _mul_kernel, (ins.in_, ins.gain, outs.out)


class Add(Node):
    """Adds two signals (or a signal and an offset)."""

    type_name = "math.add"
    bypass = "thru"
    a = Input(init=0.0, doc="First term.")
    b = Input(init=0.0, doc="Second term.")
    out = Output(doc="a + b.")

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        np.add(ins.a, ins.b, out=outs.out)


class Sub(_Pairwise):
    """Subtracts one signal from another."""

    type_name = "math.sub"
    bypass = "thru"
    a = Input(init=0.0, doc="Minuend.")
    b = Input(init=0.0, doc="Subtrahend.")
    out = Output(doc="a - b.")

    op = np.subtract


class Abs(Node):
    """Absolute value (full-wave rectifier)."""

    type_name = "math.abs"
    bypass = "thru"
    in_ = Input(init=0.0, doc="The signal.")
    out = Output(span=(0.0, 1.0), doc="|in|.")

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        out = outs.out
        np.copyto(out, ins.in_)
        np.abs(out, out=out)


class Min(_Pairwise):
    """The smaller of two signals, sample by sample."""

    type_name = "math.min"
    bypass = "thru"
    a = Input(init=0.0, doc="First signal.")
    b = Input(init=0.0, doc="Second signal.")
    out = Output(doc="min(a, b).")

    op = np.minimum


class Max(_Pairwise):
    """The larger of two signals, sample by sample."""

    type_name = "math.max"
    bypass = "thru"
    a = Input(init=0.0, doc="First signal.")
    b = Input(init=0.0, doc="Second signal.")
    out = Output(doc="max(a, b).")

    op = np.maximum


@hookimpl
def ng_register_nodes(register) -> None:
    register(Mul)
    register(Add)
    register(Sub)
    register(Abs)
    register(Min)
    register(Max)
