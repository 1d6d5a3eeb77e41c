"""The patch's audio output and input."""

from __future__ import annotations

import numpy as np

from neuralgraph.plugin import Input, Node, Output, Param, Ports, hookimpl


class AudioOutput(Node):
    """The patch's output: what is written to the file or played by the backend.

    A 1-lane signal is copied to every channel; otherwise lanes must match ``channels``.
    """

    type_name = "io.output"
    role = "output"
    bypass = "thru"
    channels = Param(init=2, kind=int, min=1, max=64, live=False, doc="Output channels.")
    in_ = Input(init=0.0, doc="The signal to output.")
    out = Output(doc="The output channels (read by the engine).")

    def fixed_lanes(self) -> int:
        return self.channels

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        np.copyto(outs.out, ins.in_)

    def kernel(self, ins: Ports, outs: Ports):
        from neuralgraph.plugin import copy_kernel

        return copy_kernel, (ins.in_, outs.out)


class AudioInput(Node):
    """Audio coming in: from the backend's inputs, or from a file with ``render --input``."""

    type_name = "io.input"
    role = "input"
    channels = Param(init=2, kind=int, min=1, max=64, live=False, doc="Input channels.")
    out = Output(doc="The input channels.")

    def fixed_lanes(self) -> int:
        return self.channels

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        pass  # the engine writes the incoming block straight into this node's output buffer


@hookimpl
def ng_register_nodes(register) -> None:
    register(AudioOutput)
    register(AudioInput)
