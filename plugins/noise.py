"""Noise sources: white and pink, seeded and deterministic.

Each lane has its own SplitMix64 counter generator seeded from ``(seed, lane)``, so the output is
a pure function of the seed, the lane and the sample index: the same across runs, machines and
block sizes, and lanes (voices) are uncorrelated.
"""

from __future__ import annotations

import numpy as np

from neuralgraph.plugin import Input, Node, Output, Param, Ports, PrepareContext, hookimpl, njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_UNIT = 1.0 / 9007199254740992.0  # 2**-53

#: Paul Kellett's "refined" pink filter: six one-pole sections and a direct term, ±0.05 dB of
#: -3 dB/octave from about 1/4900 of the sample rate up to Nyquist.
KELLETT_POLES = np.array([0.99886, 0.99332, 0.96900, 0.86650, 0.55000, -0.7616])
KELLETT_GAINS = np.array([0.0555179, 0.0750759, 0.1538520, 0.3104856, 0.5329522, -0.0168980])
KELLETT_DIRECT = 0.5362
KELLETT_DELAYED = 0.115926
#: Kellett's output scale: for uniform -1..1 white noise, RMS 0.19 and peaks within about ±0.85.
PINK_GAIN = 0.11


@njit(cache=True, nogil=True, inline="always")
def _splitmix(state):  # pragma: no cover - compiled
    z = state
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True, inline="always")
def _uniform(state):  # pragma: no cover - compiled
    """Next counter state and a uniform value in [-1, 1)."""
    state = state + _GOLDEN
    return state, (_splitmix(state) >> _S11) * (2.0 * _UNIT) - 1.0


@njit(cache=True, nogil=True)
def _white_kernel(states, amp, out, frames):  # pragma: no cover - compiled
    for lane in range(out.shape[0]):
        s = states[lane]
        for i in range(frames):
            s, value = _uniform(s)
            out[lane, i] = value * amp[lane, i]
        states[lane] = s


@njit(cache=True, nogil=True)
def _pink_kernel(states, memory, poles, gains, direct, delayed, gain, amp, out, frames):  # pragma: no cover
    sections = poles.shape[0]
    for lane in range(out.shape[0]):
        s = states[lane]
        for i in range(frames):
            s, white = _uniform(s)
            total = memory[lane, sections] + white * direct  # the previous sample's delayed term
            for k in range(sections):
                b = poles[k] * memory[lane, k] + white * gains[k]
                memory[lane, k] = b
                total += b
            memory[lane, sections] = white * delayed
            out[lane, i] = total * gain * amp[lane, i]
        states[lane] = s


def seed_states(seed: int, lanes: int) -> np.ndarray:
    """Per-lane generator states for ``seed``: distinct, well mixed, reproducible."""
    states = np.empty(lanes, np.uint64)
    mask = (1 << 64) - 1
    for lane in range(lanes):
        z = ((seed & mask) * 0x9E3779B97F4A7C15 + (lane + 1) * 0xD1B54A32D192ED03) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        states[lane] = z ^ (z >> 31)
    return states


class _Noise(Node):
    seed = Param(
        init=1,
        kind=int,
        min=0,
        max=2**63 - 1,
        live=False,
        doc="Seed: the same seed gives the same noise on every run and block size.",
    )
    amp = Input(
        init=1.0,
        doc="Gain, linear. Fed from a per-voice signal (e.g. velocity), it also gives "
        "each voice lane its own independent noise.",
    )

    def prepare(self, ctx: PrepareContext) -> None:
        self.initial = seed_states(self.seed, ctx.lanes)
        self.states = self.initial.copy()

    def reset(self) -> None:
        np.copyto(self.states, self.initial)


class WhiteNoise(_Noise):
    """White noise, uniform in -1..1 (flat spectrum, RMS 0.577); each lane independent."""

    type_name = "noise.white"
    out = Output(span=(-1.0, 1.0), doc="Uniform white noise.")

    def kernel(self, ins: Ports, outs: Ports):
        return _white_kernel, (self.states, ins.amp, outs.out)


class PinkNoise(_Noise):
    """Pink noise (-3 dB per octave) by Paul Kellett's refined filter on seeded white noise."""

    type_name = "noise.pink"
    out = Output(span=(-1.0, 1.0), doc="Pink noise, RMS about 0.19 at amp 1.")

    def prepare(self, ctx: PrepareContext) -> None:
        super().prepare(ctx)
        self.memory = np.zeros((ctx.lanes, len(KELLETT_POLES) + 1), np.float64)

    def reset(self) -> None:
        super().reset()
        self.memory.fill(0.0)

    def kernel(self, ins: Ports, outs: Ports):
        return _pink_kernel, (
            self.states,
            self.memory,
            KELLETT_POLES,
            KELLETT_GAINS,
            KELLETT_DIRECT,
            KELLETT_DELAYED,
            PINK_GAIN,
            ins.amp,
            outs.out,
        )


@hookimpl
def ng_register_nodes(register) -> None:
    register(WhiteNoise)
    register(PinkNoise)
