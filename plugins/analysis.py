"""Audio analysis nodes: ``analysis.pitch`` (a streaming YIN f0 tracker) and ``analysis.loudness``.

They turn incoming audio into the controls a DDSP decoder takes (f0 in Hz, loudness in dB), so a
voice or an instrument can drive a neural instrument (timbre transfer, docs/neural.md). Both keep
a ring of recent input and analyse a frame at the end of each block (or every ``hop_ms`` when
blocks are shorter): their outputs are control-rate, and each declares its latency, the distance
from the newest input sample back to the centre of the frame it reports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from neuralgraph.plugin import Input, Node, Output, Param, Ports, PrepareContext, Rate, hookimpl, njit

#: The sample rate the pitch tracker analyses at (the input is low-passed and decimated by the
#: whole factor that comes closest): YIN's cost grows with the square of the rate, and 16 kHz
#: keeps every partial that matters for a fundamental up to 2 kHz.
ANALYSIS_HZ = 16000.0


@njit(cache=True, nogil=True)
def _push(ring, pos, lane, value, length):  # pragma: no cover - compiled
    """Write ``value`` twice (at p and p + length) so the last ``length`` samples are contiguous."""
    p = pos[lane]
    ring[lane, p] = value
    ring[lane, p + length] = value
    p += 1
    if p == length:
        p = 0
    pos[lane] = p


@njit(cache=True, nogil=True)
def _first_dip(cmnd, tau_min, tau_max, below):  # pragma: no cover - compiled
    """The first period whose normalised difference is under ``below``, followed down to its
    local minimum; -1 when there is none."""
    for tau in range(tau_min, tau_max):
        if cmnd[tau] < below:
            while tau + 1 < tau_max and cmnd[tau + 1] < cmnd[tau]:
                tau += 1
            return tau
    return -1


@njit(cache=True, nogil=True, fastmath=True)  # the difference sums vectorise (inputs are finite)
def _yin_frame(buf, win, tau_min, tau_max, threshold, d, cmnd):  # pragma: no cover - compiled
    """YIN on the newest ``win`` samples of ``buf`` against the ones ``tau`` earlier.

    Returns (period in samples with parabolic refinement, its normalised difference): the first
    dip of the cumulative-mean-normalised difference below ``threshold``; when none is, the first
    dip within 0.05 of the lowest one (the lowest alone is often a multiple of the period: an
    octave too low).
    """
    base = buf.shape[0] - win  # the newest ``win`` samples start here
    running = 0.0
    cmnd[0] = 1.0
    for tau in range(1, tau_max + 1):
        acc = 0.0
        for j in range(base, base + win):
            diff = buf[j] - buf[j - tau]
            acc += diff * diff
        d[tau] = acc
        running += acc
        cmnd[tau] = acc * tau / running if running > 0.0 else 1.0
    best = _first_dip(cmnd, tau_min, tau_max, threshold)
    if best < 0:
        lowest = cmnd[tau_min]
        for tau in range(tau_min, tau_max):
            lowest = min(lowest, cmnd[tau])
        best = _first_dip(cmnd, tau_min, tau_max, lowest + 0.05)
    period = float(best)
    if tau_min < best < tau_max:  # parabola through the dip and its neighbours
        a, b, c = cmnd[best - 1], cmnd[best], cmnd[best + 1]
        den = a - 2.0 * b + c
        if den > 0.0:
            shift = 0.5 * (a - c) / den
            if -1.0 < shift < 1.0:
                period += shift
    return period, cmnd[best]


@njit(cache=True, nogil=True, inline="always")
def _anti_alias(sos, zi, lane, v):  # pragma: no cover - compiled
    """One sample ``v`` through the lane's anti-alias sections (transposed direct form II)."""
    for s in range(sos.shape[0]):
        y = sos[s, 0] * v + zi[lane, s, 0]
        z0 = sos[s, 1] * v - sos[s, 4] * y + zi[lane, s, 1]
        z1 = sos[s, 2] * v - sos[s, 5] * y
        zi[lane, s, 0] = 0.0 if -1e-30 < z0 < 1e-30 else z0  # no subnormals in the memory
        zi[lane, s, 1] = 0.0 if -1e-30 < z1 < 1e-30 else z1
        v = y
    return v


@njit(cache=True, nogil=True)
def _pitch_block(
    x,
    frames,
    sos,
    zi,
    factor,
    ring,
    pos,
    counters,
    hop,
    win,
    tau_min,
    tau_max,
    threshold,
    voicing,
    floor_power,
    rate,
    d,
    cmnd,
    held,
):  # pragma: no cover - compiled
    """Feed one block into each lane's anti-alias filter, decimator and ring; analyse a frame at
    the block's end once ``hop`` analysis samples have come in. ``held`` per lane:
    [f0 Hz, confidence, voiced]. ``counters`` per lane: [decimation phase, samples since frame]."""
    lanes = ring.shape[0]
    length = win + tau_max
    for lane in range(lanes):
        src = lane if x.shape[0] > 1 else 0  # a 1-lane input broadcasts
        for i in range(frames):
            v = x[src, i] if x.shape[1] > 1 else x[src, 0]
            if not math.isfinite(v):
                v = 0.0
            v = _anti_alias(sos, zi, lane, v)
            counters[lane, 0] += 1
            if counters[lane, 0] >= factor:
                counters[lane, 0] = 0
                _push(ring, pos, lane, v, length)
                counters[lane, 1] += 1
        if counters[lane, 1] < hop:
            continue
        counters[lane, 1] = 0
        p = pos[lane]
        buf = ring[lane, p : p + length]
        power = 0.0
        for j in range(win):
            power += buf[length - 1 - j] * buf[length - 1 - j]
        if power / win < floor_power:
            held[lane, 1] = 0.0
            held[lane, 2] = 0.0
            continue
        period, score = _yin_frame(buf, win, tau_min, tau_max, threshold, d, cmnd)
        found = score < (1.5 * voicing if held[lane, 2] > 0.5 else voicing)  # hysteresis: no flicker
        held[lane, 1] = min(1.0, max(0.0, 1.0 - score))
        held[lane, 2] = 1.0 if found else 0.0
        if found:  # unvoiced frames keep the last pitch, so a fade-out does not glide
            held[lane, 0] = rate / period


class PitchTracker(Node):
    """Streaming monophonic f0 tracker (YIN): the fundamental in Hz and how periodic the input is.

    The input is low-passed and decimated to about 16 kHz; at the end of each block (or every
    ``hop_ms`` when blocks are shorter) the newest ``1 / min_hz`` seconds are compared with the
    signal ``tau`` samples earlier, for every period ``tau`` between ``1 / max_hz`` and
    ``1 / min_hz``. The first dip of YIN's cumulative-mean-normalised difference below
    ``threshold`` is the period (when none is, the first dip within 0.05 of the lowest), refined
    by a parabola. ``confidence`` is 1 minus the difference at that dip (1: perfectly periodic);
    a frame is ``voiced`` when the difference is below ``voicing`` (1.5 x ``voicing`` while the
    frame before was voiced: a held note does not flicker) and the frame's level above
    ``floor_db``. An unvoiced frame keeps the last ``f0``, so a fade-out does not glide. The
    latency declared is three quarters of ``1 / min_hz`` (15 ms at 50 Hz): the middle of the
    span a period between the shortest and the longest is measured on.
    """

    type_name = "analysis.pitch"
    in_ = Input(init=0.0, doc="The audio to track (one voice or instrument).")
    octave = Input(
        init=0.0,
        min=-4.0,
        max=4.0,
        rate=Rate.CONTROL,
        unit="oct",
        doc="Transposes the f0 output by this many octaves (fractions are allowed: 1/12 per semitone).",
    )
    f0 = Output(
        rate=Rate.CONTROL, span=(50.0, 2000.0), unit="Hz", doc="The fundamental (held through unvoiced frames)."
    )
    confidence = Output(rate=Rate.CONTROL, span=(0.0, 1.0), doc="Periodicity of the last frame, 0..1.")
    voiced = Output(rate=Rate.CONTROL, span=(0.0, 1.0), doc="1 while the input is voiced, else 0.")
    min_hz = Param(init=50.0, min=20.0, max=1000.0, unit="Hz", live=False, doc="Lowest fundamental tracked.")
    max_hz = Param(init=2000.0, min=100.0, max=4000.0, unit="Hz", live=False, doc="Highest fundamental tracked.")
    threshold = Param(init=0.15, min=0.01, max=1.0, doc="YIN's dip threshold: the first dip below it is the period.")
    voicing = Param(init=0.3, min=0.01, max=1.0, doc="A frame whose dip is below this is voiced (1 - confidence).")
    floor_db = Param(init=-60.0, min=-140.0, max=0.0, unit="dB", doc="Frames quieter than this (RMS) are unvoiced.")
    hop_ms = Param(
        init=4.0,
        min=0.5,
        max=50.0,
        unit="ms",
        live=False,
        doc="Longest time between frames when blocks are shorter (one frame per block otherwise).",
    )

    def outputs(self) -> Mapping[str, Output]:
        outs = dict(self._output_decls)
        outs["f0"] = Output(rate=Rate.CONTROL, span=(self.min_hz, self.max_hz), unit="Hz", doc=outs["f0"].doc)
        return outs

    def _geometry(self, sample_rate: float) -> tuple[int, float, int, int]:
        """(decimation factor, analysis rate, shortest and longest period in analysis samples);
        the window compared is as long as the longest period."""
        factor = max(1, round(sample_rate / ANALYSIS_HZ))
        rate = sample_rate / factor
        return factor, rate, max(2, math.floor(rate / self.max_hz)), math.ceil(rate / self.min_hz)

    def memory_bytes(self, sample_rate: float, block_size: int, lanes: int) -> int:
        tau_max = self._geometry(sample_rate)[3]
        return 8 * (lanes * 4 * tau_max + 2 * (tau_max + 1))

    def prepare(self, ctx: PrepareContext) -> None:
        from scipy.signal import butter  # prepare runs on the control thread

        if self.max_hz < 1.5 * self.min_hz:
            raise ValueError(f"max_hz ({self.max_hz:g}) must be at least 1.5 x min_hz ({self.min_hz:g})")
        sr = float(ctx.sample_rate)
        self.factor, self.rate, self.tau_min, self.tau_max = self._geometry(sr)
        self.win = self.tau_max
        if self.factor > 1:  # anti-alias below the analysis Nyquist
            self.sos = np.ascontiguousarray(butter(8, 0.45 * self.rate, btype="lowpass", fs=sr, output="sos"))
        else:
            self.sos = np.zeros((0, 6), np.float64)
        lanes = ctx.lanes
        self.zi = np.zeros((lanes, max(1, self.sos.shape[0]), 2), np.float64)
        self.ring = np.zeros((lanes, 2 * (self.win + self.tau_max)), np.float64)
        self.pos = np.zeros(lanes, np.int64)
        self.counters = np.zeros((lanes, 2), np.int64)
        self.held = np.zeros((lanes, 3), np.float64)
        self.d = np.zeros(self.tau_max + 1, np.float64)
        self.cmnd = np.zeros(self.tau_max + 1, np.float64)
        self.hop = max(1, round(self.hop_ms * self.rate / 1000.0))
        self.on_param("floor_db")
        self.latency = round(0.75 * self.win * self.factor)

    def on_param(self, name: str) -> None:
        self.floor_power = 10.0 ** (self.floor_db / 10.0)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        if frames == 0:
            return
        _pitch_block(
            ins.in_,
            frames,
            self.sos,
            self.zi,
            self.factor,
            self.ring,
            self.pos,
            self.counters,
            self.hop,
            self.win,
            self.tau_min,
            self.tau_max,
            self.threshold,
            self.voicing,
            self.floor_power,
            self.rate,
            self.d,
            self.cmnd,
            self.held,
        )
        _write_pitch(self.held, ins.octave, outs.f0, outs.confidence, outs.voiced)

    def reset(self) -> None:
        for array in (self.zi, self.ring, self.pos, self.counters, self.held):
            array.fill(0)


@njit(cache=True, nogil=True)
def _write_pitch(held, octave, f0, confidence, voiced):  # pragma: no cover - compiled
    lanes = f0.shape[0]
    for lane in range(lanes):
        shift = octave[lane if octave.shape[0] > 1 else 0, 0]
        if not math.isfinite(shift):
            shift = 0.0
        f0[lane, :] = held[lane, 0] * 2.0 ** min(4.0, max(-4.0, shift))
        confidence[lane, :] = held[lane, 1]
        voiced[lane, :] = held[lane, 2]


@njit(cache=True, nogil=True)
def _loudness_block(x, frames, ring, pos, counters, hop, window, wsq, level):  # pragma: no cover - compiled
    """Feed one block into each lane's ring; at the block's end, once ``hop`` samples have come
    in, ``level`` = the Hann-windowed RMS of the newest ``window.size`` samples in dB (+1e-7)."""
    lanes = ring.shape[0]
    length = window.shape[0]
    for lane in range(lanes):
        src = lane if x.shape[0] > 1 else 0  # a 1-lane input broadcasts
        for i in range(frames):
            v = x[src, i] if x.shape[1] > 1 else x[src, 0]
            if not math.isfinite(v):
                v = 0.0
            _push(ring, pos, lane, v, length)
        counters[lane] += frames
        if counters[lane] < hop:
            continue
        counters[lane] = 0
        p = pos[lane]
        acc = 0.0
        for j in range(length):
            s = ring[lane, p + j] * window[j]
            acc += s * s
        level[lane] = 20.0 * math.log10(math.sqrt(acc / wsq) + 1e-7)


class Loudness(Node):
    """Frame loudness in dB, exactly the feature the DDSP decoders were trained on.

    examples/train/train_ddsp.py's ``analyse``: a Hann window of ``window_ms`` (2048 samples at
    32 kHz) over the audio, RMS = sqrt(sum((x·w)²) / sum(w²)), level = 20·log10(RMS + 1e-7) dB
    full scale (no frequency weighting). At any sample rate the window keeps its duration. A frame
    is analysed at the end of each block (or every ``hop_ms`` when blocks are shorter); the latency
    declared is half the window, where the frame's centre lies. ``offset_db`` is added to the result.
    """

    type_name = "analysis.loudness"
    in_ = Input(init=0.0, doc="The audio to measure.")
    offset_db = Input(
        init=0.0,
        min=-60.0,
        max=60.0,
        rate=Rate.CONTROL,
        unit="dB",
        doc="Added to the level (to match an input's level to the model's training level).",
    )
    out = Output(rate=Rate.CONTROL, span=(-70.0, -10.0), unit="dB", doc="The frame level in dB plus offset_db.")
    window_ms = Param(
        init=64.0,
        min=1.0,
        max=1000.0,
        unit="ms",
        live=False,
        doc="Window length (training: 2048 samples at 32 kHz = 64 ms).",
    )
    hop_ms = Param(
        init=2.0,
        min=0.1,
        max=100.0,
        unit="ms",
        live=False,
        doc="Longest time between frames when blocks are shorter (one frame per block otherwise).",
    )

    def _length(self, sample_rate: float) -> int:
        return max(2, round(self.window_ms * sample_rate / 1000.0))

    def memory_bytes(self, sample_rate: float, block_size: int, lanes: int) -> int:
        return 8 * (2 * lanes + 1) * self._length(sample_rate)

    def prepare(self, ctx: PrepareContext) -> None:
        length = self._length(float(ctx.sample_rate))
        self.window = np.hanning(length)  # symmetric, as np.hanning(WIN) in training
        self.wsq = float(np.sum(self.window**2))
        self.ring = np.zeros((ctx.lanes, 2 * length), np.float64)
        self.pos = np.zeros(ctx.lanes, np.int64)
        self.counters = np.zeros(ctx.lanes, np.int64)
        self.level = np.full(ctx.lanes, -140.0, np.float64)
        self.hop = max(1, round(self.hop_ms * ctx.sample_rate / 1000.0))
        self.latency = length // 2

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        if frames == 0:
            return
        _loudness_block(
            ins.in_, frames, self.ring, self.pos, self.counters, self.hop, self.window, self.wsq, self.level
        )
        _write_level(self.level, ins.offset_db, outs.out)

    def reset(self) -> None:
        for array in (self.ring, self.pos, self.counters):
            array.fill(0)
        self.level.fill(-140.0)


@njit(cache=True, nogil=True)
def _write_level(level, offset, out):  # pragma: no cover - compiled
    for lane in range(out.shape[0]):
        o = offset[lane if offset.shape[0] > 1 else 0, 0]
        if not math.isfinite(o):
            o = 0.0
        out[lane, :] = level[lane] + o


@hookimpl
def ng_register_nodes(register) -> None:
    register(PitchTracker)
    register(Loudness)
