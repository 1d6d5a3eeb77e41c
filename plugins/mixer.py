"""A mixer with a gain per input."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from neuralgraph.plugin import Input, Node, Output, Param, Ports, PrepareContext, hookimpl


class Mix(Node):
    """Sums ``count`` signals, each scaled by its own gain, then by ``level``.

    Ports ``in_1`` … ``in_N`` and ``gain_1`` … ``gain_N`` appear according to ``count``.
    """

    type_name = "mix"
    count = Param(init=4, kind=int, min=1, max=64, live=False, doc="Number of inputs.")
    level = Input(init=1.0, doc="Overall gain, linear.")
    out = Output(doc="The weighted sum.")

    def inputs(self) -> Mapping[str, Input]:
        ports: dict[str, Input] = {}
        for i in range(1, self.count + 1):
            ports[f"in_{i}"] = Input(init=0.0, doc=f"Input {i}.")
            ports[f"gain_{i}"] = Input(init=1.0, doc=f"Gain of input {i}, linear.")
        ports["level"] = type(self).level
        return ports

    def prepare(self, ctx: PrepareContext) -> None:
        self.scratch = np.zeros((ctx.lanes, ctx.block_size), np.float32)
        self.pairs = [(f"in_{i}", f"gain_{i}") for i in range(1, self.count + 1)]

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        out, scratch = outs.out, self.scratch
        out.fill(0.0)
        for signal, gain in self.pairs:
            np.multiply(ins[signal], ins[gain], out=scratch)
            np.add(out, scratch, out=out)
        np.multiply(out, ins.level, out=out)


@hookimpl
def ng_register_nodes(register) -> None:
    register(Mix)
