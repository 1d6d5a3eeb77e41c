"""DDSP-style synthesis nodes: an additive harmonic oscillator bank and a filtered-noise bank.

They turn the per-frame controls a neural decoder predicts (``onnx.model`` at block rate) into
audio: ``synth.harmonic`` takes N harmonic amplitudes per block and ramps them linearly across the
block; ``synth.filtered_noise`` takes N band gains and shapes white noise with a bank of band-pass
filters. See docs/neural.md and examples/train/train_ddsp.py, which trains such a decoder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from neuralgraph.plugin import Input, Node, Output, Param, Ports, PrepareContext, Rate, hookimpl, njit

from .oscillators import _sin_cycle


def _active_flags(ctx: PrepareContext) -> np.ndarray:
    """The voices' activity flags, or all lanes on: free voices cost no work (docs/midi.md)."""
    return ctx.active_lanes if ctx.active_lanes is not None else np.ones(ctx.lanes, np.uint8)


def _root(arr: np.ndarray) -> np.ndarray:
    while isinstance(arr.base, np.ndarray):
        arr = arr.base
    return arr


def columns_view(columns: list[np.ndarray]) -> np.ndarray | None:
    """The control ports' ``(lanes, 1)`` arrays as one read-only ``(lanes, N)`` view, when they are
    evenly spaced in one buffer (a decoder's own output array, :meth:`OnnxModel.output_buffers`):
    the bank then reads them in place instead of copying N ports per block. None otherwise."""
    first = columns[0]
    if first.ndim != 2 or first.shape[1] != 1 or len(columns) < 2:
        return None
    base, step = first.ctypes.data, columns[1].ctypes.data - first.ctypes.data
    root = _root(first)
    for k, col in enumerate(columns):
        if (
            col.shape != first.shape
            or col.dtype != first.dtype
            or col.strides != first.strides
            or col.ctypes.data != base + k * step
            or _root(col) is not root
        ):
            return None
    view = np.lib.stride_tricks.as_strided(first, (first.shape[0], len(columns)), (first.strides[0], step))
    view.flags.writeable = False
    return view


@njit(cache=True, nogil=True, inline="always")
def _harmonic_steps(amps, prev, lane, k, fr, s_prev, s_k, c2, acc, frames):  # pragma: no cover - compiled
    """Harmonics k and k + 1 (both below the fade) over the block, in one pass over the samples."""
    a0, b0 = prev[lane, k], prev[lane, k + 1]
    da, db = amps[lane, k] - a0, amps[lane, k + 1] - b0
    for i in range(frames):
        s0, s1, c = s_prev[i], s_k[i], c2[i]
        s2 = c * s1 - s0
        acc[i] = acc[i] + (a0 + da * fr[i]) * s1 + (b0 + db * fr[i]) * s2
        s_prev[i] = s2
        s_k[i] = c * s2 - s1


@njit(cache=True, nogil=True, inline="always")
def _phases(freq, lane, phase, inv_sr, theta, speed, frames):  # pragma: no cover - compiled
    """The lane's phase at every sample into ``theta`` and |freq| into ``speed``; returns the
    slowest and fastest |freq| of the block. The phase is unwrapped (a running sum: one add per
    sample on the serial path), then folded into [0, 1) for every sample at once."""
    p = phase[lane]
    slowest, fastest = math.inf, 0.0
    for i in range(frames):
        f = freq[lane, i]
        if not math.isfinite(f):  # a NaN/Inf frequency must not poison the phase for good
            f = 0.0
        theta[i] = p
        speed[i] = abs(f)
        slowest = min(slowest, abs(f))
        fastest = max(fastest, abs(f))
        p += f * inv_sr
    phase[lane] = p - math.floor(p)
    for i in range(frames):
        theta[i] -= math.floor(theta[i])
    return slowest, fastest


@njit(cache=True, nogil=True, inline="always")
def _faded_harmonic(amps, prev, lane, k, fr, speed, s_prev, s_k, c2, acc, nyquist, frames):  # pragma: no cover
    """Harmonic k over the block where it may reach the fade: silent at or above Nyquist, faded
    out over the last 10 % below it (no aliasing clicks)."""
    fade_from = 0.9 * nyquist
    fade_gain = 1.0 / (0.1 * nyquist)
    a0 = prev[lane, k]
    da = amps[lane, k] - a0
    for i in range(frames):
        hk = (k + 1) * speed[i]
        a = a0 + da * fr[i]
        if hk >= nyquist:
            a = 0.0
        elif hk > fade_from:
            a *= (nyquist - hk) * fade_gain
        acc[i] += a * s_k[i]
        s_next = c2[i] * s_k[i] - s_prev[i]
        s_prev[i] = s_k[i]
        s_k[i] = s_next


@njit(cache=True, nogil=True)
def _harmonic_bank(freq, amps, prev, phase, inv_sr, nyquist, active, scratch, out, frames):  # pragma: no cover
    # Per lane: the phase recursion alone, then sin/cos of every phase (a branch-free polynomial),
    # then harmonic by harmonic over the whole block (sin(k theta) by the Chebyshev recurrence, one
    # step per harmonic for every sample at once): the inner loops run over samples with no
    # dependency between them, so LLVM vectorises them; per sample the harmonics are still summed
    # in order k = 1, 2, ... Harmonics below the fade anywhere in the block skip its checks.
    lanes = out.shape[0]
    count = amps.shape[1]
    theta, speed, s_prev, s_k, c2, acc, fr = (
        scratch[0],
        scratch[1],
        scratch[2],
        scratch[3],
        scratch[4],
        scratch[5],
        scratch[6],
    )
    fade_from = 0.9 * nyquist
    for i in range(frames):
        fr[i] = (i + 1.0) / frames
    for lane in range(lanes):
        if active[lane] == 0:  # a free voice: silence, its phase waits
            out[lane, :frames] = 0.0
        else:
            slowest, fastest = _phases(freq, lane, phase, inv_sr, theta, speed, frames)
            for i in range(frames):
                q = theta[i] + 0.25  # cos(2 pi p) = sin(2 pi (p + 1/4))
                q = q - 1.0 if q >= 1.0 else q
                s_k[i] = _sin_cycle(theta[i])
                c2[i] = 2.0 * _sin_cycle(q)
                s_prev[i] = 0.0
                acc[i] = 0.0
            clean = 0  # harmonics 1..clean stay below the fade throughout the block
            while clean < count and (clean + 1) * fastest <= fade_from:
                clean += 1
            for k in range(0, clean - 1, 2):
                _harmonic_steps(amps, prev, lane, k, fr, s_prev, s_k, c2, acc, frames)
            for k in range(clean - clean % 2, count):
                if (k + 1) * slowest >= nyquist:  # this harmonic and the ones above are silent throughout
                    break
                _faded_harmonic(amps, prev, lane, k, fr, speed, s_prev, s_k, c2, acc, nyquist, frames)
            for i in range(frames):
                out[lane, i] = acc[i]
        for k in range(count):
            prev[lane, k] = amps[lane, k]


class HarmonicSynth(Node):
    """Additive oscillator: ``count`` harmonics of ``freq`` with per-block amplitudes.

    ``amp_k`` is the peak amplitude of harmonic k (a control input, e.g. a decoder's output);
    amplitudes ramp linearly from one block to the next; harmonics at or above Nyquist are
    silent and the ones in the top 10 % below it fade out, so a glide never aliases. Free voices
    (``ctx.active_lanes``) are skipped and silent.
    """

    type_name = "synth.harmonic"
    count = Param(init=32, kind=int, min=1, max=256, live=False, doc="Number of harmonics.")
    freq = Input(init=220.0, min=0.0, max=20000.0, unit="Hz", doc="Fundamental frequency.")
    out = Output(span=(-1.0, 1.0), doc="The sum of the harmonics.")

    def inputs(self) -> Mapping[str, Input]:
        ports: dict[str, Input] = {"freq": type(self).freq}
        for k in range(1, self.count + 1):
            ports[f"amp_{k}"] = Input(init=0.0, min=0.0, rate=Rate.CONTROL, doc=f"Peak amplitude of harmonic {k}.")
        return ports

    transient = ("amp_view", "_plan_ins", "scratch")  # the ports' view and arrays (see bind), scratch: not state

    def prepare(self, ctx: PrepareContext) -> None:
        self.inv_sr = 1.0 / ctx.sample_rate
        self.nyquist = 0.5 * ctx.sample_rate
        self.amps = np.zeros((ctx.lanes, self.count), np.float64)
        self.prev = np.zeros((ctx.lanes, self.count), np.float64)
        self.phase = np.zeros(ctx.lanes, np.float64)
        self.scratch = np.zeros((7, ctx.block_size), np.float64)
        self.columns = [(f"amp_{k + 1}", self.amps[:, k : k + 1]) for k in range(self.count)]
        self.active = _active_flags(ctx)
        self.amp_view: np.ndarray | None = None
        self._plan_ins: Ports | None = None

    def bind(self, ins: Ports, outs: Ports) -> None:
        self.amp_view = columns_view([ins[name] for name, _ in self.columns])
        if self.amp_view is not None:
            self._plan_ins = ins
            _harmonic_bank(
                ins.freq,
                self.amp_view,
                self.prev,
                self.phase,
                self.inv_sr,
                self.nyquist,
                self.active,
                self.scratch,
                outs.out,
                0,
            )  # compiled (or loaded from numba's cache) here
            self.prev.fill(0.0)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        if frames == 0:  # no time passes: the bank works on whole blocks, so do nothing
            return
        amps = self.amp_view
        if ins is not self._plan_ins or amps is None:
            amps = self.amps
            for name, column in self.columns:
                np.copyto(column, ins[name])
        out = outs.out
        _harmonic_bank(
            ins.freq,
            amps,
            self.prev,
            self.phase,
            self.inv_sr,
            self.nyquist,
            self.active,
            self.scratch,
            out,
            out.shape[1],
        )

    def reset(self) -> None:
        self.prev.fill(0.0)
        self.phase.fill(0.0)


#: Scales a uniform [0, 1) sample minus 1/2 to unit variance (the bands' levels assume it).
UNIT_UNIFORM = np.float32(math.sqrt(12.0))
_MASK64 = (1 << 64) - 1


def _noise_seeds(seed: int, lanes: int) -> np.ndarray:
    """A nonzero xorshift64* state per lane from ``seed`` (splitmix64: neighbouring seeds and lanes
    give unrelated streams)."""
    states = np.zeros(lanes, np.uint64)
    for lane in range(lanes):
        z = (seed * 0x9E3779B97F4A7C15 + (lane + 1) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        states[lane] = (z ^ (z >> 31)) or 1
    return states


#: Samples per pass of the noise bank's filter loop: bounds its scratch at any block size.
NOISE_CHUNK = 128


@njit(cache=True, nogil=True, fastmath=True)
def _band_sums(shaped, lanes_on, n, bands, out, start, count):  # pragma: no cover - compiled
    """out[lane, start + i] = the sum of each active lane's weighted band outputs (fastmath: a
    vector sum over the lane's contiguous columns)."""
    for i in range(count):
        row = shaped[i]
        for j in range(n):
            acc = 0.0
            for b in range(bands):
                acc += row[j * bands + b]
            out[int(lanes_on[j]), start + i] = acc


@njit(cache=True, nogil=True, inline="always")
def _white_noise(noise, lanes_on, n, bands, xin, count):  # pragma: no cover - compiled
    """``count`` samples of each active lane's white noise (xorshift64*, uniform, unit variance)
    into the columns of its filters in ``xin``."""
    for j in range(n):
        lane = int(lanes_on[j])
        r = noise[lane]
        for i in range(count):
            r ^= r >> np.uint64(12)
            r ^= r << np.uint64(25)
            r ^= r >> np.uint64(27)
            u = np.float32((r * np.uint64(0x2545F4914F6CDD1D)) >> np.uint64(40)) * np.float32(2.0**-24)
            x = (u - np.float32(0.5)) * UNIT_UNIFORM
            for b in range(bands):
                xin[i, j * bands + b] = x
        noise[lane] = r


@njit(cache=True, nogil=True)
def _noise_bank(noise, gains, prev, coef, norm, state, active, work, out, frames):  # pragma: no cover - compiled
    # Every filter of every active lane runs side by side, sample by sample: the lanes' filters
    # are packed into the columns of ``work`` (states, weights, inputs, outputs), so that the
    # inner loop runs over lanes x bands independent filters and LLVM vectorises it (float32).
    # ``coef`` is (10, lanes * bands): b0 b1 b2 a1 a2 of both second-order sections, repeated
    # per lane; ``state`` (lanes, 4, bands); ``work`` (7 + 2 * NOISE_CHUNK, lanes * bands).
    lanes = out.shape[0]
    bands = norm.shape[0]
    chunk = (work.shape[0] - 7) // 2
    z0, z1, z2, z3, w0, dw, lanes_on = work[0], work[1], work[2], work[3], work[4], work[5], work[6]
    xin, shaped = work[7 : 7 + chunk], work[7 + chunk :]
    n = 0
    for lane in range(lanes):
        if active[lane] == 0:  # a free voice: silence, its filters wait
            out[lane, :frames] = 0.0
            continue
        lanes_on[n] = lane
        for b in range(bands):
            k = n * bands + b
            z0[k], z1[k], z2[k], z3[k] = state[lane, 0, b], state[lane, 1, b], state[lane, 2, b], state[lane, 3, b]
            w0[k] = prev[lane, b] * norm[b]  # the band's level ramps from w0 to w0 + dw across the block
            dw[k] = (gains[lane, b] - prev[lane, b]) * norm[b]
        n += 1
    width = n * bands
    b0, b1, b2, a1, a2 = coef[0], coef[1], coef[2], coef[3], coef[4]
    c0, c1, c2, d1, d2 = coef[5], coef[6], coef[7], coef[8], coef[9]
    for start in range(0, frames, chunk):
        count = min(chunk, frames - start)
        _white_noise(noise, lanes_on, n, bands, xin, count)
        for i in range(count):
            frac = np.float32((start + i + 1.0) / frames)
            xr = xin[i]
            yr = shaped[i]
            for k in range(width):
                x = xr[k]
                y = b0[k] * x + z0[k]  # transposed direct form II, two sections
                z0[k] = b1[k] * x - a1[k] * y + z1[k]
                z1[k] = b2[k] * x - a2[k] * y
                y2 = c0[k] * y + z2[k]
                z2[k] = c1[k] * y - d1[k] * y2 + z3[k]
                z3[k] = c2[k] * y - d2[k] * y2
                yr[k] = (w0[k] + dw[k] * frac) * y2
        _band_sums(shaped, lanes_on, n, bands, out, start, count)
    for j in range(n):
        lane = int(lanes_on[j])
        for b in range(bands):
            k = j * bands + b
            state[lane, 0, b], state[lane, 1, b], state[lane, 2, b], state[lane, 3, b] = z0[k], z1[k], z2[k], z3[k]
    for lane in range(lanes):
        for b in range(bands):
            prev[lane, b] = gains[lane, b]


class FilteredNoise(Node):
    """White noise shaped by ``bands`` 4th-order Butterworth bands splitting 0..``top_hz`` evenly.

    ``band_k`` is the RMS level that band contributes (each filter's output is normalised to unit
    variance for unit white noise), ramped linearly across the block. Bands above Nyquist are
    silent. Each lane has its own noise; ``seed`` makes renders repeatable. Free voices
    (``ctx.active_lanes``) are skipped and silent.
    """

    type_name = "synth.filtered_noise"
    bands = Param(init=16, kind=int, min=1, max=128, live=False, doc="Number of bands.")
    top_hz = Param(init=16000.0, min=100.0, max=96000.0, unit="Hz", live=False, doc="Upper edge of the last band.")
    seed = Param(init=1, kind=int, min=0, max=2**31 - 1, live=False, doc="Noise seed.")
    out = Output(span=(-1.0, 1.0), doc="The shaped noise.")
    transient = ("gain_view", "_plan_ins", "work")  # the ports' view and arrays (see bind), scratch: not state

    def inputs(self) -> Mapping[str, Input]:
        return {
            f"band_{k}": Input(init=0.0, min=0.0, rate=Rate.CONTROL, doc=f"RMS level of band {k}.")
            for k in range(1, self.bands + 1)
        }

    def prepare(self, ctx: PrepareContext) -> None:
        from scipy.signal import butter, sosfilt  # prepare runs on the control thread

        sr, n = ctx.sample_rate, self.bands
        width = self.top_hz / n
        self.sos = np.zeros((n, 2, 6), np.float64)
        self.norm = np.zeros(n, np.float64)
        impulse = np.zeros(16384)
        impulse[0] = 1.0
        for b in range(n):
            lo, hi = b * width, (b + 1) * width
            if hi >= 0.5 * sr:
                continue  # above Nyquist: the band stays silent (norm 0)
            if b == 0:  # the lowest band starts at DC: a 4th-order low-pass
                sos = butter(4, hi, btype="lowpass", fs=sr, output="sos")
            else:  # 4th-order Butterworth band-pass (2 sections)
                sos = butter(2, [lo, hi], btype="bandpass", fs=sr, output="sos")
            self.sos[b] = sos
            h = sosfilt(sos, impulse)
            self.norm[b] = 1.0 / math.sqrt(float(np.sum(h * h)))
        # b0 b1 b2 a1 a2 of both sections (a0 is 1), per (lane, band) column: see _noise_bank
        picked = self.sos[:, :, [0, 1, 2, 4, 5]].reshape(n, 10).T
        self.coef = np.ascontiguousarray(np.tile(picked, (1, ctx.lanes)), np.float32)
        self.gains = np.zeros((ctx.lanes, n), np.float64)
        self.prev = np.zeros((ctx.lanes, n), np.float64)
        self.state = np.zeros((ctx.lanes, 4, n), np.float32)
        self.work = np.zeros((7 + 2 * min(NOISE_CHUNK, ctx.block_size), ctx.lanes * n), np.float32)
        self.columns = [(f"band_{k + 1}", self.gains[:, k : k + 1]) for k in range(n)]
        self.active = _active_flags(ctx)
        self.noise = _noise_seeds(self.seed, ctx.lanes)
        self.gain_view: np.ndarray | None = None
        self._plan_ins: Ports | None = None

    def bind(self, ins: Ports, outs: Ports) -> None:
        self.gain_view = columns_view([ins[name] for name, _ in self.columns])
        if self.gain_view is not None:
            self._plan_ins = ins
            self._bank(self.gain_view, outs.out, 0)  # compiled (or loaded from numba's cache) here
            self.prev.fill(0.0)

    def _bank(self, gains: np.ndarray, out: np.ndarray, frames: int) -> None:
        _noise_bank(self.noise, gains, self.prev, self.coef, self.norm, self.state, self.active, self.work, out, frames)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        if frames == 0:  # no time passes: the bank works on whole blocks, so do nothing
            return
        gains = self.gain_view
        if ins is not self._plan_ins or gains is None:
            gains = self.gains
            for name, column in self.columns:
                np.copyto(column, ins[name])
        out = outs.out
        self._bank(gains, out, out.shape[1])

    def reset(self) -> None:
        self.prev.fill(0.0)
        self.state.fill(0.0)
        self.noise[:] = _noise_seeds(self.seed, self.noise.size)


@hookimpl
def ng_register_nodes(register) -> None:
    register(HarmonicSynth)
    register(FilteredNoise)
