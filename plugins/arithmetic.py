"""Arithmetic on signals: multiply, add."""

from __future__ import annotations

import numpy as np

from neuralgraph.plugin import Input, Node, Output, Ports, hookimpl


class Mul(Node):
    """Multiplies a signal by a gain (a VCA when the gain is an envelope)."""

    type_name = "math.mul"
    bypass = "thru"
    in_ = Input(init=0.0, doc="The signal.")
    gain = Input(init=1.0, doc="The factor; connect an envelope or LFO to modulate.")
    out = Output(doc="in × gain.")

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        np.multiply(ins.in_, ins.gain, out=outs.out)


class Add(Node):
    """Adds two signals (or a signal and an offset)."""

    type_name = "math.add"
    bypass = "thru"
    a = Input(init=0.0, doc="First term.")
    b = Input(init=0.0, doc="Second term.")
    out = Output(doc="a + b.")

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        np.add(ins.a, ins.b, out=outs.out)


@hookimpl
def ng_register_nodes(register) -> None:
    register(Mul)
    register(Add)
