"""MIDI to signals: polyphonic voice allocation, controllers, pitch bend; summing voice lanes.

``midi.voices`` turns note events into ``count`` lanes (one per voice) of ``freq``, ``note``,
``gate``, ``velocity`` and ``aftertouch``. Every output is audio rate and every event takes effect
at its own frame inside the block, so a note-on at frame k raises the gate from frame k. The whole
block (events, allocation, sustain pedal, pitch bend, the per-frame writes) runs in one numba
kernel over preallocated state: no allocation and no per-event Python in the audio thread.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from neuralgraph.plugin import Input, Node, Output, Param, Ports, PrepareContext, Rate, hookimpl, njit

# voice states
FREE, HELD, SUSTAINED, RELEASED = 0, 1, 2, 3
MODES = ("poly", "mono", "legato")
STACK = 128  # held keys remembered in mono/legato mode (one per MIDI note)


@njit(cache=True, nogil=True)
def _note_freq(note, bend, bend_range):  # pragma: no cover - compiled
    return 440.0 * 2.0 ** ((note - 69.0 + bend * bend_range) / 12.0)


@njit(cache=True, nogil=True)
def _release(v, t, state, gate, off_time, off_seq, misc):  # pragma: no cover - compiled
    state[v] = RELEASED
    gate[v] = 0.0
    off_time[v] = t
    off_seq[v] = misc[2]
    misc[2] += 1


@njit(cache=True, nogil=True)
def _key_up(v, t, pedal, state, gate, off_time, off_seq, misc):  # pragma: no cover - compiled
    """The key of a held voice went up: it rings on under the sustain pedal, or is released.

    A pedalled voice's ``off_seq`` records its key-up, so stealing can take the longest-lifted first.
    """
    if pedal:
        state[v] = SUSTAINED
        off_seq[v] = misc[2]
        misc[2] += 1
    else:
        _release(v, t, state, gate, off_time, off_seq, misc)


@njit(cache=True, nogil=True)
def _first_by(order, want, state, note, chan, key, ch):  # pragma: no cover - compiled
    """The voice in state ``want`` (of ``key`` on ``ch`` when key >= 0) lowest in ``order``, or -1."""
    v = -1
    best = 0
    for u in range(state.shape[0]):
        if state[u] == want and (key < 0 or (note[u] == key and chan[u] == ch)) and (v < 0 or order[u] < best):
            v, best = u, order[u]
    return v


@njit(cache=True, nogil=True)
def _pick_voice(d1, ch, t, tail, note, chan, state, on_seq, off_seq, off_time):  # pragma: no cover - compiled
    """The voice a poly note-on takes (docs/midi.md, "Voice allocation"); the order is:

    1. a free voice (never used, or released more than ``tail`` frames ago), released longest ago;
    2. else the voice released longest ago that is still in its tail;
    3. else a pedal-held voice of the same key and channel (re-striking a pedalled key);
    4. else the pedal-held voice whose key went up longest ago;
    5. else the held voice with the oldest note-on.
    """
    v = -1
    best = 0
    for u in range(state.shape[0]):
        free = state[u] == FREE or (state[u] == RELEASED and t - off_time[u] >= tail)
        if free and (v < 0 or off_seq[u] < best):
            v, best = u, off_seq[u]
    if v < 0:
        v = _first_by(off_seq, RELEASED, state, note, chan, -1, ch)
    if v < 0:
        v = _first_by(off_seq, SUSTAINED, state, note, chan, d1, ch)
    if v < 0:
        v = _first_by(off_seq, SUSTAINED, state, note, chan, -1, ch)
    if v < 0:
        v = _first_by(on_seq, HELD, state, note, chan, -1, ch)
    return v


@njit(cache=True, nogil=True)
def _start(
    v, n, ch, velocity, retrigger, note, chan, state, gate, vel, at, freq, on_seq, gap, ch_bend, bend_range, misc
):  # pragma: no cover - compiled
    if retrigger and gate[v] > 0.0:
        gap[v] = 1  # one frame of gate 0 so envelopes see a new rising edge
    note[v] = n
    chan[v] = ch
    if retrigger:
        vel[v] = velocity
        at[v] = 0.0
        on_seq[v] = misc[2]
        misc[2] += 1
    state[v] = HELD
    gate[v] = 1.0
    freq[v] = _note_freq(n, ch_bend[ch], bend_range)


@njit(cache=True, nogil=True)
def _stack_drop(d1, ch, stack_note, stack_chan, stack_vel, top):  # pragma: no cover - compiled
    """Remove key ``d1`` of channel ``ch`` from the mono stack's ``top`` entries; the new count."""
    w = 0
    for u in range(top):
        if not (stack_note[u] == d1 and stack_chan[u] == ch):
            stack_note[w], stack_chan[w], stack_vel[w] = stack_note[u], stack_chan[u], stack_vel[u]
            w += 1
    return w


@njit(cache=True, nogil=True)
def _hold_values(pos, k, gap, gate, freq, note, vel, at, o_freq, o_note, o_gate, o_vel, o_at):  # pragma: no cover
    """Frames ``pos``..``k - 1`` carry every voice's current values (a retriggered voice's gate
    is 0 for the first of them, so an envelope sees a new rising edge)."""
    for v in range(note.shape[0]):
        start = pos
        if gap[v]:
            o_gate[v, pos] = 0.0
            start = pos + 1
            gap[v] = 0
        g = gate[v]
        for j in range(start, k):
            o_gate[v, j] = g
        f, nn, ve, a = freq[v], note[v], vel[v], at[v]
        for j in range(pos, k):
            o_freq[v, j] = f
            o_note[v, j] = nn
            o_vel[v, j] = ve
            o_at[v, j] = a


@njit(cache=True, nogil=True)
def _poly_note_on(
    d1,
    ch,
    velocity,
    t,
    tail,
    note,
    chan,
    state,
    gate,
    vel,
    at,
    freq,
    on_seq,
    off_seq,
    off_time,
    gap,
    ch_bend,
    bend_range,
    misc,
    orphans,
):  # pragma: no cover - compiled
    """Every note-on gets its own voice: unisons and same-key overlaps included."""
    v = _pick_voice(d1, ch, t, tail, note, chan, state, on_seq, off_seq, off_time)
    if state[v] == HELD:  # a stolen held note: its note-off is still to come
        orphans[chan[v] * 128 + note[v]] += 1
    _start(v, d1, ch, velocity, True, note, chan, state, gate, vel, at, freq, on_seq, gap, ch_bend, bend_range, misc)


@njit(cache=True, nogil=True)
def _poly_note_off(
    d1, ch, t, note, chan, state, gate, on_seq, off_seq, off_time, ch_sus, misc, orphans
):  # pragma: no cover - compiled
    """A note-off ends the oldest held note of its key and channel, unless that note was stolen."""
    key = ch * 128 + d1
    if orphans[key] > 0:  # the oldest note of this key was stolen: this is its note-off
        orphans[key] -= 1
        return
    v = -1  # the oldest held note of this key and channel ends
    for u in range(note.shape[0]):
        if note[u] == d1 and chan[u] == ch and state[u] == HELD and (v < 0 or on_seq[u] < on_seq[v]):
            v = u
    if v >= 0:
        _key_up(v, t, ch_sus[ch], state, gate, off_time, off_seq, misc)


@njit(cache=True, nogil=True)
def _mono_note_on(
    d1,
    ch,
    velocity,
    mode,
    note,
    chan,
    state,
    gate,
    vel,
    at,
    freq,
    on_seq,
    gap,
    ch_bend,
    bend_range,
    stack_note,
    stack_chan,
    stack_vel,
    misc,
):  # pragma: no cover - compiled
    """Mono and legato: the key goes on top of the stack (an earlier entry of it dropped) and plays on voice 0."""
    w = _stack_drop(d1, ch, stack_note, stack_chan, stack_vel, misc[1])
    if w >= STACK:
        w = STACK - 1
    stack_note[w], stack_chan[w], stack_vel[w] = d1, ch, velocity
    misc[1] = w + 1
    retrigger = mode == 1 or gate[0] == 0.0
    _start(
        0, d1, ch, velocity, retrigger, note, chan, state, gate, vel, at, freq, on_seq, gap, ch_bend, bend_range, misc
    )


@njit(cache=True, nogil=True)
def _mono_note_off(
    d1,
    ch,
    t,
    mode,
    note,
    chan,
    state,
    gate,
    vel,
    at,
    freq,
    on_seq,
    off_seq,
    off_time,
    gap,
    ch_bend,
    ch_sus,
    bend_range,
    stack_note,
    stack_chan,
    stack_vel,
    misc,
):  # pragma: no cover - compiled
    """Mono and legato: the key leaves the stack; voice 0 goes back to the most recent key still held."""
    w = _stack_drop(d1, ch, stack_note, stack_chan, stack_vel, misc[1])
    misc[1] = w
    if state[0] == HELD and note[0] == d1 and chan[0] == ch:
        if w > 0:  # back to the most recent key still held
            _start(
                0,
                stack_note[w - 1],
                stack_chan[w - 1],
                stack_vel[w - 1],
                mode == 1,
                note,
                chan,
                state,
                gate,
                vel,
                at,
                freq,
                on_seq,
                gap,
                ch_bend,
                bend_range,
                misc,
            )
        else:
            _key_up(0, t, ch_sus[ch], state, gate, off_time, off_seq, misc)


@njit(cache=True, nogil=True)
def _control_change(
    d1,
    d2,
    ch,
    t,
    tail,
    bend_range,
    note,
    chan,
    state,
    gate,
    at,
    freq,
    off_seq,
    off_time,
    ch_bend,
    ch_sus,
    misc,
    orphans,
):  # pragma: no cover - compiled
    """The controllers voices obey: sustain pedal (64), all notes off (123), all sound off (120),
    reset all controllers (121). Others are for ``midi.cc``."""
    if d1 == 64:  # sustain pedal
        if d2 >= 64:
            ch_sus[ch] = 1
        else:
            ch_sus[ch] = 0
            for v in range(note.shape[0]):
                if state[v] == SUSTAINED and chan[v] == ch:
                    _release(v, t, state, gate, off_time, off_seq, misc)
    elif d1 == 123:  # all notes off: every held key goes up (the pedal still holds them)
        for v in range(note.shape[0]):
            if state[v] == HELD and chan[v] == ch:
                _key_up(v, t, ch_sus[ch], state, gate, off_time, off_seq, misc)
        orphans[ch * 128 : ch * 128 + 128] = 0
        misc[1] = 0
    elif d1 == 120:  # all sound off: every voice of the channel ends now, pedal or not, tail skipped
        for v in range(note.shape[0]):
            if state[v] != FREE and chan[v] == ch:
                if state[v] != RELEASED:
                    _release(v, t, state, gate, off_time, off_seq, misc)
                off_time[v] = t - tail  # free at once: lanes flagged idle, reused first
        orphans[ch * 128 : ch * 128 + 128] = 0
        misc[1] = 0
    elif d1 == 121:  # reset all controllers: bend centred, pedal up, pressure 0
        ch_bend[ch] = 0.0
        ch_sus[ch] = 0
        for v in range(note.shape[0]):
            if chan[v] == ch:
                if state[v] == SUSTAINED:
                    _release(v, t, state, gate, off_time, off_seq, misc)
                freq[v] = _note_freq(note[v], 0.0, bend_range)
                at[v] = 0.0


@njit(cache=True, nogil=True)
def _bend_and_pressure(kind, d1, d2, ch, bend_range, note, chan, state, at, freq, ch_bend):  # pragma: no cover
    """Pitch bend (14 bits centred on 8192), channel pressure and polyphonic key pressure."""
    if kind == 0xE0:  # pitch bend
        b = ((d2 << 7) | d1) - 8192
        ch_bend[ch] = b / 8192.0
        for v in range(note.shape[0]):
            if chan[v] == ch:
                freq[v] = _note_freq(note[v], ch_bend[ch], bend_range)
    elif kind == 0xD0:  # channel pressure
        for v in range(note.shape[0]):
            if chan[v] == ch and (state[v] == HELD or state[v] == SUSTAINED):
                at[v] = d1 / 127.0
    elif kind == 0xA0:  # polyphonic key pressure
        for v in range(note.shape[0]):
            if chan[v] == ch and note[v] == d1 and (state[v] == HELD or state[v] == SUSTAINED):
                at[v] = d2 / 127.0


@njit(cache=True, nogil=True)
def _apply_event(
    status,
    d1,
    d2,
    t,
    mode,
    tail,
    bend_range,
    note,
    chan,
    state,
    gate,
    vel,
    at,
    freq,
    on_seq,
    off_seq,
    off_time,
    gap,
    ch_bend,
    ch_sus,
    stack_note,
    stack_chan,
    stack_vel,
    misc,
    orphans,
):  # pragma: no cover - compiled
    """One MIDI message at sample time ``t``, by kind: note on, note off, controller, bend, pressure."""
    kind = status & 0xF0
    ch = status & 0x0F
    if kind == 0x90 and d2 > 0:  # note on
        velocity = d2 / 127.0
        if mode == 0:
            _poly_note_on(
                d1,
                ch,
                velocity,
                t,
                tail,
                note,
                chan,
                state,
                gate,
                vel,
                at,
                freq,
                on_seq,
                off_seq,
                off_time,
                gap,
                ch_bend,
                bend_range,
                misc,
                orphans,
            )
        else:
            _mono_note_on(
                d1,
                ch,
                velocity,
                mode,
                note,
                chan,
                state,
                gate,
                vel,
                at,
                freq,
                on_seq,
                gap,
                ch_bend,
                bend_range,
                stack_note,
                stack_chan,
                stack_vel,
                misc,
            )
    elif kind == 0x80 or kind == 0x90:  # note off (or note on with velocity 0)
        if mode == 0:
            _poly_note_off(d1, ch, t, note, chan, state, gate, on_seq, off_seq, off_time, ch_sus, misc, orphans)
        else:
            _mono_note_off(
                d1,
                ch,
                t,
                mode,
                note,
                chan,
                state,
                gate,
                vel,
                at,
                freq,
                on_seq,
                off_seq,
                off_time,
                gap,
                ch_bend,
                ch_sus,
                bend_range,
                stack_note,
                stack_chan,
                stack_vel,
                misc,
            )
    elif kind == 0xB0:  # control change
        _control_change(
            d1,
            d2,
            ch,
            t,
            tail,
            bend_range,
            note,
            chan,
            state,
            gate,
            at,
            freq,
            off_seq,
            off_time,
            ch_bend,
            ch_sus,
            misc,
            orphans,
        )
    else:
        _bend_and_pressure(kind, d1, d2, ch, bend_range, note, chan, state, at, freq, ch_bend)


@njit(cache=True, nogil=True, inline="always")
def _event_frame(ev_frame, i, n_events, frames, pos):  # pragma: no cover - compiled
    """The frame at which event ``i`` applies: its own, held within the block and not before
    ``pos`` (an event out of order, or in an empty block, applies at once); ``frames`` after the
    last event."""
    if i >= n_events:
        return frames
    k = ev_frame[i]
    if k > frames - 1:
        k = frames - 1
    if k < pos:
        k = pos
    return k


@njit(cache=True, nogil=True)
def _voices_kernel(
    ev_frame,
    ev_status,
    ev_d1,
    ev_d2,
    ev_count,
    settings,
    note,
    chan,
    state,
    gate,
    vel,
    at,
    freq,
    on_seq,
    off_seq,
    off_time,
    gap,
    ch_bend,
    ch_sus,
    stack_note,
    stack_chan,
    stack_vel,
    misc,
    o_freq,
    o_note,
    o_gate,
    o_vel,
    o_at,
    activity,
    orphans,
    frames,
):  # pragma: no cover
    """``midi.voices``' kernel, one block of voice allocation; flags the voices sounding at its end
    in ``activity`` (1 sounding, 0 free). The event count and the live settings (mode, channel,
    bend range, tail) come from arrays, so that the fused code sees ``on_param``'s changes.

    misc[0] = sample clock at the block start, misc[1] = keys on the mono stack, misc[2] = a
    sequence counter ordering note-ons and releases (ties inside a frame stay ordered).
    ``orphans[ch * 128 + key]`` counts the key's held notes whose voice was stolen: their
    note-offs are still to come and must not end a later note of the same key.
    """
    n_events = ev_count[0]
    mode, chan_filter, bend_range, tail = int(settings[0]), int(settings[1]), settings[2], int(settings[3])
    clock = misc[0]
    pos = 0
    for i in range(n_events + 1):
        k = _event_frame(ev_frame, i, n_events, frames, pos)
        if k > pos:  # the frames before this event carry the current values
            _hold_values(pos, k, gap, gate, freq, note, vel, at, o_freq, o_note, o_gate, o_vel, o_at)
            pos = k
        if i == n_events:
            break
        status = np.int64(ev_status[i])
        if chan_filter > 0 and (status & 0x0F) != chan_filter - 1:
            continue
        _apply_event(
            status,
            np.int64(ev_d1[i]),
            np.int64(ev_d2[i]),
            clock + k,
            mode,
            tail,
            bend_range,
            note,
            chan,
            state,
            gate,
            vel,
            at,
            freq,
            on_seq,
            off_seq,
            off_time,
            gap,
            ch_bend,
            ch_sus,
            stack_note,
            stack_chan,
            stack_vel,
            misc,
            orphans,
        )
    end = clock + frames
    misc[0] = end
    for v in range(note.shape[0]):
        if state[v] == RELEASED and end - off_time[v] >= tail:
            state[v] = FREE
        activity[v] = state[v] != FREE


class Voices(Node):
    """MIDI notes to ``count`` voice lanes: freq, note, gate, velocity and aftertouch per voice.

    ``poly`` counts notes per key, as a sampler does: every note-on takes its own voice (a unison
    of two parts is two voices), and a note-off ends the oldest sounding note of its key and
    channel. A note-on takes a free voice (the one released longest ago), else the voice released
    longest ago still in its ``tail_ms``, else a pedal-held voice of the same key, else the
    pedal-held voice whose key went up longest ago, else the held voice with the oldest note-on;
    the stolen note's own note-off is then absorbed. A stolen voice's gate drops to 0 for one
    frame, so an envelope downstream restarts. ``mono`` plays one voice (lane 0), last-note
    priority, retriggering on every key; ``legato`` retriggers only when no key was held. The
    sustain pedal (CC 64) holds released keys; CC 123 lifts every key (the pedal still holds),
    CC 120 ends every voice of the channel at once, CC 121 centres bend, lifts the pedal and zeroes
    pressure. A voice is free ``tail_ms`` after its release; nodes downstream may then skip it
    (``lane_activity``). docs/midi.md has the whole policy.
    """

    type_name = "midi.voices"
    midi = Input(rate=Rate.EVENTS, source="midi", doc="MIDI events (unconnected: the engine's MIDI input).")
    count = Param(init=8, kind=int, min=1, max=128, live=False, doc="Number of voices (lanes).")
    mode = Param(init="poly", kind=str, choices=MODES, doc="poly, mono (retrigger) or legato.")
    bend_range = Param(init=2.0, min=0.0, max=48.0, unit="semitones", doc="Pitch-bend range.")
    channel = Param(init=0, kind=int, min=0, max=16, doc="MIDI channel 1-16 to follow; 0 = all channels.")
    tail_ms = Param(
        init=1000.0,
        min=0.0,
        max=60000.0,
        unit="ms",
        doc="How long a released voice keeps sounding (its envelope's release) before it is free.",
    )
    freq = Output(span=(0.0, 20000.0), unit="Hz", doc="Pitch of the voice's note, with pitch bend.")
    note = Output(span=(0.0, 127.0), doc="MIDI note number of the voice.")
    gate = Output(span=(0.0, 1.0), doc="1 while the key (or the sustain pedal) holds the note, else 0.")
    velocity = Output(span=(0.0, 1.0), doc="Note-on velocity, 0..1.")
    aftertouch = Output(span=(0.0, 1.0), doc="Key or channel pressure, 0..1.")

    @property
    def active_voices(self) -> int:
        """Voices sounding at the end of the last block (held, sustained or in their release tail)."""
        return int(np.count_nonzero(self.activity)) if hasattr(self, "activity") else 0

    def output_lanes(self, lanes: int) -> Mapping[str, int]:
        return {name: self.count for name in self.outputs()}

    def prepare(self, ctx: PrepareContext) -> None:
        v = self.count
        self.sample_rate = ctx.sample_rate
        self.v_note = np.zeros(v, np.int32)
        self.v_chan = np.zeros(v, np.int32)
        self.v_state = np.zeros(v, np.int8)
        self.v_gate = np.zeros(v, np.float64)
        self.v_vel = np.zeros(v, np.float64)
        self.v_at = np.zeros(v, np.float64)
        self.v_freq = np.zeros(v, np.float64)
        self.v_on = np.zeros(v, np.int64)
        self.v_off_seq = np.zeros(v, np.int64)
        self.v_off_time = np.zeros(v, np.int64)
        self.v_gap = np.zeros(v, np.uint8)
        self.ch_bend = np.zeros(16, np.float64)
        self.ch_sus = np.zeros(16, np.uint8)
        self.stack_note = np.zeros(STACK, np.int32)
        self.stack_chan = np.zeros(STACK, np.int32)
        self.stack_vel = np.zeros(STACK, np.float64)
        self.misc = np.zeros(3, np.int64)
        self.activity = np.zeros(v, np.uint8)
        self.orphans = np.zeros(16 * 128, np.int32)  # per channel and key: note-offs of stolen notes to absorb
        # mode, channel, bend range, tail: live parameters reach a fused kernel through this array
        self.settings = np.zeros(4, np.float64)
        self.on_param("tail_ms")
        self.on_param("mode")
        self.reset()

    def on_param(self, name: str) -> None:
        if name == "tail_ms":
            self._tail = int(round(self.tail_ms * self.sample_rate / 1000.0))
        elif name == "mode":
            self._mode = MODES.index(self.mode)
        elif name == "bend_range" and hasattr(self, "v_freq"):
            for v in range(self.count):
                self.v_freq[v] = 440.0 * 2.0 ** (
                    (self.v_note[v] - 69 + self.ch_bend[self.v_chan[v]] * self.bend_range) / 12.0
                )
        if hasattr(self, "settings") and hasattr(self, "_mode") and hasattr(self, "_tail"):
            self.settings[0] = self._mode
            self.settings[1] = self.channel
            self.settings[2] = self.bend_range
            self.settings[3] = self._tail

    def reset(self) -> None:
        self.v_note.fill(69)
        self.v_chan.fill(0)
        self.v_state.fill(FREE)
        self.v_gate.fill(0.0)
        self.v_vel.fill(0.0)
        self.v_at.fill(0.0)
        self.v_freq.fill(440.0)
        self.v_on.fill(0)
        # never-used voices count as released long ago, lowest index first
        self.v_off_seq[:] = np.arange(self.count) - self.count
        self.v_off_time.fill(-(1 << 40))
        self.v_gap.fill(0)
        self.ch_bend.fill(0.0)
        self.ch_sus.fill(0)
        self.misc.fill(0)
        self.activity.fill(0)
        self.orphans.fill(0)

    def lane_activity(self) -> np.ndarray:
        """1 for each voice held, sustained or in its ``tail_ms`` after release; 0 for a free voice."""
        return self.activity

    def kernel(self, ins: Ports, outs: Ports):
        ev = ins.midi
        return _voices_kernel, (
            ev.frame,
            ev.status,
            ev.data1,
            ev.data2,
            ev.counter,
            self.settings,
            self.v_note,
            self.v_chan,
            self.v_state,
            self.v_gate,
            self.v_vel,
            self.v_at,
            self.v_freq,
            self.v_on,
            self.v_off_seq,
            self.v_off_time,
            self.v_gap,
            self.ch_bend,
            self.ch_sus,
            self.stack_note,
            self.stack_chan,
            self.stack_vel,
            self.misc,
            outs.freq,
            outs.note,
            outs.gate,
            outs.velocity,
            outs.aftertouch,
            self.activity,
            self.orphans,
        )


@njit(cache=True, nogil=True)
def _controller_block(
    ev_frame, ev_status, ev_d1, ev_d2, n_events, frames, bend, number, chan_filter, coef, state, row
):  # pragma: no cover - compiled
    """Smoothed normalised controller value per frame into ``row``; state = [target, current]."""
    target = state[0]
    y = state[1]
    pos = 0
    for i in range(n_events + 1):
        k = _event_frame(ev_frame, i, n_events, frames, pos)
        for j in range(pos, k):
            y += coef * (target - y)
            row[j] = y
        pos = k
        if i == n_events:
            break
        status = np.int64(ev_status[i])
        d1 = np.int64(ev_d1[i])
        d2 = np.int64(ev_d2[i])
        if chan_filter > 0 and (status & 0x0F) != chan_filter - 1:
            continue
        if bend:
            if status & 0xF0 == 0xE0:
                target = (((d2 << 7) | d1) - 8192) / 8192.0
        elif status & 0xF0 == 0xB0 and d1 == number:
            target = d2 / 127.0
    if abs(target - y) < 1e-9:
        y = target
    state[0] = target
    state[1] = y


def _smoothing(smooth_ms: float, sample_rate: float) -> float:
    """One-pole coefficient reaching ~63 % of a step in ``smooth_ms`` (1 = no smoothing)."""
    if smooth_ms <= 0.0:
        return 1.0
    return 1.0 - math.exp(-1000.0 / (smooth_ms * sample_rate))


class Controller(Node):
    """A MIDI controller (CC) as a signal from ``lo`` to ``hi``, linear or exponential, smoothed.

    The value changes at the controller message's frame, then glides over ``smooth_ms``.
    """

    type_name = "midi.cc"
    midi = Input(rate=Rate.EVENTS, source="midi", doc="MIDI events (unconnected: the engine's MIDI input).")
    controller = Param(init=1, kind=int, min=0, max=127, doc="Controller number (1 = mod wheel, 74 = brightness).")
    channel = Param(init=0, kind=int, min=0, max=16, doc="MIDI channel 1-16 to follow; 0 = all channels.")
    lo = Param(init=0.0, doc="Value at controller 0.")
    hi = Param(init=1.0, doc="Value at controller 127.")
    curve = Param(init="lin", kind=str, choices=("lin", "exp"), doc="lin, or exp (lo and hi both > 0).")
    initial = Param(init=0.0, min=0.0, max=1.0, live=False, doc="Position 0..1 before the first message.")
    smooth_ms = Param(init=5.0, min=0.0, max=10000.0, unit="ms", doc="Glide time after each change.")
    out = Output(doc="The mapped controller value (span lo..hi).")

    def outputs(self) -> Mapping[str, Output]:
        lo, hi = sorted((self.lo, self.hi))
        return {"out": Output(span=(lo, hi), doc=type(self).out.doc, name="out")}

    def prepare(self, ctx: PrepareContext) -> None:
        if self.curve == "exp" and not (self.lo > 0.0 and self.hi > 0.0):
            raise ValueError(f"curve 'exp' needs lo and hi > 0, got lo={self.lo:g}, hi={self.hi:g}")
        self.sample_rate = ctx.sample_rate
        self.state = np.zeros(2, np.float64)
        self.row = np.zeros((1, ctx.block_size), np.float32)
        self._exp = False
        self.on_param("smooth_ms")
        self.on_param("curve")
        self.reset()

    def on_param(self, name: str) -> None:
        if name == "smooth_ms":
            self._coef = _smoothing(self.smooth_ms, self.sample_rate)
        # exp needs both ends positive; a live change that breaks that falls back to lin
        self._exp = self.curve == "exp" and self.lo > 0.0 and self.hi > 0.0
        self._lo = self.lo
        self._scale = math.log(self.hi / self.lo) if self._exp else self.hi - self.lo

    def reset(self) -> None:
        self.state.fill(self.initial)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        ev = ins.midi
        row = self.row
        _controller_block(
            ev.frame,
            ev.status,
            ev.data1,
            ev.data2,
            ev.count,
            frames,
            False,
            self.controller,
            self.channel,
            self._coef,
            self.state,
            row[0],
        )
        np.multiply(row, self._scale, out=row)
        if self._exp:
            np.exp(row, out=row)
            np.multiply(row, self._lo, out=row)
        else:
            np.add(row, self._lo, out=row)
        np.copyto(outs.out, row)


class PitchBend(Node):
    """The pitch-bend wheel: ``out`` -1..1 and ``ratio``, the frequency factor for ``bend_range`` semitones."""

    type_name = "midi.pitchbend"
    transient = ("row",)  # scratch: rewritten from the controller state every block
    midi = Input(rate=Rate.EVENTS, source="midi", doc="MIDI events (unconnected: the engine's MIDI input).")
    channel = Param(init=0, kind=int, min=0, max=16, doc="MIDI channel 1-16 to follow; 0 = all channels.")
    bend_range = Param(init=2.0, min=0.0, max=48.0, unit="semitones", doc="Bend at full deflection.")
    smooth_ms = Param(init=2.0, min=0.0, max=10000.0, unit="ms", doc="Glide time after each change.")
    out = Output(span=(-1.0, 1.0), doc="Wheel position, -1 (down) .. 1 (up).")
    ratio = Output(span=(0.5, 2.0), doc="Frequency ratio 2^(out * bend_range / 12); multiply a freq by it.")

    def prepare(self, ctx: PrepareContext) -> None:
        self.sample_rate = ctx.sample_rate
        self.state = np.zeros(2, np.float64)
        self.row = np.zeros((1, ctx.block_size), np.float32)
        self.on_param("smooth_ms")

    def on_param(self, name: str) -> None:
        self._coef = _smoothing(self.smooth_ms, self.sample_rate)
        self._octaves = self.bend_range / 12.0

    def reset(self) -> None:
        self.state.fill(0.0)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        ev = ins.midi
        row = self.row
        _controller_block(
            ev.frame,
            ev.status,
            ev.data1,
            ev.data2,
            ev.count,
            frames,
            True,
            0,
            self.channel,
            self._coef,
            self.state,
            row[0],
        )
        np.copyto(outs.out, row)
        np.multiply(row, self._octaves, out=row)
        np.exp2(row, out=row)
        np.copyto(outs.ratio, row)


class VoiceSum(Node):
    """Sums the voice lanes into one lane (after per-voice processing, before the output)."""

    type_name = "voices.sum"
    bypass = "silence"
    in_ = Input(init=0.0, doc="The voices (one lane each).")
    out = Output(doc="The sum of all lanes (1 lane).")

    def output_lanes(self, lanes: int) -> Mapping[str, int]:
        return {"out": 1}

    def prepare(self, ctx: PrepareContext) -> None:
        self.ones = np.ones((1, ctx.lanes), np.float32)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        # a (1, lanes) @ (lanes, frames) product: 3x faster than np.sum(axis=0) at 8-32 lanes
        np.matmul(self.ones, ins.in_, out=outs.out)

    def kernel(self, ins: Ports, outs: Ports):
        return _voice_sum_kernel, (ins.in_, outs.out)


@njit(cache=True, nogil=True)
def _voice_sum_kernel(x, out, frames):  # pragma: no cover - compiled
    """``voices.sum``'s kernel for fusion: the lanes summed in order, in float32.

    Lane by lane into the output row (the same additions in the same order per sample as a
    running sum per sample, so the same samples), so that each pass over a lane is a vector add
    over the block instead of a strided scalar chain per sample (3x faster at 32 lanes x 64)."""
    for i in range(frames):
        out[0, i] = np.float32(0.0)
    for lane in range(x.shape[0]):
        for i in range(frames):
            out[0, i] += x[lane, i]


@njit(cache=True, nogil=True)
def _held(frames):  # pragma: no cover - compiled
    """``voices.fixed``'s kernel when the plan reads its values where they are: nothing to do."""


class FixedVoices(Node):
    """`count` voice lanes at fixed values, `start · ratio^i + step · i` for lane i (no MIDI needed).

    A chord, a detuned unison or a set of partials held for ever: the lanes form of a patch that
    must sound by itself (``graphs/bench/p1_saw_filter.toml``: 110 Hz · 2^(i/4)). The values are
    fixed when the engine is built; reload the patch to change them.
    """

    type_name = "voices.fixed"
    bypass = "silence"
    count = Param(init=8, kind=int, min=1, max=128, live=False, doc="Number of voices (lanes).")
    start = Param(init=110.0, live=False, doc="Lane 0's value (a frequency in Hz, say).")
    ratio = Param(init=1.0, min=0.0, live=False, doc="Each lane's value is the previous lane's times this...")
    step = Param(init=0.0, live=False, doc="... plus this (`start · ratio^i + step · i`).")
    out = Output(doc="One fixed value per lane, every sample.")

    def fixed_lanes(self) -> int:
        return self.count

    def prepare(self, ctx: PrepareContext) -> None:
        lanes = np.arange(self.count, dtype=np.float64)
        values = self.start * self.ratio**lanes + self.step * lanes
        self.values = np.repeat(values.astype(np.float32)[:, None], ctx.block_size, axis=1)

    def output_buffers(self) -> dict[str, np.ndarray]:
        # the plan reads the values where they are: no copy a block (32 lanes: 4 % of the lanes P2)
        return {"out": self.values}

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        if outs.out is not self.values:
            np.copyto(outs.out, self.values)

    def kernel(self, ins: Ports, outs: Ports):
        from neuralgraph.plugin import copy_kernel

        if outs.out is self.values:
            return _held, ()
        return copy_kernel, (self.values, outs.out)


@hookimpl
def ng_register_nodes(register) -> None:
    register(Voices)
    register(Controller)
    register(PitchBend)
    register(VoiceSum)
    register(FixedVoices)
