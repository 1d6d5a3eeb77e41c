"""Control mappers: ``map.range``, ``map.midi_to_hz``, ``map.db_to_gain``, ``map.quantize``, ``map.clamp``.

All are stateless, vectorised over lanes and frames, and write with ``out=`` only.
``map.range`` uses the very code of the inline ``{ from, range, curve }`` mapping of a patch
input (:func:`neuralgraph.plugin.mapping_transform` and :func:`neuralgraph.plugin.apply_mapping`),
so a node and an inline mapping with the same ranges give bit-identical results.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from neuralgraph.plugin import (
    Input,
    Node,
    Output,
    Param,
    Ports,
    PrepareContext,
    apply_mapping,
    dense,
    hookimpl,
    mapping_transform,
)

LN10_OVER_20 = math.log(10.0) / 20.0


class MapRange(Node):
    """Maps ``[in_lo, in_hi]`` onto ``[out_lo, out_hi]``, linearly or exponentially.

    ``lin`` is the straight line through both end points (values outside extrapolate).
    ``exp`` is linear in the logarithm of the output (equal ratios for equal input steps, as
    pitch and cutoff want); ``out_lo`` and ``out_hi`` must then be > 0 and the output is held
    within them.
    """

    type_name = "map.range"
    in_ = Input(init=0.0, doc="The value to map.")
    out = Output(span=(0.0, 1.0), doc="The mapped value.")
    in_lo = Param(init=0.0, doc="Input value mapped to out_lo.")
    in_hi = Param(init=1.0, doc="Input value mapped to out_hi.")
    out_lo = Param(init=0.0, doc="Output at in_lo.")
    out_hi = Param(init=1.0, doc="Output at in_hi.")
    curve = Param(init="lin", kind=str, choices=("lin", "exp"), doc="Straight, or exponential (log-linear).")

    def outputs(self) -> Mapping[str, Output]:
        # The span is the output range, so an inline mapping from this node sees the right ends.
        return {"out": Output(span=(self.out_lo, self.out_hi), doc="The mapped value.")}

    def _problem(self) -> str | None:
        if self.in_lo == self.in_hi:
            return f"in_lo and in_hi must differ (both are {self.in_lo:g})"
        if self.curve == "exp" and (self.out_lo <= 0.0 or self.out_hi <= 0.0):
            return f"an exp curve needs out_lo and out_hi > 0 (got {self.out_lo:g}, {self.out_hi:g})"
        scale, offset, _ = mapping_transform((self.in_lo, self.in_hi), (self.out_lo, self.out_hi), self.curve)
        if not (abs(scale) < 1e30 and abs(offset) < 1e30):  # float32 would turn them into inf, 0 * inf into NaN
            return f"in_lo and in_hi are too close for a finite mapping ({self.in_lo:g}, {self.in_hi:g})"
        return None

    def prepare(self, ctx: PrepareContext) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(problem)
        self.scratch = np.zeros((ctx.lanes, ctx.block_size), np.float32)
        self._update()

    def _update(self) -> None:
        self.scale, self.offset, self.clamp = mapping_transform(
            (self.in_lo, self.in_hi), (self.out_lo, self.out_hi), self.curve
        )

    def on_param(self, name: str) -> None:
        # An impossible combination set live keeps the last valid mapping (the audio thread must not raise).
        if self._problem() is None:
            self._update()

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        out = outs.out
        result = apply_mapping(dense(ins.in_, self.scratch), self.scale, self.offset, self.clamp, out)
        if result is not out:
            np.copyto(out, result)


class MidiToHz(Node):
    """MIDI note number (fractional allowed) to frequency: ``tuning × 2^((note − 69) / 12)``."""

    type_name = "map.midi_to_hz"
    in_ = Input(init=69.0, unit="note", doc="MIDI note number; 69 is A4, 60 middle C.")
    out = Output(span=(8.175799, 12543.854), unit="Hz", doc="Frequency of notes 0..127 at 440 Hz tuning.")
    tuning = Param(init=440.0, min=1.0, max=2000.0, unit="Hz", doc="Frequency of note 69 (A4).")

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        out = outs.out
        np.copyto(out, ins.in_)  # then in place: a broadcast operand would make numpy buffer
        np.subtract(out, 69.0, out=out)
        np.multiply(out, 1.0 / 12.0, out=out)
        np.minimum(out, 100.0, out=out)  # notes far above 1200 would overflow float32 to inf
        np.exp2(out, out=out)
        np.multiply(out, self.tuning, out=out)


class DbToGain(Node):
    """Decibels to a linear gain: ``10^(dB / 20)``; at or below ``floor_db`` exactly 0."""

    type_name = "map.db_to_gain"
    in_ = Input(init=0.0, unit="dB", doc="Level in dB.")
    out = Output(span=(0.0, 1.0), doc="Linear gain (1 at 0 dB).")
    floor_db = Param(init=-120.0, min=-1000.0, max=0.0, unit="dB", doc="Levels at or below this are silence.")

    def prepare(self, ctx: PrepareContext) -> None:
        self.mask = np.zeros((ctx.lanes, ctx.block_size), bool)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        out, mask = outs.out, self.mask
        np.copyto(out, ins.in_)
        np.less_equal(out, self.floor_db, out=mask)
        np.multiply(out, LN10_OVER_20, out=out)
        np.minimum(out, 88.0, out=out)  # above ~764 dB float32 overflows to inf
        np.exp(out, out=out)
        np.copyto(out, 0.0, where=mask)


class Quantize(Node):
    """Snaps a signal to a grid: ``offset + step × round((x − offset) / step)`` (or floor / ceil).

    With ``step = 1`` on MIDI note numbers it makes semitones; ``step = 0.125`` on a 0..1
    control makes 9 levels.
    """

    type_name = "map.quantize"
    in_ = Input(init=0.0, doc="The value to quantize.")
    out = Output(span=(-1.0, 1.0), doc="The value on the grid.")
    step = Param(init=1.0, min=1e-9, doc="Grid spacing.")
    offset = Param(init=0.0, doc="A point of the grid.")
    mode = Param(init="round", kind=str, choices=("round", "floor", "ceil"), doc="Nearest, below or above.")

    _FUNCS = {"round": np.rint, "floor": np.floor, "ceil": np.ceil}

    def prepare(self, ctx: PrepareContext) -> None:
        self.on_param("mode")

    def on_param(self, name: str) -> None:
        self.func = self._FUNCS[self.mode]
        self.inv_step = 1.0 / self.step

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        out = outs.out
        np.copyto(out, ins.in_)
        np.subtract(out, self.offset, out=out)
        np.multiply(out, self.inv_step, out=out)
        self.func(out, out=out)
        np.multiply(out, self.step, out=out)
        np.add(out, self.offset, out=out)


class Clamp(Node):
    """Holds a signal within ``[lo, hi]``."""

    type_name = "map.clamp"
    in_ = Input(init=0.0, doc="The value to clamp.")
    out = Output(span=(0.0, 1.0), doc="The clamped value.")
    lo = Param(init=0.0, doc="Lowest output.")
    hi = Param(init=1.0, doc="Highest output (if below lo, lo wins).")

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        out = outs.out
        np.copyto(out, ins.in_)
        np.minimum(out, self.hi, out=out)
        np.maximum(out, self.lo, out=out)


@hookimpl
def ng_register_nodes(register) -> None:
    register(MapRange)
    register(MidiToHz)
    register(DbToGain)
    register(Quantize)
    register(Clamp)
