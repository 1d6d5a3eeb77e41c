"""``tutorial.lowpass``: a one-pole low-pass filter in a compiled per-sample kernel.

Per lane, y[n] = y[n-1] + a * (x[n] - y[n-1]) with a = 1 - exp(-2*pi*cutoff/sample_rate).
A change of ``cutoff`` glides: the coefficient moves towards its new value by a fraction
``glide`` of the distance every sample, so the filter never jumps (no zipper noise).
"""

from __future__ import annotations

import math

import numpy as np

from neuralgraph.plugin import Input, Node, Output, Param, Ports, PrepareContext, hookimpl, njit


@njit(cache=True, nogil=True)
def _lowpass(x, y, coef, glide, out, frames):  # module level: the compiler imports it by name
    """One block: ``y`` holds each lane's last output, ``coef`` = [current a, target a]."""
    a = coef[0]
    for lane in range(out.shape[0]):
        a = coef[0]  # every lane glides the same way from the block's starting coefficient
        s = y[lane]
        for i in range(frames):
            a += glide[0] * (coef[1] - a)
            v = x[lane, i]
            if not abs(v) < np.inf:  # NaN or Inf in: treated as 0, so the state stays finite
                v = 0.0
            s += a * (v - s)
            if abs(s) < 1e-30:  # no subnormals in the state: they are slow on most CPUs
                s = 0.0
            out[lane, i] = s
        y[lane] = s
    coef[0] = a


class OnePoleLowpass(Node):
    """One-pole low-pass (6 dB/octave); a cutoff change glides over ``smooth_ms``."""

    type_name = "tutorial.lowpass"
    bypass = "thru"  # if it ever faults, the dry signal plays on

    in_ = Input(doc="The signal to filter.")
    out = Output(doc="The filtered signal.")
    cutoff = Param(init=1000.0, min=1.0, max=20000.0, unit="Hz", doc="-3 dB frequency.")
    smooth_ms = Param(
        init=10.0, min=0.0, max=1000.0, unit="ms", doc="Time constant of the glide after a cutoff change; 0 = at once."
    )

    def prepare(self, ctx: PrepareContext) -> None:
        self.sample_rate = ctx.sample_rate
        self.y = np.zeros(ctx.lanes, np.float64)  # state: each lane's last output
        # arrays, not attributes: a fused kernel binds arrays by address and sees on_param's writes
        self.coef = np.zeros(2, np.float64)  # [current a, target a]
        self.glide = np.zeros(1, np.float64)
        self.on_param("smooth_ms")
        self.on_param("cutoff")
        self.reset()

    def on_param(self, name: str) -> None:
        # audio thread: compute and write into the arrays, never allocate them
        if name == "cutoff":
            fc = min(self.cutoff, 0.49 * self.sample_rate)
            self.coef[1] = 1.0 - math.exp(-2.0 * math.pi * fc / self.sample_rate)
        elif name == "smooth_ms":
            ms = self.smooth_ms
            self.glide[0] = 1.0 if ms <= 0.0 else 1.0 - math.exp(-1000.0 / (ms * self.sample_rate))

    def reset(self) -> None:
        self.y.fill(0.0)
        self.coef[0] = self.coef[1]  # start at the set cutoff: nothing to glide from

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        _lowpass(ins.in_, self.y, self.coef, self.glide, outs.out, frames)

    def kernel(self, ins: Ports, outs: Ports):
        return _lowpass, (ins.in_, self.y, self.coef, self.glide, outs.out)


@hookimpl
def ng_register_nodes(register) -> None:
    register(OnePoleLowpass)
