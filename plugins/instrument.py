"""``instrument.pitch``: a neural instrument's pitch: its trained range (fold or clamp) and vibrato."""

from __future__ import annotations

import math

import numpy as np

from neuralgraph.plugin import Input, Node, Output, Param, ParamValueError, Ports, PrepareContext, hookimpl, njit

POLICIES = ("fold", "clamp")
NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
TWO_PI = 2.0 * math.pi
#: The vibrato factor is computed every this many samples and held: at most 0.6 cents per step
#: for 50 cents at 5.5 Hz (the synth integrates the frequency, so the phase stays continuous).
VIBRATO_EVERY = 16
#: With ``tracked``: a held stretch's pitch must move this many semitones from the note the range
#: decision was taken for before it is taken again (vibrato at a range edge never flips an octave).
RETAKE_SEMITONES = 2


def note_name(note: int) -> str:
    """Scientific pitch name of a MIDI note: 60 is C4, 55 is G3."""
    return f"{NAMES[note % 12]}{note // 12 - 1}"


def range_shift(note: int, lowest: int, highest: int, policy: str) -> tuple[int, int]:
    """Semitones added to (the played pitch, the decoder's f0) for ``note`` under ``policy``.

    ``fold``: whole octaves that bring the note into lowest..highest, on both (the note sounds in
    the nearest octave the model knows). ``clamp``: the pitch is kept, the decoder is told the
    range's nearest edge (the note sounds at its own pitch with the edge note's timbre).
    """
    if lowest <= note <= highest:
        return 0, 0
    if policy == "clamp":
        return 0, (lowest if note < lowest else highest) - note
    octaves = -(-(lowest - note) // 12) if note < lowest else -(-(note - highest) // 12)
    semis = 12 * octaves if note < lowest else -12 * octaves
    return semis, semis


@njit(cache=True, nogil=True, inline="always")
def _note_number(k, f, n):  # pragma: no cover - compiled
    """The note a key plays: ``k``, or without a note port (k < 0) the nearest note of ``f``;
    ``n`` (the note held) when that is not a number."""
    if k < 0.0 and f > 0.0:
        k = 69.0 + 12.0 * math.log2(f / 440.0)
    return int(min(max(math.floor(k + 0.5), 0.0), 127.0)) if math.isfinite(k) else n


@njit(cache=True, nogil=True, inline="always")
def _start_note(n, ratio_freq, ratio_f0, outside, counts):  # pragma: no cover - compiled
    """Note ``n`` starts: its two frequency ratios; a note outside the range is counted."""
    if outside[n]:
        counts[n] += 1
    return ratio_freq[n], ratio_f0[n]


@njit(cache=True, nogil=True, inline="always")
def _vibrato(depth, p, vib_step):  # pragma: no cover - compiled
    """The vibrato factor at phase ``p`` for ``depth`` cents, and the phase VIBRATO_EVERY samples on."""
    v = 2.0 ** (depth * math.sin(TWO_PI * p) / 1200.0) if depth != 0.0 else 1.0
    p += vib_step
    if p >= 1.0:
        p -= 1.0
    return v, p


@njit(cache=True, nogil=True)
def _pitch(
    freq,
    note,
    gate,
    vibrato,
    out_freq,
    out_f0,
    ratio_freq,
    ratio_f0,
    outside,
    vib_step,
    phase,
    tick,
    factor,
    was_on,
    held_note,
    last_key,
    counts,
    tracked,
    frames,
):  # pragma: no cover - compiled
    lanes = out_freq.shape[0]
    # a tracked pitch's `voiced` is ramped across the block like its f0: a stretch starts when the
    # gate is fully up, where f0 has reached the frame's value (halfway, it is between two pitches)
    rise = 0.999 if tracked else 0.5
    frames = min(frames, out_freq.shape[1])
    for lane in range(lanes):
        p = phase[lane]
        t = tick[lane]
        v = factor[lane]
        on = was_on[lane] != 0
        n = held_note[lane]
        kp = last_key[lane]
        rf = ratio_freq[n]
        r0 = ratio_f0[n]
        for i in range(frames):
            f = freq[lane, i]
            if gate[lane, i] > rise:
                k = note[lane, i]
                if not on or k != kp:  # a rising gate, or another note number under the gate
                    kp = k
                    new = _note_number(k, f, n)
                    if not on or new != n:  # a note starts: its range decision holds until the next one
                        n, p, t = new, 0.0, 0
                        rf, r0 = _start_note(n, ratio_freq, ratio_f0, outside, counts)
                elif tracked:  # a held stretch of tracked audio that moved well away: decide again
                    new = _note_number(k, f, n)
                    moved = new - n >= RETAKE_SEMITONES or n - new >= RETAKE_SEMITONES
                    if moved and (ratio_freq[new] != rf or ratio_f0[new] != r0):
                        n = new
                        rf, r0 = _start_note(n, ratio_freq, ratio_f0, outside, counts)
                on = True
            else:
                on = False
            if t == 0:
                v, p = _vibrato(vibrato[lane, i], p, vib_step)
            t += 1
            if t == VIBRATO_EVERY:
                t = 0
            fv = f * v
            out_freq[lane, i] = fv * rf
            out_f0[lane, i] = fv * r0
        phase[lane] = p
        last_key[lane] = kp
        tick[lane] = t
        factor[lane] = v
        was_on[lane] = 1 if on else 0
        held_note[lane] = n


class InstrumentPitch(Node):
    """A neural instrument's pitch: notes folded or clamped into its trained range, plus vibrato.

    A decoder trained on ``lowest``..``highest`` guesses outside that range. Each note (a rising
    gate or a new note under the gate) outside it follows ``policy``: ``fold`` plays it in the
    nearest octave inside the range (``freq`` and ``f0`` both moved by whole octaves), ``clamp``
    keeps its pitch (``freq``) and gives the decoder the range's nearest edge (``f0``). The
    decision holds for the whole note, pitch bend and release included, so a bend never jumps an
    octave. The audio thread only counts such notes; the first of each note number is reported
    once, naming the note and the policy (``render`` prints it, ``play`` shows it).

    With ``tracked`` the pitch comes from audio (``analysis.pitch``): a voiced stretch is a note,
    decided from its pitch once the gate is fully up, and decided again (and reported if outside)
    when the pitch moves two semitones or more to a note the policy treats otherwise, so a singer
    gliding out of the range is followed while vibrato at a range edge never flips an octave.

    ``vibrato`` is a depth in cents (peak deviation) applied at ``vibrato_hz`` to both outputs,
    each note starting at phase 0 (no vibrato at depth 0).
    """

    type_name = "instrument.pitch"
    freq = Input(init=440.0, min=0.0, max=100000.0, unit="Hz", doc="Each voice's pitch (bend included).")
    note = Input(
        init=-1.0,
        min=-1.0,
        max=127.0,
        unit="note",
        doc="Each voice's MIDI note (`keys.note`); -1: the nearest note of `freq` at the note's start.",
    )
    gate = Input(init=1.0, min=0.0, max=1.0, doc="Above 0.5 while a note is held: a rising edge starts a note.")
    vibrato = Input(init=0.0, min=0.0, max=1200.0, unit="cents", doc="Vibrato depth (peak deviation).")
    f0 = Output(unit="Hz", span=(0.0, 20000.0), doc="The pitch to tell the decoder: always inside the range.")
    lowest = Param(init=55, kind=int, min=0, max=127, live=False, unit="note", doc="Lowest trained note.")
    highest = Param(init=91, kind=int, min=0, max=127, live=False, unit="note", doc="Highest trained note.")
    policy = Param(init="fold", kind=str, choices=POLICIES, live=False, doc="Outside the range: fold or clamp.")
    vibrato_hz = Param(init=5.5, min=0.0, max=20.0, live=False, unit="Hz", doc="Vibrato rate.")
    tracked = Param(
        init=False,
        kind=bool,
        live=False,
        doc="The pitch is tracked audio (`analysis.pitch`: `freq` its f0, `gate` its `voiced`, no `note`): "
        "a stretch starts when the gate is fully up, and is decided again when its pitch moves two "
        "semitones or more into another part of the range policy.",
    )

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        if self.highest - self.lowest < 11:
            raise ParamValueError(
                "highest",
                f"highest = {self.highest} with lowest = {self.lowest}: the range must "
                "span an octave (highest ≥ lowest + 11) for a note to fold into it",
            )

    def outputs(self) -> dict[str, Output]:
        # `freq` is an input too: the output of that name is declared here, not as an attribute
        return {
            "freq": Output(unit="Hz", span=(0.0, 20000.0), doc="The pitch to play (synth.harmonic)."),
            "f0": self._output_decls["f0"],
        }

    def prepare(self, ctx: PrepareContext) -> None:
        self.ratio_freq = np.ones(128, np.float64)
        self.ratio_f0 = np.ones(128, np.float64)
        self.outside = np.zeros(128, np.bool_)
        for n in range(128):
            shift_freq, shift_f0 = range_shift(n, self.lowest, self.highest, self.policy)
            self.ratio_freq[n] = 2.0 ** (shift_freq / 12.0)
            self.ratio_f0[n] = 2.0 ** (shift_f0 / 12.0)
            self.outside[n] = not self.lowest <= n <= self.highest
        self.vib_step = VIBRATO_EVERY * self.vibrato_hz / float(ctx.sample_rate)
        self.phase = np.zeros(ctx.lanes, np.float64)
        self.tick = np.zeros(ctx.lanes, np.int64)
        self.factor = np.ones(ctx.lanes, np.float64)
        self.was_on = np.zeros(ctx.lanes, np.int64)
        self.held_note = np.full(ctx.lanes, 69, np.int64)
        self.last_key = np.full(ctx.lanes, -1.0, np.float64)
        #: note-ons outside the range, per MIDI note (written by the audio thread only)
        self.counts = np.zeros(128, np.int64)
        self.reported = np.zeros(128, np.bool_)

    def reset(self) -> None:
        self.phase.fill(0.0)
        self.tick.fill(0)
        self.factor.fill(1.0)
        self.was_on.fill(0)
        self.held_note.fill(69)
        self.last_key.fill(-1.0)
        self.counts.fill(0)
        self.reported.fill(False)

    def kernel(self, ins: Ports, outs: Ports):
        return _pitch, (
            ins.freq,
            ins.note,
            ins.gate,
            ins.vibrato,
            outs.freq,
            outs.f0,
            self.ratio_freq,
            self.ratio_f0,
            self.outside,
            self.vib_step,
            self.phase,
            self.tick,
            self.factor,
            self.was_on,
            self.held_note,
            self.last_key,
            self.counts,
            self.tracked,
        )

    def notices(self) -> list[str]:
        new = np.flatnonzero((self.counts > 0) & ~self.reported)
        self.reported[new] = True
        return [self._message(int(n)) for n in new]

    def _message(self, note: int) -> str:
        shift_freq, shift_f0 = range_shift(note, self.lowest, self.highest, self.policy)
        span = f"{self.lowest}..{self.highest} ({note_name(self.lowest)}–{note_name(self.highest)})"
        if self.policy == "fold":
            how = f"policy 'fold': played as note {note + shift_freq} ({note_name(note + shift_freq)})"
        else:
            edge = note + shift_f0
            how = f"policy 'clamp': played at its pitch with the timbre of note {edge} ({note_name(edge)})"
        return f"note {note} ({note_name(note)}) is outside the trained range {span}; {how}"


@hookimpl
def ng_register_nodes(register) -> None:
    register(InstrumentPitch)
