"""Time-based effects: ``fx.delay`` (fractional, modulated), ``fx.chorus`` and ``fx.reverb`` (Freeverb)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from neuralgraph.plugin import Input, Node, Output, Param, Ports, PrepareContext, Rate, hookimpl, njit

TWO_PI = 2.0 * math.pi
MAX_FEEDBACK = 0.99  # keeps a fed-back line decaying whatever a connected signal asks for


@njit(cache=True, nogil=True)
def _read(line, lane, w, d, size):  # pragma: no cover - compiled
    """The line ``d`` samples (fractional, >= 1) before write position ``w``, linearly interpolated."""
    rp = w - d
    if rp < 0.0:
        rp += size
    i0 = int(rp)
    frac = rp - i0
    i1 = i0 + 1
    if i1 >= size:
        i1 -= size
    return line[lane, i0] + (line[lane, i1] - line[lane, i0]) * frac


@njit(cache=True, nogil=True)
def _delay(x, time_ms, feedback, mix, out, frames, samples_per_ms, max_delay, line, write):  # pragma: no cover
    lanes = out.shape[0]
    frames = min(frames, out.shape[1])
    size = line.shape[1]
    for lane in range(lanes):
        w = write[lane]
        for i in range(frames):
            v = x[lane, i]
            if not math.isfinite(v):
                v = 0.0
            d = time_ms[lane, i] * samples_per_ms
            if not d >= 1.0:  # also catches NaN
                d = 1.0
            elif d > max_delay:
                d = max_delay
            y = _read(line, lane, w, d, size)
            fb = feedback[lane, i]
            if not fb >= -MAX_FEEDBACK:
                fb = -MAX_FEEDBACK if fb < 0.0 else 0.0
            elif fb > MAX_FEEDBACK:
                fb = MAX_FEEDBACK
            line[lane, w] = v + fb * y
            m = mix[lane, i]
            if not m >= 0.0:
                m = 0.0
            elif m > 1.0:
                m = 1.0
            out[lane, i] = v + (y - v) * m
            w += 1
            if w >= size:
                w = 0
        write[lane] = w


class Delay(Node):
    """Delay line with fractional, modulatable time, feedback and dry/wet mix, per lane.

    The time is read per sample and linearly interpolated, so an LFO on ``time_ms`` gives a
    smooth pitch-shifting sweep and a non-integer time in samples lands between two samples.
    ``max_ms`` fixes the line's length when the patch is prepared; times are held within
    [1 sample, max_ms]. Feedback is held within ±0.99.
    """

    type_name = "fx.delay"
    bypass = "thru"
    in_ = Input(init=0.0, doc="The signal.")
    time_ms = Input(
        init=250.0, min=0.0, max=60000.0, unit="ms", ramp_ms=50.0, doc="Delay time; audio-rate modulatable."
    )
    feedback = Input(init=0.0, min=-0.99, max=0.99, doc="Part of the delayed signal fed back into the line.")
    mix = Input(init=0.5, min=0.0, max=1.0, doc="0 = dry only, 1 = delayed only.")
    out = Output(doc="(1 - mix) × in + mix × delayed.")
    max_ms = Param(init=1000.0, min=1.0, max=60000.0, unit="ms", live=False, doc="Longest delay (line length).")

    def memory_bytes(self, sample_rate: float, block_size: int, lanes: int) -> int:
        """The float32 line: ``max_ms`` of samples per lane."""
        length = int(math.ceil(max(1.0, self.max_ms * float(sample_rate) / 1000.0))) + 2
        return lanes * (length * 4 + 8)

    def prepare(self, ctx: PrepareContext) -> None:
        self.samples_per_ms = float(ctx.sample_rate) / 1000.0
        self.max_delay = max(1.0, self.max_ms * self.samples_per_ms)
        # float32 like the signals: a 60 s line at 192 kHz is 46 MB per lane
        self.line = np.zeros((ctx.lanes, int(math.ceil(self.max_delay)) + 2), np.float32)
        self.write = np.zeros(ctx.lanes, np.int64)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        _delay(
            ins.in_,
            ins.time_ms,
            ins.feedback,
            ins.mix,
            outs.out,
            frames,
            self.samples_per_ms,
            self.max_delay,
            self.line,
            self.write,
        )

    def reset(self) -> None:
        self.line.fill(0.0)
        self.write.fill(0)


CHORUS_MAX_MS = 80.0


@njit(cache=True, nogil=True)
def _chorus(
    x, rate, depth_ms, delay_ms, mix, out, frames, samples_per_ms, inv_sr, voices, line, write, phase
):  # pragma: no cover - compiled
    lanes = out.shape[0]
    frames = min(frames, out.shape[1])
    size = line.shape[1]
    max_delay = size - 2.0
    for lane in range(lanes):
        w = write[lane]
        p = phase[lane]
        for i in range(frames):
            v = x[lane, i]
            if not math.isfinite(v):
                v = 0.0
            centre = delay_ms[lane, i] * samples_per_ms
            depth = depth_ms[lane, i] * samples_per_ms
            acc = 0.0
            for k in range(voices):
                d = centre + depth * math.sin(TWO_PI * (p + k / voices))
                if not d >= 1.0:
                    d = 1.0
                elif d > max_delay:
                    d = max_delay
                acc += _read(line, lane, w, d, size)
            wet = acc / voices
            line[lane, w] = v  # written after the taps are read, so a 1-sample delay is the previous input
            w += 1
            if w >= size:
                w = 0
            m = mix[lane, i]
            if not m >= 0.0:
                m = 0.0
            elif m > 1.0:
                m = 1.0
            out[lane, i] = v + (wet - v) * m
            r = rate[lane, i] * inv_sr
            if math.isfinite(r):
                p += r
                p -= math.floor(p)
        write[lane] = w
        phase[lane] = p


class Chorus(Node):
    """Chorus: ``voices`` copies of the signal on delay lines swept by a sine LFO, mixed with the dry.

    The voices are spread evenly around the LFO cycle; each lane starts a quarter cycle after the
    previous one, so a stereo pair sweeps in quadrature and sounds wide.
    """

    type_name = "fx.chorus"
    bypass = "thru"
    in_ = Input(init=0.0, doc="The signal.")
    rate = Input(init=0.8, min=0.0, max=20.0, unit="Hz", doc="Sweep rate.")
    depth_ms = Input(init=3.0, min=0.0, max=20.0, unit="ms", doc="Sweep depth either side of delay_ms.")
    delay_ms = Input(init=15.0, min=1.0, max=50.0, unit="ms", doc="Centre delay.")
    mix = Input(init=0.5, min=0.0, max=1.0, doc="0 = dry only, 1 = chorus voices only.")
    out = Output(doc="The chorused signal.")
    voices = Param(init=2, kind=int, min=1, max=8, doc="Delayed copies.")

    def memory_bytes(self, sample_rate: float, block_size: int, lanes: int) -> int:
        """The float32 line of CHORUS_MAX_MS per lane."""
        return lanes * ((int(math.ceil(CHORUS_MAX_MS * float(sample_rate) / 1000.0)) + 2) * 4 + 16)

    def prepare(self, ctx: PrepareContext) -> None:
        self.samples_per_ms = float(ctx.sample_rate) / 1000.0
        self.inv_sr = 1.0 / float(ctx.sample_rate)
        self.line = np.zeros((ctx.lanes, int(math.ceil(CHORUS_MAX_MS * self.samples_per_ms)) + 2), np.float32)
        self.write = np.zeros(ctx.lanes, np.int64)
        self.phase = np.zeros(ctx.lanes, np.float64)
        self.reset()

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        _chorus(
            ins.in_,
            ins.rate,
            ins.depth_ms,
            ins.delay_ms,
            ins.mix,
            outs.out,
            frames,
            self.samples_per_ms,
            self.inv_sr,
            self.voices,
            self.line,
            self.write,
            self.phase,
        )

    def reset(self) -> None:
        self.line.fill(0.0)
        self.write.fill(0)
        for lane in range(self.phase.shape[0]):
            self.phase[lane] = (0.25 * lane) % 1.0


# Freeverb's tunings at 44.1 kHz (Jezar at Dreampoint, public domain), scaled to the sample rate.
COMB_TUNING = (1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617)
ALLPASS_TUNING = (556, 441, 341, 225)
STEREO_SPREAD = 23
FIXED_GAIN = 0.015
SCALE_DAMP = 0.4
SCALE_ROOM = 0.28
OFFSET_ROOM = 0.7
ALLPASS_FEEDBACK = 0.5
TINY = 1e-30  # below this a decaying state is flushed to 0 (subnormals are slow)


@njit(cache=True, nogil=True, inline="always")
def _unit(v):  # pragma: no cover - compiled
    """``v`` held in 0..1, and 0 when it is NaN or infinite."""
    return min(max(v, 0.0), 1.0) if math.isfinite(v) else 0.0


@njit(cache=True, nogil=True, inline="always")
def _reverb_channel(
    ch, mono, feedback, damp1, damp2, comb, comb_len, comb_idx, store, ap, ap_len, ap_idx
):  # pragma: no cover - compiled
    """One sample of channel ``ch``: ``mono`` through its damped combs in parallel, then its allpasses."""
    acc = 0.0
    for c in range(comb.shape[1]):
        k = comb_idx[ch, c]
        y = comb[ch, c, k]
        s = y * damp2 + store[ch, c] * damp1
        if abs(s) < TINY:
            s = 0.0
        store[ch, c] = s
        comb[ch, c, k] = mono + s * feedback
        k += 1
        if k >= comb_len[ch, c]:
            k = 0
        comb_idx[ch, c] = k
        acc += y
    for c in range(ap.shape[1]):
        k = ap_idx[ch, c]
        buf = ap[ch, c, k]
        y = buf - acc
        nxt = acc + buf * ALLPASS_FEEDBACK
        if abs(nxt) < TINY:
            nxt = 0.0
        ap[ch, c, k] = nxt
        k += 1
        if k >= ap_len[ch, c]:
            k = 0
        ap_idx[ch, c] = k
        acc = y
    return acc


@njit(cache=True, nogil=True)
def _freeverb(
    x, room, damping, mix, width, out, frames, comb, comb_len, comb_idx, store, ap, ap_len, ap_idx
):  # pragma: no cover - compiled
    frames = min(frames, out.shape[1])
    # connected controls can carry anything: NaN/Inf would poison the combs for good, values
    # outside 0..1 would make them unstable
    r, dmp, m, wd = _unit(room[0, 0]), _unit(damping[0, 0]), _unit(mix[0, 0]), _unit(width[0, 0])
    feedback = r * SCALE_ROOM + OFFSET_ROOM
    damp1 = dmp * SCALE_DAMP
    damp2 = 1.0 - damp1
    wet1 = m * (wd * 0.5 + 0.5)
    wet2 = m * ((1.0 - wd) * 0.5)
    dry = 1.0 - m
    for i in range(frames):
        a = x[0, i]
        b = x[1, i]
        if not math.isfinite(a):
            a = 0.0
        if not math.isfinite(b):
            b = 0.0
        mono = (a + b) * FIXED_GAIN
        acc0 = _reverb_channel(0, mono, feedback, damp1, damp2, comb, comb_len, comb_idx, store, ap, ap_len, ap_idx)
        acc1 = _reverb_channel(1, mono, feedback, damp1, damp2, comb, comb_len, comb_idx, store, ap, ap_len, ap_idx)
        out[0, i] = acc0 * wet1 + acc1 * wet2 + a * dry
        out[1, i] = acc1 * wet1 + acc0 * wet2 + b * dry


class Reverb(Node):
    """Freeverb stereo reverb: per channel 8 damped feedback combs in parallel, then 4 allpasses in series.

    The input (mono or stereo) is summed to mono and feeds both channels; the right channel's
    delays are 23 samples (at 44.1 kHz) longer, which decorrelates the two sides. ``room_size``
    sets the comb feedback (0.7 .. 0.98), ``damping`` the high-frequency loss per pass.
    """

    type_name = "fx.reverb"
    bypass = "thru"
    in_ = Input(init=0.0, doc="The signal (1 or 2 lanes).")
    room_size = Input(init=0.5, min=0.0, max=1.0, rate=Rate.CONTROL, doc="Decay length.")
    damping = Input(init=0.5, min=0.0, max=1.0, rate=Rate.CONTROL, doc="High-frequency absorption.")
    mix = Input(init=0.3, min=0.0, max=1.0, rate=Rate.CONTROL, doc="0 = dry only, 1 = reverb only.")
    width = Input(init=1.0, min=0.0, max=1.0, rate=Rate.CONTROL, doc="Stereo width of the reverb (0 = mono).")
    out = Output(doc="Stereo: lane 0 left, lane 1 right.")

    def fixed_lanes(self) -> int:
        return 2

    def output_lanes(self, lanes: int) -> Mapping[str, int]:
        return {"out": 2}

    def memory_bytes(self, sample_rate: float, block_size: int, lanes: int) -> int:
        """Two channels of float64 comb and all-pass lines, scaled with the sample rate."""
        scale = float(sample_rate) / 44100.0
        longest = max(COMB_TUNING) + STEREO_SPREAD
        longest_ap = max(ALLPASS_TUNING) + STEREO_SPREAD
        return (
            2
            * 8
            * (
                len(COMB_TUNING) * int(round(longest * scale) + 1)
                + len(ALLPASS_TUNING) * int(round(longest_ap * scale) + 1)
            )
        )

    def prepare(self, ctx: PrepareContext) -> None:
        scale = float(ctx.sample_rate) / 44100.0
        combs = np.array(
            [[max(1, int(round((t + ch * STEREO_SPREAD) * scale))) for t in COMB_TUNING] for ch in range(2)], np.int64
        )
        aps = np.array(
            [[max(1, int(round((t + ch * STEREO_SPREAD) * scale))) for t in ALLPASS_TUNING] for ch in range(2)],
            np.int64,
        )
        self.comb_len, self.ap_len = combs, aps
        self.comb = np.zeros((2, len(COMB_TUNING), int(combs.max())), np.float64)
        self.ap = np.zeros((2, len(ALLPASS_TUNING), int(aps.max())), np.float64)
        self.comb_idx = np.zeros((2, len(COMB_TUNING)), np.int64)
        self.ap_idx = np.zeros((2, len(ALLPASS_TUNING)), np.int64)
        self.store = np.zeros((2, len(COMB_TUNING)), np.float64)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        _freeverb(
            ins.in_,
            ins.room_size,
            ins.damping,
            ins.mix,
            ins.width,
            outs.out,
            frames,
            self.comb,
            self.comb_len,
            self.comb_idx,
            self.store,
            self.ap,
            self.ap_len,
            self.ap_idx,
        )

    def reset(self) -> None:
        for array in (self.comb, self.ap, self.comb_idx, self.ap_idx, self.store):
            array.fill(0)


@hookimpl
def ng_register_nodes(register) -> None:
    register(Delay)
    register(Chorus)
    register(Reverb)
