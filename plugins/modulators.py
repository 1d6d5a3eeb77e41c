"""Modulators: ``lfo``, ``control.smooth`` (one-pole lag) and ``control.slew`` (rate limiter)."""

from __future__ import annotations

import math

import numpy as np

from neuralgraph.plugin import Input, Node, Output, Param, Ports, PrepareContext, hookimpl, njit

SHAPES = ("sine", "triangle", "saw", "square", "sample_hold")
TWO_PI = 2.0 * math.pi


@njit(cache=True, nogil=True)
def _next_random(state, lane):  # pragma: no cover - compiled
    """xorshift64* step on ``state[lane]``; returns a value uniform in [-1, 1)."""
    x = state[lane]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[lane] = x
    r = (x * np.uint64(2685821657736338717)) >> np.uint64(11)  # top 53 bits
    return 2.0 * (r * (1.0 / 9007199254740992.0)) - 1.0


@njit(cache=True, nogil=True)
def _lfo(rate, sync, out, frames, shape, inv_sr, start, phase, held, rng, prev_sync):  # pragma: no cover
    lanes = out.shape[0]
    frames = min(frames, out.shape[1])
    for lane in range(lanes):
        p = phase[lane]
        h = held[lane]
        was_high = prev_sync[lane] != 0
        for i in range(frames):
            high = sync[lane, i] > 0.5
            if high and not was_high:  # a rising sync edge restarts the cycle on this frame
                p = start
                if shape == 4:
                    h = _next_random(rng, lane)
            was_high = high
            if shape == 0:
                v = math.sin(TWO_PI * p)
            elif shape == 1:  # starts at 0 rising, like the sine
                if p < 0.25:
                    v = 4.0 * p
                elif p < 0.75:
                    v = 2.0 - 4.0 * p
                else:
                    v = 4.0 * p - 4.0
            elif shape == 2:
                v = 2.0 * p - 1.0
            elif shape == 3:
                v = 1.0 if p < 0.5 else -1.0
            else:
                v = h
            out[lane, i] = v
            dt = rate[lane, i] * inv_sr
            if not math.isfinite(dt):
                dt = 0.0
            p += dt
            if p >= 1.0 or p < 0.0:
                p -= math.floor(p)
                if shape == 4:  # a new random value at each new cycle
                    h = _next_random(rng, lane)
        phase[lane] = p
        held[lane] = h
        prev_sync[lane] = 1 if was_high else 0


class LFO(Node):
    """Low-frequency oscillator: sine, triangle, saw, square or seeded sample-and-hold, -1..1.

    Every lane starts at ``phase`` (the sine and triangle at 0 rising, the saw at -1, the square
    at +1). Sample-and-hold draws a new value uniform in [-1, 1) at each cycle, from a xorshift
    generator seeded by ``seed`` and the lane index, so renders are repeatable. A rising edge
    on ``sync`` (crossing above 0.5, e.g. a voice's gate) restarts the cycle at ``phase`` on
    its frame, and draws a new sample-and-hold value.
    """

    type_name = "lfo"
    rate = Input(init=1.0, min=-1000.0, max=1000.0, unit="Hz", doc="Cycles per second (audio-rate).")
    sync = Input(init=0.0, min=0.0, max=1.0, doc="A rising edge (above 0.5) restarts the cycle at `phase`.")
    out = Output(span=(-1.0, 1.0), doc="The modulation, -1..1.")
    shape = Param(init="sine", kind=str, choices=SHAPES, doc="Waveform.")
    phase = Param(init=0.0, min=0.0, max=1.0, live=False, doc="Starting phase in cycles (after reset too).")
    seed = Param(init=1, kind=int, min=0, max=2**31 - 1, live=False, doc="Seed of the sample-and-hold generator.")

    def prepare(self, ctx: PrepareContext) -> None:
        lanes = ctx.lanes
        self.inv_sr = 1.0 / float(ctx.sample_rate)
        self.phase_state = np.zeros(lanes, np.float64)
        self.held = np.zeros(lanes, np.float64)
        self.rng = np.zeros(lanes, np.uint64)
        self.prev_sync = np.zeros(lanes, np.int64)
        self.shape_index = SHAPES.index(self.shape)
        self.reset()

    def on_param(self, name: str) -> None:
        if name == "shape":
            self.shape_index = SHAPES.index(self.shape)

    def reset(self) -> None:
        self.phase_state.fill(self.phase)
        self.prev_sync.fill(0)
        for lane in range(self.rng.shape[0]):
            # splitmix-style spread so neighbouring seeds and lanes give unrelated sequences
            self.rng[lane] = np.uint64(
                (self.seed * 0x9E3779B97F4A7C15 + (lane + 1) * 0xBF58476D1CE4E5B9) % (2**64)
            ) | np.uint64(1)
            self.held[lane] = _next_random(self.rng, lane)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        _lfo(
            ins.rate,
            ins.sync,
            outs.out,
            frames,
            self.shape_index,
            self.inv_sr,
            self.phase,
            self.phase_state,
            self.held,
            self.rng,
            self.prev_sync,
        )


@njit(cache=True, nogil=True, inline="always")
def _follow_input(v, y, primed, lane):  # pragma: no cover - compiled
    """A follower's next input ``v`` and its output so far ``y``: a NaN or infinite input holds
    the output, and the first value is taken as is (no glide in from 0 at start)."""
    if not math.isfinite(v):
        v = y if primed[lane] else 0.0
    if not primed[lane]:
        y = v
        primed[lane] = 1
    return v, y


@njit(cache=True, nogil=True)
def _smooth(x, out, frames, coef, state, primed):  # pragma: no cover - compiled
    lanes = out.shape[0]
    frames = min(frames, out.shape[1])
    for lane in range(lanes):
        y = state[lane]
        for i in range(frames):
            v, y = _follow_input(x[lane, i], y, primed, lane)
            y += (v - y) * coef
            if -1e-30 < y < 1e-30:  # flush the decaying tail before it turns subnormal
                y = 0.0
            out[lane, i] = y
        state[lane] = y


class _Follower(Node):
    """A per-lane follower of its input (``state``), primed by the first value it sees so nothing
    glides in from 0; its coefficients come from :meth:`on_param`, called for every parameter."""

    def prepare(self, ctx: PrepareContext) -> None:
        self.sample_rate = float(ctx.sample_rate)
        self.state = np.zeros(ctx.lanes, np.float64)
        self.primed = np.zeros(ctx.lanes, np.int64)
        for name in type(self).params():
            self.on_param(name)

    def reset(self) -> None:
        self.state.fill(0.0)
        self.primed.fill(0)


class Smooth(_Follower):
    """One-pole lag: removes steps from a control signal (zipper noise) with time constant ``time_ms``.

    After ``time_ms`` a step has covered 63.2 % of its height, after 2.2 × ``time_ms`` 90 %.
    The first value after prepare or reset is passed through, so nothing glides in from 0.
    """

    type_name = "control.smooth"
    in_ = Input(init=0.0, doc="The signal to smooth.")
    out = Output(span=(-1.0, 1.0), doc="The smoothed signal.")
    time_ms = Param(init=20.0, min=0.0, max=60000.0, unit="ms", doc="Time constant (0 passes through).")

    def on_param(self, name: str) -> None:
        samples = self.time_ms * self.sample_rate / 1000.0
        self.coef = 1.0 if samples <= 0.0 else 1.0 - math.exp(-1.0 / samples)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        _smooth(ins.in_, outs.out, frames, self.coef, self.state, self.primed)


@njit(cache=True, nogil=True)
def _slew(x, out, frames, rise, fall, state, primed):  # pragma: no cover - compiled
    lanes = out.shape[0]
    frames = min(frames, out.shape[1])
    for lane in range(lanes):
        y = state[lane]
        for i in range(frames):
            v, y = _follow_input(x[lane, i], y, primed, lane)
            d = v - y
            if d > rise:
                d = rise
            elif d < -fall:
                d = -fall
            y += d
            out[lane, i] = y
        state[lane] = y


class Slew(_Follower):
    """Slew limiter: follows its input but moves at most ``rise_per_s`` up and ``fall_per_s`` down per second.

    A step of height h becomes a straight ramp lasting h / rate seconds (portamento, click-free gates).
    """

    type_name = "control.slew"
    in_ = Input(init=0.0, doc="The signal to limit.")
    out = Output(span=(-1.0, 1.0), doc="The slew-limited signal.")
    rise_per_s = Param(init=10.0, min=0.0, max=1e9, unit="1/s", doc="Largest rise per second (input units).")
    fall_per_s = Param(init=10.0, min=0.0, max=1e9, unit="1/s", doc="Largest fall per second (input units).")

    def on_param(self, name: str) -> None:
        self.rise = self.rise_per_s / self.sample_rate
        self.fall = self.fall_per_s / self.sample_rate

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        _slew(ins.in_, outs.out, frames, self.rise, self.fall, self.state, self.primed)


@hookimpl
def ng_register_nodes(register) -> None:
    register(LFO)
    register(Smooth)
    register(Slew)
