"""Gain, panning, waveshaping and a look-ahead limiter: ``fx.gain``, ``fx.pan``, ``fx.waveshape``, ``fx.limiter``."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from neuralgraph.plugin import Input, Node, Output, Param, Ports, PrepareContext, dense, hookimpl, njit

LN10_OVER_20 = math.log(10.0) / 20.0


@njit(cache=True, nogil=True)
def _gain(x, db, out, frames, coef, state, primed):  # pragma: no cover - compiled
    lanes = out.shape[0]
    frames = min(frames, out.shape[1])
    for lane in range(lanes):
        g = state[lane]
        for i in range(frames):
            d = min(db[lane, i], 48.0)  # the declared maximum: a connected +1e6 dB must not give inf
            target = math.exp(d * 0.11512925464970229) if math.isfinite(d) else g
            if not primed[lane]:  # start at the first target: no fade-in at the start
                g = target
                primed[lane] = 1
            g += (target - g) * coef
            v = x[lane, i]
            out[lane, i] = v * g if math.isfinite(v) else 0.0
        state[lane] = g


class Gain(Node):
    """Gain in decibels, smoothed per sample (a one-pole over ``smooth_ms``), so jumps make no click."""

    type_name = "fx.gain"
    bypass = "thru"
    in_ = Input(init=0.0, doc="The signal.")
    gain_db = Input(init=0.0, min=-120.0, max=48.0, unit="dB", doc="Gain; modulatable at audio rate.")
    out = Output(doc="in × 10^(gain_db / 20).")
    smooth_ms = Param(init=5.0, min=0.0, max=1000.0, unit="ms", doc="Time constant of the gain smoothing.")

    def prepare(self, ctx: PrepareContext) -> None:
        self.sample_rate = float(ctx.sample_rate)
        self.state = np.ones(ctx.lanes, np.float64)
        self.primed = np.zeros(ctx.lanes, np.int64)
        self.on_param("smooth_ms")

    def on_param(self, name: str) -> None:
        samples = self.smooth_ms * self.sample_rate / 1000.0
        self.coef = 1.0 if samples <= 0.0 else 1.0 - math.exp(-1.0 / samples)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        _gain(ins.in_, ins.gain_db, outs.out, frames, self.coef, self.state, self.primed)

    def reset(self) -> None:
        self.state.fill(1.0)
        self.primed.fill(0)


class Pan(Node):
    """Equal-power panner: one lane in, two lanes (left, right) out.

    ``left = cos(θ)``, ``right = sin(θ)`` with ``θ = (pan + 1) π / 4``, so left² + right² = 1
    at every position and the centre is −3 dB on each side.
    """

    type_name = "fx.pan"
    in_ = Input(init=0.0, doc="The mono signal.")
    pan = Input(init=0.0, min=-1.0, max=1.0, doc="Position: -1 left, 0 centre, +1 right (clamped).")
    out = Output(doc="Stereo: lane 0 left, lane 1 right.")

    def fixed_lanes(self) -> int:
        return 1

    def output_lanes(self, lanes: int) -> Mapping[str, int]:
        return {"out": 2}

    def prepare(self, ctx: PrepareContext) -> None:
        self.theta = np.zeros((1, ctx.block_size), np.float32)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        theta, out = self.theta, outs.out
        np.copyto(theta, ins.pan)
        np.maximum(theta, -1.0, out=theta)  # not np.clip: it fills internal caches for hundreds of calls
        np.minimum(theta, 1.0, out=theta)
        np.add(theta, 1.0, out=theta)
        np.multiply(theta, math.pi / 4.0, out=theta)
        np.cos(theta, out=out[0:1])
        np.sin(theta, out=out[1:2])
        signal = ins.in_
        np.multiply(out[0:1], signal, out=out[0:1])  # row by row: (2, n) × (1, n) would broadcast
        np.multiply(out[1:2], signal, out=out[1:2])


SHAPES = ("tanh", "clip", "fold")


class Waveshape(Node):
    """Static waveshaper with drive: ``shape(drive × in)``.

    ``tanh`` saturates smoothly; ``clip`` is a hard clip at ±1; ``fold`` reflects everything
    beyond ±1 back inside (a triangle fold), adding bright harmonics as the drive rises.
    Not oversampled: high drive on high notes aliases.
    """

    type_name = "fx.waveshape"
    bypass = "thru"
    in_ = Input(init=0.0, doc="The signal.")
    drive = Input(init=1.0, min=0.0, max=1000.0, doc="Gain before the shaper (linear).")
    out = Output(doc="The shaped signal, -1..1.")
    shape = Param(init="tanh", kind=str, choices=SHAPES, doc="Transfer curve.")

    def prepare(self, ctx: PrepareContext) -> None:
        self.scratch = np.zeros((ctx.lanes, ctx.block_size), np.float32)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        out = outs.out
        np.copyto(out, ins.in_)
        np.multiply(out, dense(ins.drive, self.scratch), out=out)
        shape = self.shape
        if shape == "tanh":
            np.tanh(out, out=out)
        elif shape == "clip":
            np.maximum(out, -1.0, out=out)
            np.minimum(out, 1.0, out=out)
        else:  # fold(x) = 1 - |((x + 1) mod 4) - 2|: identity on [-1, 1], reflected beyond
            np.add(out, 1.0, out=out)
            np.remainder(out, 4.0, out=out)
            np.subtract(out, 2.0, out=out)
            np.abs(out, out=out)
            np.subtract(1.0, out, out=out)


@njit(cache=True, nogil=True, inline="always")
def _window_push(q_idx, q_val, lane, head, tail, n, need, size):  # pragma: no cover - compiled
    """Push gain ``need`` at index ``n`` on the lane's monotonic queue of (index, gain), gains
    increasing, and drop what left the last ``size`` samples: its head is the window minimum.
    Returns the new (head, tail)."""
    qsize = q_idx.shape[1]
    while tail > head and q_val[lane, (tail - 1) % qsize] >= need:
        tail -= 1
    q_idx[lane, tail % qsize] = n
    q_val[lane, tail % qsize] = need
    tail += 1
    while q_idx[lane, head % qsize] <= n - size:
        head += 1
    return head, tail


@njit(cache=True, nogil=True, inline="always")
def _lane_sum(box, lane, count):  # pragma: no cover - compiled
    """The sum of the lane's first ``count`` values."""
    acc = 0.0
    for k in range(count):
        acc += box[lane, k]
    return acc


@njit(cache=True, nogil=True)
def _limiter(
    x, out, frames, ceiling, rel_coef, look, line, pos, q_idx, q_val, q_head, q_tail, count, smooth, box, box_sum
):  # pragma: no cover - compiled
    """Look-ahead limiter: sliding-minimum of the required gain over look+1 samples, an
    instant-attack/exponential-release follower, then a box average over ``look`` samples;
    the signal is delayed by ``look`` so the gain is down before the peak arrives."""
    lanes = out.shape[0]
    frames = min(frames, out.shape[1])
    size = line.shape[1]  # look + 1
    qsize = q_idx.shape[1]
    for lane in range(lanes):
        p = pos[lane]
        head = q_head[lane]
        tail = q_tail[lane]
        n = count[lane]
        r = smooth[lane]
        s = box_sum[lane]
        for i in range(frames):
            v = x[lane, i]
            if not math.isfinite(v):
                v = 0.0
            a = abs(v)
            need = ceiling / a if a > ceiling else 1.0
            head, tail = _window_push(q_idx, q_val, lane, head, tail, n, need, size)
            hold = q_val[lane, head % qsize]
            if hold < r:
                r = hold
            else:
                r += (hold - r) * rel_coef
            # box average of the last `look` follower values (look >= 1)
            slot = n % (size - 1) if size > 1 else 0
            s += r - box[lane, slot]
            box[lane, slot] = r
            g = s / (size - 1) if size > 1 else r
            if g > 1.0:
                g = 1.0
            # delay line: write now, read the sample from `look` frames ago
            line[lane, p] = v
            p += 1
            if p >= size:
                p = 0
            y = line[lane, p] * g
            if y > ceiling:  # float rounding guard; the gain math already keeps |y| <= ceiling
                y = ceiling
            elif y < -ceiling:
                y = -ceiling
            out[lane, i] = y
            n += 1
            if (n & 0xFFFF) == 0:  # re-sum now and then so float error in the running sum cannot build up
                s = _lane_sum(box, lane, size - 1)
        pos[lane] = p
        q_head[lane] = head
        q_tail[lane] = tail
        count[lane] = n
        smooth[lane] = r
        box_sum[lane] = s


class Limiter(Node):
    """Look-ahead peak limiter: the output never exceeds ``ceiling_db``.

    The gain starts falling ``lookahead_ms`` before a peak (a linear fade over that time, so no
    click), reaches exactly what the peak needs when it passes, and recovers with an exponential
    ``release_ms``. The signal is delayed by the look-ahead: the node declares that latency and
    the compiler delays parallel paths to match.
    """

    type_name = "fx.limiter"
    bypass = "thru"
    in_ = Input(init=0.0, doc="The signal.")
    out = Output(doc="The limited signal, delayed by the look-ahead.")
    ceiling_db = Param(init=-1.0, min=-60.0, max=0.0, unit="dB", doc="Largest output level, dBFS.")
    release_ms = Param(init=100.0, min=1.0, max=5000.0, unit="ms", doc="Recovery time constant.")
    lookahead_ms = Param(init=5.0, min=0.1, max=100.0, unit="ms", live=False, doc="Look-ahead (and latency) time.")

    def memory_bytes(self, sample_rate: float, block_size: int, lanes: int) -> int:
        """Four look-ahead-long arrays of 8-byte values per lane."""
        look = max(1, int(round(self.lookahead_ms * float(sample_rate) / 1000.0)))
        return lanes * 8 * (4 * look + 5 + 6)

    def prepare(self, ctx: PrepareContext) -> None:
        lanes = ctx.lanes
        self.sample_rate = float(ctx.sample_rate)
        look = max(1, int(round(self.lookahead_ms * self.sample_rate / 1000.0)))
        self.latency = look
        self.line = np.zeros((lanes, look + 1), np.float64)
        self.box = np.ones((lanes, look), np.float64)
        self.q_idx = np.zeros((lanes, look + 2), np.int64)
        self.q_val = np.ones((lanes, look + 2), np.float64)
        self.pos = np.zeros(lanes, np.int64)
        self.q_head = np.zeros(lanes, np.int64)
        self.q_tail = np.zeros(lanes, np.int64)
        self.count = np.zeros(lanes, np.int64)
        self.smooth = np.ones(lanes, np.float64)
        self.box_sum = np.full(lanes, float(look), np.float64)
        self.on_param("ceiling_db")

    def on_param(self, name: str) -> None:
        self.ceiling = math.exp(self.ceiling_db * LN10_OVER_20)
        self.rel_coef = 1.0 - math.exp(-1000.0 / (self.release_ms * self.sample_rate))

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        _limiter(
            ins.in_,
            outs.out,
            frames,
            self.ceiling,
            self.rel_coef,
            self.latency,
            self.line,
            self.pos,
            self.q_idx,
            self.q_val,
            self.q_head,
            self.q_tail,
            self.count,
            self.smooth,
            self.box,
            self.box_sum,
        )

    def reset(self) -> None:
        self.line.fill(0.0)
        self.box.fill(1.0)
        self.q_idx.fill(0)
        self.q_val.fill(1.0)
        self.pos.fill(0)
        self.q_head.fill(0)
        self.q_tail.fill(0)
        self.count.fill(0)
        self.smooth.fill(1.0)
        self.box_sum.fill(float(self.latency))


@hookimpl
def ng_register_nodes(register) -> None:
    register(Gain)
    register(Pan)
    register(Waveshape)
    register(Limiter)
