"""Envelopes: ``env.adsr`` and ``env.ar``, gated per lane with sample-accurate edges.

Both run one numba kernel over all lanes. A rising gate edge (the gate crossing above 0.5) at
frame ``k`` starts the attack at frame ``k``; a falling edge starts the release at its frame.

Segment timing: every segment takes its set time from wherever it starts to its end level, so
the attack from silence reaches 1.0 on the ``round(attack_ms * sr / 1000)``-th frame after the
edge (the edge frame counts as the first), the decay lands exactly on ``sustain`` and the
release exactly on 0.

Curves: ``lin`` moves in equal steps. ``exp`` follows the analogue RC shape: an exponential
aimed past the end level by a fraction ``ratio`` of the segment's excursion, so it arrives at the
end level after exactly the segment time and is snapped there. The attack uses ratio 0.3 (a
rounded, fast-then-slowing rise); decay and release use 0.001, so they fall 60 dB of their
excursion over the set time (time constant = time / ln(1001) = time / 6.91).
"""

from __future__ import annotations

import math

import numpy as np

from neuralgraph.plugin import Input, Node, Output, Param, Ports, PrepareContext, hookimpl, njit

IDLE, ATTACK, DECAY, SUSTAIN, RELEASE = 0, 1, 2, 3, 4
ATTACK_RATIO = 0.3
DECAY_RATIO = 0.001
SUSTAIN_GLIDE_MS = 5.0  # a live change of the sustain level glides over this time constant

# Layout of the coefficient vector handed to the kernel.
C_N_ATTACK, C_N_DECAY, C_N_RELEASE, C_SUSTAIN, C_EXP, C_MUL_A, C_MUL_D, C_MUL_R, C_GLIDE, C_HARD = range(10)


@njit(cache=True, nogil=True)
def _start(lane, y0, end, n, mul_exp, ratio, exp, mul, add, remaining, seg_end):  # pragma: no cover - compiled
    """Set up a segment from ``y0`` to ``end`` over ``n`` steps: y <- y * mul + add."""
    remaining[lane] = n
    seg_end[lane] = end
    if exp:
        target = end + ratio * (end - y0)
        mul[lane] = mul_exp
        add[lane] = target * (1.0 - mul_exp)
    else:
        mul[lane] = 1.0
        add[lane] = (end - y0) / n


@njit(cache=True, nogil=True)
def _replan(lane, y, n_new, seg_n, ratio, exp, mul, add, remaining, seg_end):  # pragma: no cover - compiled
    """A live change of the running segment's time: the rest of it (the same fraction of the new
    time as was left of the old) from the current level to the segment's end level."""
    rest = max(1, int(round(remaining[lane] * n_new / seg_n[lane])))
    mul_exp = (ratio / (1.0 + ratio)) ** (1.0 / rest)
    _start(lane, y, seg_end[lane], rest, mul_exp, ratio, exp, mul, add, remaining, seg_end)
    seg_n[lane] = n_new


@njit(cache=True, nogil=True)
def _envelope(
    gate, out, frames, coefs, level, stage, remaining, mul, add, seg_end, prev_gate, seg_n
):  # pragma: no cover - compiled
    lanes = out.shape[0]
    frames = min(frames, out.shape[1])
    n_attack = int(coefs[C_N_ATTACK])
    n_decay = int(coefs[C_N_DECAY])
    n_release = int(coefs[C_N_RELEASE])
    sustain = coefs[C_SUSTAIN]
    exp = coefs[C_EXP] != 0.0
    glide = coefs[C_GLIDE]
    hard = coefs[C_HARD] != 0.0
    for lane in range(lanes):
        y = level[lane]
        st = stage[lane]
        was_on = prev_gate[lane] != 0
        # segment times change between blocks: a running segment planned with another time is re-planned
        if st == ATTACK and seg_n[lane] != n_attack:
            _replan(lane, y, n_attack, seg_n, ATTACK_RATIO, exp, mul, add, remaining, seg_end)
        elif st == DECAY and seg_n[lane] != n_decay:
            _replan(lane, y, n_decay, seg_n, DECAY_RATIO, exp, mul, add, remaining, seg_end)
        elif st == RELEASE and seg_n[lane] != n_release:
            _replan(lane, y, n_release, seg_n, DECAY_RATIO, exp, mul, add, remaining, seg_end)
        for i in range(frames):
            g = gate[lane, i]
            on = g > 0.5  # NaN counts as off
            if on and not was_on:
                if hard:
                    y = 0.0
                st = ATTACK
                _start(lane, y, 1.0, n_attack, coefs[C_MUL_A], ATTACK_RATIO, exp, mul, add, remaining, seg_end)
                seg_n[lane] = n_attack
            elif was_on and not on and st != IDLE:
                st = RELEASE
                _start(lane, y, 0.0, n_release, coefs[C_MUL_R], DECAY_RATIO, exp, mul, add, remaining, seg_end)
                seg_n[lane] = n_release
            was_on = on
            if st == SUSTAIN:
                y += (sustain - y) * glide
            elif st != IDLE:
                y = y * mul[lane] + add[lane]
                remaining[lane] -= 1
                if remaining[lane] <= 0:
                    if st == ATTACK:
                        y = 1.0
                        st = DECAY
                        _start(
                            lane, y, sustain, n_decay, coefs[C_MUL_D], DECAY_RATIO, exp, mul, add, remaining, seg_end
                        )
                        seg_n[lane] = n_decay
                    elif st == DECAY:
                        # the level the decay aimed at; a sustain changed meanwhile is glided to
                        y = seg_end[lane]
                        st = SUSTAIN
                    else:
                        y = 0.0
                        st = IDLE
            out[lane, i] = y
        level[lane] = y
        stage[lane] = st
        prev_gate[lane] = 1 if was_on else 0


def _steps(ms: float, sample_rate: float) -> int:
    """Frames a segment of ``ms`` takes (at least one: a zero time is a jump at the edge)."""
    return max(1, int(round(ms * sample_rate / 1000.0)))


class _GatedEnvelope(Node):
    """Shared machinery of the gated envelopes (state, coefficients, kernel call)."""

    gate = Input(init=0.0, min=0.0, max=1.0, doc="Gate per lane: above 0.5 is on. Edges act on their frame.")
    out = Output(span=(0.0, 1.0), doc="The envelope, 0..1.")
    attack_ms = Param(init=10.0, min=0.0, max=60000.0, unit="ms", doc="Time to rise to 1.")
    release_ms = Param(init=300.0, min=0.0, max=60000.0, unit="ms", doc="Time to fall to 0 after the gate ends.")
    curve = Param(init="exp", kind=str, choices=("exp", "lin"), doc="Segment shape: RC-like or straight.")
    hard_retrigger = Param(
        init=False, kind=bool, doc="A new gate restarts from 0 (percussive) instead of from the current level."
    )

    def _decay_ms(self) -> float:
        return 0.0

    def _sustain(self) -> float:
        return 1.0

    def prepare(self, ctx: PrepareContext) -> None:
        lanes = ctx.lanes
        self.sample_rate = float(ctx.sample_rate)
        self.coefs = np.zeros(10, np.float64)
        self.level = np.zeros(lanes, np.float64)
        self.stage = np.zeros(lanes, np.int64)
        self.remaining = np.zeros(lanes, np.int64)
        self.mul = np.ones(lanes, np.float64)
        self.add = np.zeros(lanes, np.float64)
        self.seg_end = np.zeros(lanes, np.float64)
        self.prev_gate = np.zeros(lanes, np.int64)
        self.seg_n = np.ones(lanes, np.int64)  # the time (frames) the running segment was planned with
        self._update()

    def _update(self) -> None:
        sr, c = self.sample_rate, self.coefs
        n_a, n_d, n_r = _steps(self.attack_ms, sr), _steps(self._decay_ms(), sr), _steps(self.release_ms, sr)
        c[C_N_ATTACK], c[C_N_DECAY], c[C_N_RELEASE] = n_a, n_d, n_r
        c[C_SUSTAIN] = self._sustain()
        c[C_EXP] = 1.0 if self.curve == "exp" else 0.0
        c[C_MUL_A] = (ATTACK_RATIO / (1.0 + ATTACK_RATIO)) ** (1.0 / n_a)
        c[C_MUL_D] = (DECAY_RATIO / (1.0 + DECAY_RATIO)) ** (1.0 / n_d)
        c[C_MUL_R] = (DECAY_RATIO / (1.0 + DECAY_RATIO)) ** (1.0 / n_r)
        c[C_GLIDE] = 1.0 - math.exp(-1000.0 / (SUSTAIN_GLIDE_MS * sr))
        c[C_HARD] = 1.0 if self.hard_retrigger else 0.0

    def on_param(self, name: str) -> None:
        self._update()

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        _envelope(
            ins.gate,
            outs.out,
            frames,
            self.coefs,
            self.level,
            self.stage,
            self.remaining,
            self.mul,
            self.add,
            self.seg_end,
            self.prev_gate,
            self.seg_n,
        )

    def reset(self) -> None:
        self.level.fill(0.0)
        self.stage.fill(IDLE)
        self.remaining.fill(0)
        self.mul.fill(1.0)
        self.add.fill(0.0)
        self.seg_end.fill(0.0)
        self.prev_gate.fill(0)
        self.seg_n.fill(1)


class ADSR(_GatedEnvelope):
    """Attack-decay-sustain-release envelope, one per lane, sample-accurate gate edges.

    A rising gate starts the attack from the current level (or from 0 with ``hard_retrigger``);
    the decay then falls to ``sustain``, held while the gate stays on; a falling gate releases
    to 0 from wherever the envelope is.
    """

    type_name = "env.adsr"
    decay_ms = Param(init=100.0, min=0.0, max=60000.0, unit="ms", doc="Time to fall from 1 to the sustain level.")
    sustain = Param(init=0.7, min=0.0, max=1.0, doc="Level held while the gate is on (a change glides over 5 ms).")

    def _decay_ms(self) -> float:
        return self.decay_ms

    def _sustain(self) -> float:
        return self.sustain


class AR(_GatedEnvelope):
    """Attack-release envelope: rises to 1 while the gate is on, falls to 0 when it ends."""

    type_name = "env.ar"


@hookimpl
def ng_register_nodes(register) -> None:
    register(ADSR)
    register(AR)
