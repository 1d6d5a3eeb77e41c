"""Oscillators: phase-accumulating sine and a band-limited (PolyBLEP) sawtooth."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from neuralgraph.plugin import Input, Node, Output, Ports, PrepareContext, hookimpl

TWO_PI = 2.0 * math.pi


class PhaseAccumulator:
    """Per-lane phase in cycles, advanced by a frequency signal without per-sample Python."""

    def prepare(self, ctx: PrepareContext) -> None:
        self.inv_sr = 1.0 / ctx.sample_rate
        self.phase = np.zeros((ctx.lanes, 1), np.float64)
        self.ramp = np.zeros((ctx.lanes, ctx.block_size), np.float64)
        self.last = self.ramp[:, -1:]

    def advance(self, freq: np.ndarray) -> np.ndarray:
        """Phases of this block (in [0, 1)) for ``freq`` in Hz; the state moves on."""
        ph = self.ramp
        np.multiply(freq, self.inv_sr, out=ph)
        np.cumsum(ph, axis=1, out=ph)
        np.add(ph, self.phase, out=ph)
        np.remainder(ph, 1.0, out=ph)
        np.copyto(self.phase, self.last)
        return ph

    def reset(self) -> None:
        self.phase.fill(0.0)


class SineOsc(Node):
    """Sine oscillator; frequency is an audio input, so it can be modulated (FM)."""

    type_name = "osc.sine"
    freq = Input(init=440.0, min=-100000.0, max=100000.0, unit="Hz", doc="Frequency; negative runs backwards.")
    out = Output(span=(-1.0, 1.0), doc="The sine, -1..1.")

    def prepare(self, ctx: PrepareContext) -> None:
        self.acc = PhaseAccumulator()
        self.acc.prepare(ctx)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        ph = self.acc.advance(ins.freq)
        np.multiply(ph, TWO_PI, out=ph)
        np.sin(ph, out=outs.out)

    def reset(self) -> None:
        self.acc.reset()


@njit(cache=True, nogil=True)
def _saw_polyblep(freq, phase, inv_sr, out):  # pragma: no cover - compiled
    lanes, frames = out.shape
    for lane in range(lanes):
        p = phase[lane]
        for i in range(frames):
            dt = freq[lane, i] * inv_sr
            value = 2.0 * p - 1.0
            step = abs(dt)
            if step > 0.0:
                if p < step:  # just after the reset
                    t = p / step
                    value -= t + t - t * t - 1.0
                elif p > 1.0 - step:  # just before the reset
                    t = (p - 1.0) / step
                    value -= t * t + t + t + 1.0
            out[lane, i] = value
            p += dt
            p -= math.floor(p)
        phase[lane] = p


class SawOsc(Node):
    """Band-limited sawtooth (PolyBLEP), rising from -1 to 1; audio-rate frequency input."""

    type_name = "osc.saw"
    freq = Input(init=220.0, min=-100000.0, max=100000.0, unit="Hz", doc="Frequency.")
    out = Output(span=(-1.0, 1.0), doc="The sawtooth, -1..1.")

    def prepare(self, ctx: PrepareContext) -> None:
        self.inv_sr = 1.0 / ctx.sample_rate
        self.phase = np.zeros(ctx.lanes, np.float64)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        _saw_polyblep(ins.freq, self.phase, self.inv_sr, outs.out)

    def reset(self) -> None:
        self.phase.fill(0.0)


@hookimpl
def ng_register_nodes(register) -> None:
    register(SineOsc)
    register(SawOsc)
