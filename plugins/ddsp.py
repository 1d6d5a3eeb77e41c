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
from numba import njit

from neuralgraph.plugin import Input, Node, Output, Param, Ports, PrepareContext, Rate, hookimpl


def _active_flags(ctx: PrepareContext) -> np.ndarray:
    """The voices' activity flags, or all lanes on: free voices cost no work (docs/midi.md)."""
    return ctx.active_lanes if ctx.active_lanes is not None else np.ones(ctx.lanes, np.uint8)


@njit(cache=True, nogil=True)
def _harmonic_bank(freq, amps, prev, phase, inv_sr, nyquist, active, out):  # pragma: no cover - compiled
    lanes, frames = out.shape
    count = amps.shape[1]
    for lane in range(lanes):
        if active[lane] == 0:  # a free voice: silence, its phase waits
            out[lane, :] = 0.0
            continue
        p = phase[lane]
        for i in range(frames):
            f = freq[lane, i]
            if not math.isfinite(f):  # a NaN/Inf frequency must not poison the phase for good
                f = 0.0
            frac = (i + 1.0) / frames
            theta = 2.0 * math.pi * p
            s1 = math.sin(theta)  # sin(k * theta) by the Chebyshev recurrence
            c2 = 2.0 * math.cos(theta)
            s_prev = 0.0
            s_k = s1
            acc = 0.0
            af = abs(f)
            for k in range(count):
                hk = (k + 1) * af
                if hk >= nyquist:
                    break
                a = prev[lane, k] + (amps[lane, k] - prev[lane, k]) * frac
                if hk > 0.9 * nyquist:  # fade out the last 10 % below Nyquist: no aliasing clicks
                    a *= (nyquist - hk) / (0.1 * nyquist)
                acc += a * s_k
                s_next = c2 * s_k - s_prev
                s_prev = s_k
                s_k = s_next
            out[lane, i] = acc
            p += f * inv_sr
            p -= math.floor(p)
        phase[lane] = p


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

    def prepare(self, ctx: PrepareContext) -> None:
        self.inv_sr = 1.0 / ctx.sample_rate
        self.nyquist = 0.5 * ctx.sample_rate
        self.amps = np.zeros((ctx.lanes, self.count), np.float64)
        self.prev = np.zeros((ctx.lanes, self.count), np.float64)
        self.phase = np.zeros(ctx.lanes, np.float64)
        self.columns = [(f"amp_{k + 1}", self.amps[:, k : k + 1]) for k in range(self.count)]
        self.active = _active_flags(ctx)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        if frames == 0:  # no time passes: the bank works on whole blocks, so do nothing
            return
        for name, column in self.columns:
            np.copyto(column, ins[name])
        _harmonic_bank(ins.freq, self.amps, self.prev, self.phase, self.inv_sr, self.nyquist, self.active, outs.out)
        np.copyto(self.prev, self.amps)

    def reset(self) -> None:
        self.prev.fill(0.0)
        self.phase.fill(0.0)


@njit(cache=True, nogil=True)
def _noise_bank(white, gains, prev, sos, norm, state, active, out):  # pragma: no cover - compiled
    lanes, frames = out.shape
    bands, sections = sos.shape[0], sos.shape[1]
    for lane in range(lanes):
        if active[lane] == 0:  # a free voice: silence, its filters wait
            out[lane, :] = 0.0
            continue
        for i in range(frames):
            x0 = white[lane, i]
            frac = (i + 1.0) / frames
            acc = 0.0
            for b in range(bands):
                if norm[b] == 0.0:
                    continue
                g = prev[lane, b] + (gains[lane, b] - prev[lane, b]) * frac
                x = x0
                for s in range(sections):  # transposed direct form II, second-order sections
                    c = sos[b, s]
                    y = c[0] * x + state[lane, b, s, 0]
                    state[lane, b, s, 0] = c[1] * x - c[4] * y + state[lane, b, s, 1]
                    state[lane, b, s, 1] = c[2] * x - c[5] * y
                    x = y
                acc += g * norm[b] * x
            out[lane, i] = acc


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
        self.gains = np.zeros((ctx.lanes, n), np.float64)
        self.prev = np.zeros((ctx.lanes, n), np.float64)
        self.state = np.zeros((ctx.lanes, n, 2, 2), np.float64)
        self.white = np.zeros((ctx.lanes, ctx.block_size), np.float64)
        self.columns = [(f"band_{k + 1}", self.gains[:, k : k + 1]) for k in range(n)]
        self.active = _active_flags(ctx)
        self.rng = np.random.default_rng(self.seed)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        if frames == 0:  # no time passes: the bank works on whole blocks, so do nothing
            return
        for name, column in self.columns:
            np.copyto(column, ins[name])
        self.rng.standard_normal(out=self.white)
        _noise_bank(self.white, self.gains, self.prev, self.sos, self.norm, self.state, self.active, outs.out)
        np.copyto(self.prev, self.gains)

    def reset(self) -> None:
        self.prev.fill(0.0)
        self.state.fill(0.0)
        self.rng = np.random.default_rng(self.seed)


@hookimpl
def ng_register_nodes(register) -> None:
    register(HarmonicSynth)
    register(FilteredNoise)
