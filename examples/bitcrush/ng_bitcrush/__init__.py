"""``fx.bitcrush``: reduces bit depth, the grainy sound of early samplers."""

from __future__ import annotations

import numpy as np

from neuralgraph.plugin import Input, Node, Output, Param, Ports, PrepareContext, hookimpl


class BitCrush(Node):
    """Quantises its input to ``bits`` bits, blended with the dry signal by ``mix``."""

    type_name = "fx.bitcrush"
    bypass = "thru"  # if it ever faults, the dry signal plays on

    in_ = Input(doc="The signal to crush.")
    mix = Input(init=1.0, min=0.0, max=1.0, doc="0 = dry, 1 = fully crushed.")
    out = Output(doc="The crushed signal.")
    bits = Param(init=8, kind=int, min=1, max=24, doc="Bit depth.")

    def prepare(self, ctx: PrepareContext) -> None:
        # every buffer is made here; process() only writes into them
        self.wet = np.zeros((ctx.lanes, ctx.block_size), np.float32)
        self.on_param("bits")

    def on_param(self, name: str) -> None:
        # called after `bits` changes while playing: recompute, don't allocate arrays
        self.steps = np.float32(2 ** (self.bits - 1))

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        wet, out = self.wet, outs.out
        np.multiply(ins.in_, self.steps, out=wet)  # round(x * steps) / steps
        np.rint(wet, out=wet)
        np.divide(wet, self.steps, out=wet)
        np.subtract(wet, ins.in_, out=wet)  # out = dry + mix * (wet - dry)
        np.multiply(wet, ins.mix, out=wet)
        np.add(ins.in_, wet, out=out)


@hookimpl
def ng_register_nodes(register) -> None:
    register(BitCrush)
