"""Oscillators: sine, band-limited saw, square and triangle, and a mipmapped wavetable.

Every oscillator takes an audio-rate ``freq`` (so it can be frequency-modulated) and a ``sync``
input whose rising edge (from <= 0 to > 0) sets the phase back to 0 at that exact frame (hard
sync when fed another oscillator). All lanes run in one compiled call.

Band-limiting:

- ``osc.saw`` and ``osc.square`` add a linear-phase (symmetric) band-limited step (BLEP: a
  Blackman-windowed sinc, cutoff 0.42 × the sample rate, 16 samples each side, tabulated 64 times
  per sample) around each discontinuity, including a sync. An oscillator knows its own edges: the
  half before an edge in this block goes into samples already computed, the half after into a
  short per-lane ring; edges in the 16 samples after the block are predicted from the last
  frequency and width, and the next block applies their second half where they really fall. No
  latency, no group delay, and the Gibbs overshoot (8.7 % of the jump: saw peaks ≤ 1.16) where a
  minimum-phase step rang to 21 % (1.39). Aliased energy at 48 kHz is 86–96 dB below the
  fundamental for 2–10 kHz, where a 2-point PolyBLEP reaches only 21–30 dB.
- ``osc.triangle`` adds the integral of the same step (a linear-phase BLAMP) at its corners, the
  same way: no group delay, so the triangle is not read late.
- ``osc.wavetable`` keeps one band-limited copy of the table per octave (mipmaps, made with an
  FFT in ``prepare``) and reads, per sample, the lowest copy whose harmonics all stay below
  Nyquist crossfaded into the next one by the fractional octave.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from neuralgraph.plugin import Input, Node, Output, Param, Ports, PrepareContext, carray, hookimpl, intrinsic, njit

TWO_PI = 2.0 * math.pi

# ---- shared tables --------------------------------------------------------------------------------

BLEP_ZERO_CROSSINGS = 16
BLEP_OVERSAMPLING = 64
BLEP_CUTOFF = 0.42  # of the sample rate: harmonics above 0.5 are then attenuated by > 70 dB
BLEP_LENGTH = 2 * BLEP_ZERO_CROSSINGS  # samples of correction after each discontinuity


def linear_step(
    zero_crossings: int = BLEP_ZERO_CROSSINGS, oversampling: int = BLEP_OVERSAMPLING, cutoff: float = BLEP_CUTOFF
) -> np.ndarray:
    """The linear-phase (symmetric) band-limited unit step, centred on the jump.

    Sampled ``oversampling`` times per sample from ``-zero_crossings`` to ``+zero_crossings``
    samples around the jump: the integral of a Blackman-windowed sinc (cutoff ``cutoff`` × the
    sample rate). Symmetric, it overshoots by the Gibbs amount (8.7 % of the jump; a
    minimum-phase step, minBLEP, rings to 21 %) and is 0.5 at the jump itself: no group delay. It is smooth: the ideal step is subtracted after
    interpolating it (on the samples after the naive jump), never tabulated into it.
    """
    n = 2 * zero_crossings * oversampling + 1
    t = (np.arange(n) - zero_crossings * oversampling) / oversampling
    kernel = np.sinc(2.0 * cutoff * t) * np.blackman(n)
    # trapezoids, not a running sum: a running sum would place the step 1/(2 * oversampling)
    # of a sample late, a DC offset of dt / oversampling in the saw
    step = np.concatenate([[0.0], np.cumsum(0.5 * (kernel[1:] + kernel[:-1]))])
    step /= step[-1]
    return step


STEP_TABLE = linear_step()


def step_rows(step: np.ndarray, oversampling: int = BLEP_OVERSAMPLING) -> np.ndarray:
    """``step`` regrouped by fractional offset: ``rows[r, n] = step[r + oversampling n]`` for
    r = 0 .. oversampling (the last row is the next sample's first), past the end the step's final
    value (1). A step's taps on whole samples all share one offset, so they read two adjacent rows
    front to back, a loop that vectorises, instead of table entries ``oversampling`` apart."""
    taps = (len(step) - 1) // oversampling + 1
    index = np.arange(oversampling + 1)[:, None] + oversampling * np.arange(taps)[None, :]
    return step[np.minimum(index, len(step) - 1)]


STEP_ROWS = step_rows(STEP_TABLE)


def linear_corner(step: np.ndarray, oversampling: int = BLEP_OVERSAMPLING) -> np.ndarray:
    """The band-limited corner (a slope change of 1 per sample) minus the ideal corner: the
    integral of ``step`` minus the ramp ``max(0, t)``, on the same grid. Symmetric around the
    corner and 0 at both ends (the step has no group delay), and continuous, so it is tabulated
    whole and needs nothing subtracted after the corner."""
    t = (np.arange(len(step)) - (len(step) - 1) // 2) / oversampling
    ramp = np.concatenate([[0.0], np.cumsum(0.5 * (step[1:] + step[:-1]))]) / oversampling
    corner = ramp - np.maximum(0.0, t)
    corner -= np.linspace(corner[0], corner[-1], len(corner))  # rounding: exactly 0 at both ends
    return corner


CORNER_TABLE = linear_corner(STEP_TABLE)


# ---- kernels ---------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def _add_step(out, lane, ring, pos, now, t, height, table, last, ideal=1.0):  # pragma: no cover - compiled
    """Add a linear-phase band-limited step of ``height`` at time ``t`` (samples from the block's
    start) to every sample from ``t - BLEP_ZERO_CROSSINGS`` to ``t + BLEP_ZERO_CROSSINGS`` that is in
    this block or later and not after ``last``. Samples up to ``now`` are already in ``out`` (the
    corrections before the jump land there); later ones go into the ring, whose slot ``pos``
    holds sample ``now + 1``. Samples of earlier blocks are left out: the previous block applied
    them to a step it predicted (:func:`_predict_saw`, :func:`_predict_pulse`). ``ideal`` is what
    the naive signal jumps by (1 for a step; 0 for a corner, whose table is the whole correction)."""
    half = BLEP_ZERO_CROSSINGS
    length = ring.shape[1]
    lo = max(0, int(math.ceil(t - half)))
    hi = min(last, int(math.floor(t + half)))
    for j in range(lo, hi + 1):
        x = (j - t + half) * BLEP_OVERSAMPLING
        k = min(int(x), table.shape[0] - 2)
        a = x - k
        value = table[k] + a * (table[k + 1] - table[k])
        if j <= now:  # written before the naive jump: by which side, not by ``j < t`` (rounding)
            out[lane, j] += height * value
        else:
            slot = pos + (j - now - 1)
            if slot >= length:
                slot -= length
            ring[lane, slot] += height * (value - ideal)


@njit(cache=True, nogil=True, inline="always")
def _emit(out, lane, i, naive, ring, pos):  # pragma: no cover - compiled
    """Write sample ``i``: the naive waveform plus the corrections the ring holds for it (slot
    ``pos``, cleared for reuse); returns the slot of the next sample."""
    out[lane, i] = naive + ring[lane, pos]
    ring[lane, pos] = 0.0
    pos += 1
    return 0 if pos == ring.shape[1] else pos


@njit(cache=True, nogil=True, inline="always")
def _tap_phase(t):  # pragma: no cover - compiled
    """A step at time ``t``: the sample of its first tap, ceil(t - BLEP_ZERO_CROSSINGS), and where
    the taps fall between tabulated points: the row of ``STEP_ROWS`` and the fraction to the next."""
    first = int(math.ceil(t - BLEP_ZERO_CROSSINGS))
    x = (first - t + BLEP_ZERO_CROSSINGS) * BLEP_OVERSAMPLING  # in [0, BLEP_OVERSAMPLING]
    row = min(int(x), BLEP_OVERSAMPLING - 1)
    return first, row, x - row


@njit(cache=True, nogil=True, inline="always")
def _taps(dst, lane, j0, j1, base, first, row, a, rows, height, ideal):  # pragma: no cover - compiled
    """Add ``height`` x (the step minus ``ideal``) at samples ``j0 .. j1 - 1`` to ``dst[lane, base + j]``
    (``first``, ``row``, ``a``: :func:`_tap_phase`). Contiguous in both arrays, indices visibly not
    negative (as in :func:`_ramp_piece`): it vectorises."""
    lo, hi = rows[row], rows[row + 1]
    n0 = max(j0 - first, 0)
    d0 = max(base + j0, 0)
    for n in range(j1 - j0):
        dst[lane, d0 + n] += height * ((lo[n0 + n] + a * (hi[n0 + n] - lo[n0 + n])) - ideal)


@njit(cache=True, nogil=True, inline="always")
def _ring_taps(ring, lane, j0, j1, base, first, row, a, rows, height):  # pragma: no cover - compiled
    """:func:`_taps` of samples after the naive jump, into the ring: sample ``j`` in slot ``base + j``
    wrapped round (at most a ring's length of samples), split at the wrap so each part is contiguous."""
    length = ring.shape[1]
    if base + j0 >= length:
        base -= length
    split = min(j1, max(j0, length - base))
    _taps(ring, lane, j0, split, base, first, row, a, rows, height, 1.0)
    _taps(ring, lane, split, j1, base - length, first, row, a, rows, height, 1.0)


@njit(cache=True, nogil=True, inline="always")
def _add_saw_step(out, lane, ring, pos, now, t, height, rows, last):  # pragma: no cover - compiled
    """:func:`_add_step` with the step read from ``STEP_ROWS``, for the sample-by-sample loop: samples
    up to ``now`` in ``out``, later ones (up to ``last``) in the ring, whose slot ``pos`` holds sample
    ``now + 1``. One scalar loop: inside that loop the split, vectorised form was 7 % slower."""
    first, row, a = _tap_phase(t)
    lo, hi = rows[row], rows[row + 1]
    length = ring.shape[1]
    for j in range(max(0, first), min(last, int(math.floor(t + BLEP_ZERO_CROSSINGS))) + 1):
        n = j - first
        value = height * (lo[n] + a * (hi[n] - lo[n]))
        if j <= now:
            out[lane, j] += value
        else:
            slot = pos + (j - now - 1)
            if slot >= length:
                slot -= length
            ring[lane, slot] += value - height


@njit(cache=True, nogil=True, inline="always")
def _predict_saw(out, lane, frames, p, dt, rows):  # pragma: no cover - compiled
    """Apply the first half of the saw's wraps expected within the next BLEP_ZERO_CROSSINGS samples
    after the block, predicted from the last frequency, to the end of this block: the next block
    applies their second half at the time they really happen."""
    if dt > 0.0:
        t, height, period = frames + (1.0 - p) / dt, -2.0, 1.0 / dt
    elif dt < 0.0:
        t, height, period = frames + p / -dt, 2.0, 1.0 / -dt
    else:
        return
    while t - BLEP_ZERO_CROSSINGS < frames:
        first, row, a = _tap_phase(t)
        _taps(out, lane, max(0, first), frames, 0, first, row, a, rows, height, 0.0)
        t += period


@njit(cache=True, nogil=True, inline="always")
def _predict_pulse(out, lane, ring, pos, frames, p, dt, w, table):  # pragma: no cover - compiled
    """:func:`_predict_saw` for the pulse: its edges at phase ``w`` and at the wrap, alternating."""
    if dt == 0.0:
        return
    rising = dt > 0.0
    to_width = p < w if rising else p >= w
    target = w if to_width else (1.0 if rising else 0.0)
    t = frames + abs(target - p) / abs(dt)
    while t - BLEP_ZERO_CROSSINGS < frames:  # each edge is at least 0.01 cycle after the last
        height = (-2.0 if to_width else 2.0) if rising else (2.0 if to_width else -2.0)
        _add_step(out, lane, ring, pos, frames - 1, t, height, table, frames - 1)
        q = target if to_width else (0.0 if rising else 1.0)
        to_width = not to_width
        target = w if to_width else (1.0 if rising else 0.0)
        t += abs(target - q) / abs(dt)


@njit(cache=True, nogil=True, inline="always")
def _predict_corners(out, lane, ring, pos, frames, p, dt, table):  # pragma: no cover - compiled
    """:func:`_predict_saw` for the triangle: its corners at phases 1/4 (crest) and 3/4 (trough)."""
    if dt == 0.0:
        return
    kink = 8.0 * abs(dt)
    for corner, height in ((0.25, -kink), (0.75, kink)):
        if dt > 0.0:
            ahead = (corner - p) % 1.0
            if ahead == 0.0:  # reached at the block's last step: already applied in full
                ahead = 1.0
        else:
            ahead = (p - corner) % 1.0
        t = frames + ahead / abs(dt)
        while t - BLEP_ZERO_CROSSINGS < frames:
            _add_step(out, lane, ring, pos, frames - 1, t, height, table, frames - 1, 0.0)
            t += 1.0 / abs(dt)


@njit(cache=True, nogil=True, inline="always")
def _wrap(p):  # pragma: no cover - compiled
    """``p`` folded into [0, 1): a compare in the common case, floor only for big steps."""
    if p >= 1.0 or p < 0.0:
        p -= math.floor(p)
        if p >= 1.0:  # rounding: a tiny negative p can floor to exactly 1.0
            p = 0.0
    return p


#: sin(2π f) ≈ f (S1 + f² (S3 + f² (S5 + f² (S7 + f² S9)))) on |f| <= 1/4: a minimax fit (weighted
#: least squares iterated to equal ripple), within 3.4e-9 of sin, 18x below float32 resolution
#: (test_oscillators.py checks it). Negated: _sin_cycle's fold gives -sin.
S1, S3, S5, S7, S9 = -6.2831851600891735, 41.34165503134294, -81.60100406852091, 76.5497821814591, -39.53670519014807


@njit(cache=True, nogil=True, inline="always")
def _sin_cycle(p):  # pragma: no cover - compiled
    """sin(2π p) for p in [0, 1): folded to a quarter cycle, then an odd degree-9 minimax
    polynomial (error < 3.4e-9)."""
    x = p - 0.5  # sin(2π p) = -sin(2π x), x in [-0.5, 0.5)
    f = x if abs(x) <= 0.25 else math.copysign(0.5, x) - x  # sin(π - t) = sin(t): f in [-0.25, 0.25]
    f2 = f * f
    return f * (S1 + f2 * (S3 + f2 * (S5 + f2 * (S7 + f2 * S9))))


@njit(cache=True, nogil=True, inline="always")
def _sin_phase(q):  # pragma: no cover - compiled
    """sin(2π q) for any phase ``q`` (not folded): the same polynomial as :func:`_sin_cycle`, on a
    cheaper fold (error < 3.4e-9). sin(2π q) = cos(2π z) with z = q - 1/4 - round(q - 1/4) in
    [-1/2, 1/2], and cos(2π z) = sin(2π (1/4 - |z|)): a floor, three subtractions and an abs, no
    compare or select (the constant-frequency loop: 17 instructions a vector of samples, where
    folding, then ``_sin_cycle``, took 20)."""
    n = np.floor(q + 0.25)
    c = abs(q - (n + 0.25)) - 0.25  # |z| - 1/4: the polynomial's constants are negated
    c2 = c * c
    return c * (S1 + c2 * (S3 + c2 * (S5 + c2 * (S7 + c2 * S9))))


@intrinsic
def _pointer(typingctx, address):  # pragma: no cover - compiled
    """int64 address -> void* (side-by-side sines are reached through a table of addresses)."""
    from numba.core import cgutils, types  # at typing time: importing this module imports no numba

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(types.int64), codegen


def _address(a: np.ndarray) -> int:
    return int(a.__array_interface__["data"][0])


#: Samples :func:`_sines_of_phases` takes at a time: one vector of float64 (one AVX-512 register).
SINES = 8


@intrinsic
def _sines_of_phases(typingctx, scratch, out, lane, i):  # pragma: no cover - compiled
    """``out[lane, i:i + SINES]`` = the sine of phases ``scratch[i:i + SINES]``: :func:`_sin_phase`
    on one vector of SINES float64, with the same operations in the same order (the floor, the
    fused multiply-adds the compiled loop makes), so the samples are that loop's, bit for bit.
    Written as LLVM vector operations because LLVM vectorises the loop over a float64 array only
    four wide here (eight where the phases are computed in the loop, as at a constant frequency):
    in ``perf`` of the per-voice P2 that four-wide pass held the most of this kernel's samples."""
    from llvmlite import ir
    from numba.core import cgutils, types

    def codegen(context, builder, signature, args):
        vector = ir.VectorType(ir.DoubleType(), SINES)
        single = ir.VectorType(ir.FloatType(), SINES)

        def const(x):
            return ir.Constant(vector, [x] * SINES)

        def call(name, *operands):
            fn = builder.module.globals.get(name) or ir.Function(
                builder.module, ir.FunctionType(vector, [vector] * len(operands)), name
            )
            return builder.call(fn, list(operands))

        kinds = signature.args
        phases = context.make_array(kinds[0])(context, builder, args[0]).data
        q = builder.load(builder.bitcast(builder.gep(phases, [args[3]]), vector.as_pointer()), align=8)
        n = call(f"llvm.floor.v{SINES}f64", builder.fadd(q, const(0.25)))
        c = builder.fadd(call(f"llvm.fabs.v{SINES}f64", builder.fsub(q, builder.fadd(n, const(0.25)))), const(-0.25))
        c2 = builder.fmul(c, c)
        poly = const(S9)
        for term in (S7, S5, S3, S1):
            poly = call(f"llvm.fma.v{SINES}f64", c2, poly, const(term))
        sines = builder.fptrunc(builder.fmul(c, poly), single)
        target = cgutils.get_item_pointer(
            context, builder, kinds[1], context.make_array(kinds[1])(context, builder, args[1]), [args[2], args[3]]
        )
        builder.store(sines, builder.bitcast(target, single.as_pointer()), align=4)
        return context.get_dummy_value()

    return types.none(scratch, out, types.intp, types.intp), codegen


@njit(cache=True, nogil=True, inline="always")
def _phases_unwrapped(freq, lane, p, inv_sr, scratch, frames):  # pragma: no cover - compiled
    """The phase before each sample, not folded, into ``scratch``; returns the phase after the block.

    The steps ``freq * inv_sr`` first, in one vectorised pass; then a prefix sum four samples a
    step: the carry takes one add per four samples and the sums inside a step are independent,
    so the serial chain is a quarter of the sample-by-sample recursion's (which was an FM
    carrier's whole cost at block 64). The sum pass is adds only (it is bound by their count).
    """
    for i in range(frames):
        scratch[i] = freq[lane, i] * inv_sr
    acc = p
    i = 0
    while i + 4 <= frames:
        d0 = scratch[i]
        d1 = scratch[i + 1]
        d2 = scratch[i + 2]
        d3 = scratch[i + 3]
        d01 = d0 + d1
        scratch[i] = acc
        scratch[i + 1] = acc + d0
        scratch[i + 2] = acc + d01
        scratch[i + 3] = acc + (d01 + d2)
        acc += d01 + (d2 + d3)
        i += 4
    while i < frames:
        d = scratch[i]
        scratch[i] = acc
        acc += d
        i += 1
    return acc


@njit(cache=True, nogil=True, inline="always")
def _sine_lane(freq, reset, phase, last_reset, inv_sr, scratch, out, lane, frames):  # pragma: no cover - compiled
    """One lane of :func:`_sine_kernel`. Two passes: the phases (not folded) into ``scratch``
    (float64), then the sine of every phase (``_sin_phase`` folds it), a branch-free polynomial
    that LLVM vectorises (1.4x faster than an interpolated table; error < 3.4e-9 against 3e-7).
    Only a block with a sync edge runs the sample-by-sample recursion."""
    p = phase[lane]
    r0 = last_reset[lane]
    f0 = freq[lane, 0]
    quiet = r0 <= 0.0  # no sync edge in this block
    constant = True
    for i in range(frames):
        quiet &= reset[lane, i] <= 0.0
        constant &= freq[lane, i] == f0
    if quiet and constant:
        # p + i * step: independent per sample, so the sines of the lane are one vectorised pass
        step = f0 * inv_sr
        for i in range(frames):
            out[lane, i] = _sin_phase(p + i * step)
        phase[lane] = _wrap(p + frames * step)
        last_reset[lane] = reset[lane, frames - 1]
        return
    if quiet:
        phase[lane] = _wrap(_phases_unwrapped(freq, lane, p, inv_sr, scratch, frames))
        last_reset[lane] = reset[lane, frames - 1]
    else:
        for i in range(frames):
            r = reset[lane, i]
            if r > 0.0 and r0 <= 0.0:
                p = 0.0
            r0 = r
            scratch[i] = p
            p += freq[lane, i] * inv_sr
            p = _wrap(p)
        phase[lane] = p
        last_reset[lane] = r0
    i = 0
    while i + SINES <= frames:
        _sines_of_phases(scratch, out, lane, i)
        i += SINES
    while i < frames:
        out[lane, i] = _sin_phase(scratch[i])
        i += 1


# fastmath "contract" only (no reassociation): the polynomial's multiply-adds become fused
# multiply-adds (one rounding instead of two, far below float32 output rounding). No reference
# counting (``_nrt=False``; the kernel allocates nothing): inlining _sine_lane's arrays otherwise
# left 29 calls of NRT_incref / NRT_decref in it, run for every lane (4.6 % of the lanes P2's CPU
# in ``perf``). _sine_across keeps it: numba's ``carray`` needs it.
@njit(cache=True, nogil=True, fastmath={"contract"}, _nrt=False)
def _sine_kernel(freq, reset, phase, last_reset, inv_sr, scratch, out, frames):  # pragma: no cover - compiled
    for lane in range(out.shape[0]):
        _sine_lane(freq, reset, phase, last_reset, inv_sr, scratch, out, lane, frames)


#: Columns of a row of :func:`_sine_across`'s table: the addresses of one sine's freq, sync, phase,
#: last sync value and output, then the block's width.
_FREQ, _SYNC, _PHASE, _LAST, _OUT, _WIDTH = range(6)


@njit(cache=True, nogil=True, fastmath={"contract"})
def _sine_across(table, inv_sr, scratch, frames):  # pragma: no cover - compiled
    """:func:`_sine_kernel` for one-lane sines side by side (a row of addresses each, raw views:
    no reference counting): each one's samples as its own call makes them, without a call's
    entry (its arguments, the polynomial's constants) per sine: a twelfth of a one-lane call's
    time in ``perf`` of the per-voice P2."""
    for j in range(table.shape[0]):
        row = table[j]
        width = row[_WIDTH]
        _sine_lane(
            carray(_pointer(row[_FREQ]), (1, width), np.float32),
            carray(_pointer(row[_SYNC]), (1, width), np.float32),
            carray(_pointer(row[_PHASE]), (1,), np.float64),
            carray(_pointer(row[_LAST]), (1,), np.float64),
            inv_sr,
            scratch,
            carray(_pointer(row[_OUT]), (1, width), np.float32),
            0,
            frames,
        )


def _sine_lanes_form(calls: list[tuple]) -> tuple | None:
    """_sine_kernel's lanes form (neuralgraph._compile.lanes): one-lane sines of one sample rate,
    no data path between them, as one _sine_across call over a table of their arrays' addresses
    (the plan keeps the arrays)."""
    if len({c[4] for c in calls}) != 1:
        return None
    for freq, sync, phase, last, _, scratch, out in calls:
        width = out.shape[1]
        if not (
            freq.shape == sync.shape == out.shape == (1, width)
            and phase.shape == last.shape == (1,)
            and {freq.dtype, sync.dtype, out.dtype} == {np.dtype(np.float32)}
            and {phase.dtype, last.dtype, scratch.dtype} == {np.dtype(np.float64)}
            and scratch.shape[0] >= width
        ):
            return None
    table = np.array([[_address(c[k]) for k in (0, 1, 2, 3, 6)] + [c[6].shape[1]] for c in calls], np.int64)
    return _sine_across, (table, calls[0][4], calls[0][5])


#: fusion runs up to SINES_SIDE_BY_SIDE separate one-lane calls of this kernel as one (neuralgraph._compile.lanes)
SINES_SIDE_BY_SIDE = 32
_sine_kernel.lanes = _sine_lanes_form
_sine_kernel.lanes_most = SINES_SIDE_BY_SIDE


@njit(cache=True, nogil=True, inline="always")
def _ramp_piece(out, lane, ring, a, b, base, p, dt, off):  # pragma: no cover - compiled
    """Samples ``a .. b - 1`` of the naive ramp ``2 ((p + i dt) - off) - 1`` plus ring slot ``base + i``,
    which is cleared for reuse (as :func:`_emit` clears it). Independent samples: it vectorises, once
    the indices are visibly not negative (numba wraps negative ones round: a select per access)."""
    a = max(a, 0)
    s = max(base + a, 0)
    for n in range(b - a):
        i = a + n
        out[lane, i] = (2.0 * ((p + i * dt) - off) - 1.0) + ring[lane, s + n]
        ring[lane, s + n] = 0.0


@njit(cache=True, nogil=True, inline="always")
def _ramp_segment(out, lane, ring, pos, a, b, p, dt, off):  # pragma: no cover - compiled
    """Samples ``a .. b - 1`` of the naive ramp (:func:`_ramp_piece`); the block's first ring-length
    samples add what the ring holds for them (slot ``pos`` holds sample 0), in two contiguous parts."""
    length = ring.shape[1]
    w = length - pos
    _ramp_piece(out, lane, ring, a, min(b, w), pos, p, dt, off)
    _ramp_piece(out, lane, ring, max(a, w), min(b, length), pos - length, p, dt, off)
    a = max(a, length)
    for n in range(b - a):
        out[lane, a + n] = 2.0 * ((p + (a + n) * dt) - off) - 1.0


@njit(cache=True, nogil=True, inline="always")
def _wrap_index(p, dt, k, a, frames):  # pragma: no cover - compiled
    """The last sample from ``a`` on before the ramp ``p + i dt`` crosses ``k``: below ``k`` when rising,
    at or above it when falling. Decided on the ramp's own values, as :func:`_ramp_segment` computes
    them, so the naive jump and its step agree on which side a sample is."""
    up = dt > 0.0
    now = min(frames - 1, max(a, int((k - p) / dt)))
    while now > a and ((p + now * dt >= k) if up else (p + now * dt < k)):
        now -= 1
    while now < frames - 1 and ((p + (now + 1) * dt < k) if up else (p + (now + 1) * dt >= k)):
        now += 1
    return now


@njit(cache=True, nogil=True, inline="always")
def _steady(freq, reset, lane, r0, frames):  # pragma: no cover - compiled
    """True when the lane's frequency holds all block and no sync edge comes (a vectorised scan)."""
    f0 = freq[lane, 0]
    quiet = r0 <= 0.0
    constant = True
    for i in range(frames):
        quiet &= reset[lane, i] <= 0.0
        constant &= freq[lane, i] == f0
    return quiet and constant


@njit(cache=True, nogil=True, inline="always")
def _saw_steady(freq, lane, p, inv_sr, ring, pos, rows, out, frames):  # pragma: no cover - compiled
    """A block at a constant frequency without a sync edge in vectorised passes: the naive ramp, one
    segment between each two wraps (computable: the ramp crosses k at (k - p) / dt), then each wrap's
    step, whose samples of this block are already written and whose later ones go into the ring.
    Returns the phase after the block."""
    dt = min(0.5, max(-0.5, freq[lane, 0] * inv_sr))
    end = p + frames * dt
    up = dt > 0.0
    first = 1.0 if up else 0.0  # the level of the first wrap: 1 rising, 0 falling
    k, a, off = first, 0, 0.0
    while True:  # one call site for the segments: a second copy for the last one cost 1.3x in blocks without a wrap
        crosses = (end >= k) if up else (end < k)
        b = _wrap_index(p, dt, k, a, frames) + 1 if crosses else frames
        _ramp_segment(out, lane, ring, pos, a, b, p, dt, off)
        if not crosses:
            break
        a, off = b, (k if up else k - 1.0)
        k += 1.0 if up else -1.0
    k, a = first, 0
    base = (pos + frames) % ring.shape[1] - frames  # the ring slot of sample j >= frames is base + j
    while (end >= k) if up else (end < k):
        now = _wrap_index(p, dt, k, a, frames)
        t = min(now + 1.0, max(float(now), (k - p) / dt))
        height = -2.0 if up else 2.0
        start, row, frac = _tap_phase(t)
        stop = int(math.floor(t + BLEP_ZERO_CROSSINGS)) + 1
        _taps(out, lane, max(0, start), now + 1, 0, start, row, frac, rows, height, 0.0)
        _taps(out, lane, now + 1, min(stop, frames), 0, start, row, frac, rows, height, 1.0)
        _ring_taps(ring, lane, frames, stop, base, start, row, frac, rows, height)
        a = now + 1
        k += 1.0 if up else -1.0
    return end - off


@njit(cache=True, nogil=True)
def _saw_kernel(freq, reset, phase, last_reset, ring, ring_pos, inv_sr, rows, out, frames):  # pragma: no cover
    # Every wrap (and sync) adds a linear-phase band-limited step around its exact time: the half
    # before the jump into the samples already written, the half after into the ring. Wraps just
    # past the block are predicted (_predict_saw) so their first half is not lost. A block at a
    # constant frequency with no sync edge (every block of a held note) is vectorised passes
    # (_saw_steady); the others run sample by sample.
    far = frames + 2 * BLEP_ZERO_CROSSINGS
    for lane in range(out.shape[0]):
        p = phase[lane]
        r0 = last_reset[lane]
        pos = ring_pos[lane]
        if _steady(freq, reset, lane, r0, frames):
            p = _wrap(_saw_steady(freq, lane, p, inv_sr, ring, pos, rows, out, frames))
            dt = min(0.5, max(-0.5, freq[lane, 0] * inv_sr))
            pos = (pos + frames) % ring.shape[1]
            r0 = reset[lane, frames - 1]
        else:
            dt = 0.0
            for i in range(frames):
                dt = min(0.5, max(-0.5, freq[lane, i] * inv_sr))  # one wrap per sample at most
                r = reset[lane, i]
                if r > 0.0 and r0 <= 0.0:  # naive jumps from 2p-1 to -1 on this frame
                    _add_saw_step(out, lane, ring, pos, i - 1, float(i), -2.0 * p, rows, far)
                    p = 0.0
                r0 = r
                pos = _emit(out, lane, i, 2.0 * p - 1.0, ring, pos)
                p += dt
                if p >= 1.0:
                    p -= 1.0
                    _add_saw_step(out, lane, ring, pos, i, i + 1.0 - p / dt, -2.0, rows, far)
                elif p < 0.0:
                    p += 1.0
                    _add_saw_step(out, lane, ring, pos, i, i + 1.0 - (1.0 - p) / -dt, 2.0, rows, far)
        _predict_saw(out, lane, frames, p, dt, rows)
        phase[lane] = p
        last_reset[lane] = r0
        ring_pos[lane] = pos


@njit(cache=True, nogil=True)
def _square_kernel(
    freq, width, reset, phase, last_reset, level, ring, ring_pos, inv_sr, table, out, frames
):  # pragma: no cover - compiled
    # ``level`` is the pulse's naive value; it changes only together with a band-limited step of
    # the same size, so the naive signal and its corrections never disagree, whatever width does.
    # The steps are linear-phase, placed as in _saw_kernel.
    far = frames + 2 * BLEP_ZERO_CROSSINGS
    for lane in range(out.shape[0]):
        p = phase[lane]
        r0 = last_reset[lane]
        lvl = level[lane]
        pos = ring_pos[lane]
        dt = 0.0
        w = 0.5
        for i in range(frames):
            dt = min(0.5, max(-0.5, freq[lane, i] * inv_sr))  # one wrap per sample at most
            w = min(0.99, max(0.01, width[lane, i]))
            r = reset[lane, i]
            if r > 0.0 and r0 <= 0.0:
                p = 0.0
            r0 = r
            want = 1.0 if p < w else -1.0
            if want != lvl:  # a sync, or a width that moved across the phase: a step on this frame
                _add_step(out, lane, ring, pos, i - 1, float(i), want - lvl, table, far)
                lvl = want
            pos = _emit(out, lane, i, lvl, ring, pos)
            q = p + dt
            if dt > 0.0:
                if p < w <= q:
                    _add_step(out, lane, ring, pos, i, i + 1.0 - (q - w) / dt, -2.0, table, far)
                    lvl -= 2.0
                if q >= 1.0:
                    q -= 1.0
                    _add_step(out, lane, ring, pos, i, i + 1.0 - q / dt, 2.0, table, far)
                    lvl += 2.0
                    if w <= q:
                        _add_step(out, lane, ring, pos, i, i + 1.0 - (q - w) / dt, -2.0, table, far)
                        lvl -= 2.0
            elif dt < 0.0:
                if q < w <= p:
                    _add_step(out, lane, ring, pos, i, i + 1.0 - (w - q) / -dt, 2.0, table, far)
                    lvl += 2.0
                if q < 0.0:
                    q += 1.0
                    _add_step(out, lane, ring, pos, i, i + 1.0 - (1.0 - q) / -dt, -2.0, table, far)
                    lvl -= 2.0
                    if q < w:
                        _add_step(out, lane, ring, pos, i, i + 1.0 - (w - q) / -dt, 2.0, table, far)
                        lvl += 2.0
            p = q
        _predict_pulse(out, lane, ring, pos, frames, p, dt, w, table)
        phase[lane] = p
        last_reset[lane] = r0
        level[lane] = lvl
        ring_pos[lane] = pos


@njit(cache=True, nogil=True, inline="always")
def _triangle_value(p):  # pragma: no cover - compiled
    """The naive triangle at phase ``p``: 0 rising at p = 0, crest at 0.25, trough at 0.75."""
    q = p + 0.25
    q -= math.floor(q)
    return 1.0 - 4.0 * abs(q - 0.5)


@njit(cache=True, nogil=True)
def _triangle_kernel(
    freq, reset, phase, last_reset, ring, ring_pos, inv_sr, step, corner_table, out, frames
):  # pragma: no cover - compiled
    # Each corner adds a linear-phase band-limited corner (BLAMP) around its exact time, placed
    # as the saw's steps are (_saw_kernel); a sync adds a step of the jump it makes.
    far = frames + 2 * BLEP_ZERO_CROSSINGS
    for lane in range(out.shape[0]):
        p = phase[lane]
        r0 = last_reset[lane]
        pos = ring_pos[lane]
        dt = 0.0
        for i in range(frames):
            dt = min(0.5, max(-0.5, freq[lane, i] * inv_sr))  # one wrap per sample at most
            r = reset[lane, i]
            if r > 0.0 and r0 <= 0.0:
                _add_step(out, lane, ring, pos, i - 1, float(i), -_triangle_value(p), step, far)
                p = 0.0
            r0 = r
            pos = _emit(out, lane, i, _triangle_value(p), ring, pos)
            q = p + dt
            kink = 8.0 * abs(dt)  # change of slope per sample at a corner
            for corner, height in ((0.25, -kink), (0.75, kink)):
                since = -1.0
                if dt > 0.0:
                    if p < corner <= q:
                        since = (q - corner) / dt
                    elif corner + 1.0 <= q:
                        since = (q - corner - 1.0) / dt
                elif dt < 0.0:
                    if q < corner <= p:
                        since = (corner - q) / -dt
                    elif q < corner - 1.0:
                        since = (corner - 1.0 - q) / -dt
                if since >= 0.0:
                    _add_step(out, lane, ring, pos, i, i + 1.0 - since, height, corner_table, far, 0.0)
            p = _wrap(q)
        _predict_corners(out, lane, ring, pos, frames, p, dt, corner_table)
        phase[lane] = p
        last_reset[lane] = r0
        ring_pos[lane] = pos


@njit(cache=True, nogil=True, inline="always")
def _read_cycle(t, j, a, cubic):  # pragma: no cover - compiled
    """Sample ``j + a`` of a padded cycle ``t`` (t[1] is sample 0), linear or Catmull-Rom cubic."""
    y1 = t[j + 1]
    y2 = t[j + 2]
    if not cubic:
        return y1 + a * (y2 - y1)
    y0 = t[j]
    y3 = t[j + 3]
    c1 = 0.5 * (y2 - y0)
    c2 = y0 - 2.5 * y1 + 2.0 * y2 - 0.5 * y3
    c3 = 0.5 * (y3 - y0) + 1.5 * (y1 - y2)
    return ((c3 * a + c2) * a + c1) * a + y1


@njit(cache=True, nogil=True, inline="always")
def _read_frames(frames, f0, f1, mix, j, a, cubic):  # pragma: no cover - compiled
    """Cycles ``f0`` and ``f1`` of one octave copy at sample ``j + a``, crossfaded by ``mix``."""
    value = (1.0 - mix) * _read_cycle(frames[f0], j, a, cubic)
    if mix > 0.0:
        value += mix * _read_cycle(frames[f1], j, a, cubic)
    return value


@njit(cache=True, nogil=True)
def _wavetable_kernel(
    freq, position, reset, phase, last_reset, inv_sr, tables, half_size, cubic, out, frames
):  # pragma: no cover - compiled
    levels, count, padded = tables.shape
    size = padded - 3  # one guard sample before the cycle, two after
    for lane in range(out.shape[0]):
        p = phase[lane]
        r0 = last_reset[lane]
        last_dt = math.nan
        level = 0
        fade = 0.0
        for i in range(frames):
            dt = freq[lane, i] * inv_sr
            r = reset[lane, i]
            if r > 0.0 and r0 <= 0.0:
                p = 0.0
            r0 = r
            # octave copies: level k holds harmonics up to half_size >> k, which stay below Nyquist
            # while 2**k >= need. Crossfade the lowest safe level into the next by the fractional
            # octave, so a glide changes brightness smoothly instead of an octave at a time.
            if dt != last_dt:  # a log2 only when the frequency moves
                last_dt = dt
                need = 2.0 * abs(dt) * half_size
                level = 0
                fade = 0.0
                if need > 0.5:
                    octave = math.log2(need)
                    whole = math.floor(octave)
                    level = int(whole) + 1
                    fade = octave - whole
                    if level >= levels - 1:
                        level = levels - 1
                        fade = 0.0
            fpos = min(1.0, max(0.0, position[lane, i])) * (count - 1)
            f0 = int(fpos)
            if f0 >= count - 1:
                f0 = count - 1
            mix = fpos - f0
            f1 = f0 + 1 if f0 + 1 < count else f0
            x = p * size
            j = int(x)
            if j >= size:
                j = size - 1
            a = x - j
            value = (1.0 - fade) * _read_frames(tables[level], f0, f1, mix, j, a, cubic)
            if fade > 0.0:
                value += fade * _read_frames(tables[level + 1], f0, f1, mix, j, a, cubic)
            out[lane, i] = value
            p += dt
            p = _wrap(p)
        phase[lane] = p
        last_reset[lane] = r0


# ---- nodes -----------------------------------------------------------------------------------------


def _freq_input(init: float) -> Input:
    return Input(
        init=init,
        min=-100000.0,
        max=100000.0,
        unit="Hz",
        doc="Frequency, audio rate (FM); negative runs the phase backwards.",
    )


def _sync_input() -> Input:
    return Input(init=0.0, doc="Hard sync / phase reset: a rising edge (<= 0 to > 0) restarts the cycle at that frame.")


class PhaseAccumulator:
    """Per-lane phase in cycles, advanced by a frequency signal without per-sample Python.

    A vectorised (numpy cumsum) accumulator for nodes that need a phase ramp but no reset.
    """

    def prepare(self, ctx: PrepareContext) -> None:
        self.inv_sr = 1.0 / ctx.sample_rate
        self.phase = np.zeros((ctx.lanes, 1), np.float64)
        self.ramp = np.zeros((ctx.lanes, ctx.block_size), np.float64)
        self.last = self.ramp[:, -1:]

    def advance(self, freq: np.ndarray) -> np.ndarray:
        """Phases of this block (in [0, 1)) for ``freq`` in Hz; the state moves on."""
        ph = self.ramp
        np.multiply(freq, self.inv_sr, out=ph)
        np.cumsum(ph, axis=1, out=ph)
        np.add(ph, self.phase, out=ph)
        np.remainder(ph, 1.0, out=ph)
        np.copyto(self.phase, self.last)
        return ph

    def reset(self) -> None:
        self.phase.fill(0.0)


class _PhaseOsc(Node):
    """Shared state of the phase-based oscillators: per-lane phase and last reset value."""

    def prepare(self, ctx: PrepareContext) -> None:
        self.inv_sr = 1.0 / ctx.sample_rate
        self.phase = np.zeros(ctx.lanes, np.float64)
        self.last_reset = np.zeros(ctx.lanes, np.float64)

    def reset(self) -> None:
        self.phase.fill(0.0)
        self.last_reset.fill(0.0)


class SineOsc(_PhaseOsc):
    """Sine oscillator (phase accumulator, polynomial sine); frequency is an audio input, so it can be modulated (FM)."""

    type_name = "osc.sine"
    side_by_side = True  # one-lane sines run as one call in a fused plan (_sine_lanes_form)
    freq = _freq_input(440.0)
    sync = _sync_input()
    out = Output(span=(-1.0, 1.0), doc="The sine, -1..1, starting at 0 rising.")

    def prepare(self, ctx: PrepareContext) -> None:
        super().prepare(ctx)
        self.scratch = np.zeros(ctx.block_size, np.float64)  # one lane's phases

    def kernel(self, ins: Ports, outs: Ports):
        return _sine_kernel, (
            ins.freq,
            ins.sync,
            self.phase,
            self.last_reset,
            self.inv_sr,
            self.scratch,
            outs.out,
        )


class _BlepOsc(_PhaseOsc):
    """Phase oscillators with a ring of future band-limiting corrections per lane."""

    def prepare(self, ctx: PrepareContext) -> None:
        super().prepare(ctx)
        self.ring = np.zeros((ctx.lanes, BLEP_LENGTH), np.float64)
        self.ring_pos = np.zeros(ctx.lanes, np.int64)

    def reset(self) -> None:
        super().reset()
        self.ring.fill(0.0)
        self.ring_pos.fill(0)


class SawOsc(_BlepOsc):
    """Band-limited sawtooth (linear-phase BLEP), rising from -1 to 1; audio-rate frequency and sync."""

    type_name = "osc.saw"
    freq = _freq_input(220.0)
    sync = _sync_input()
    out = Output(span=(-1.0, 1.0), doc="The sawtooth, -1..1.")

    def kernel(self, ins: Ports, outs: Ports):
        return _saw_kernel, (
            ins.freq,
            ins.sync,
            self.phase,
            self.last_reset,
            self.ring,
            self.ring_pos,
            self.inv_sr,
            STEP_ROWS,
            outs.out,
        )


class SquareOsc(_BlepOsc):
    """Band-limited pulse (linear-phase BLEP): +1 for the first ``width`` of each cycle, then -1."""

    type_name = "osc.square"
    freq = _freq_input(220.0)
    width = Input(
        init=0.5,
        min=0.01,
        max=0.99,
        doc="Pulse width: the fraction of the cycle at +1 (0.5 is a square); clamped to 0.01..0.99.",
    )
    sync = _sync_input()
    out = Output(span=(-1.0, 1.0), doc="The pulse, -1..1.")

    def prepare(self, ctx: PrepareContext) -> None:
        super().prepare(ctx)
        self.level = np.ones(ctx.lanes, np.float64)  # phase 0 is in the high part

    def kernel(self, ins: Ports, outs: Ports):
        return _square_kernel, (
            ins.freq,
            ins.width,
            ins.sync,
            self.phase,
            self.last_reset,
            self.level,
            self.ring,
            self.ring_pos,
            self.inv_sr,
            STEP_TABLE,
            outs.out,
        )

    def reset(self) -> None:
        super().reset()
        self.level.fill(1.0)


class TriangleOsc(_BlepOsc):
    """Band-limited triangle (linear-phase BLAMP at the corners), starting at 0 rising like the sine."""

    type_name = "osc.triangle"
    freq = _freq_input(220.0)
    sync = _sync_input()
    out = Output(span=(-1.0, 1.0), doc="The triangle, -1..1.")

    def kernel(self, ins: Ports, outs: Ports):
        return _triangle_kernel, (
            ins.freq,
            ins.sync,
            self.phase,
            self.last_reset,
            self.ring,
            self.ring_pos,
            self.inv_sr,
            STEP_TABLE,
            CORNER_TABLE,
            outs.out,
        )


def load_wavetable(path: str | Path, frame_size: int = 0) -> np.ndarray:
    """A wavetable file as float64 ``(frames, size)``.

    ``.npy``: a 1-D array is one cycle, a 2-D array is one cycle per row. Audio files (WAV,
    FLAC, ...): the first channel, one cycle, or cut into cycles of ``frame_size`` samples.
    Raises ValueError saying what is wrong with the file.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read wavetable {path.name}: {exc}") from None
        # real numbers only: complex would lose its imaginary part (with a warning), bool is no waveform
        if (
            data.ndim not in (1, 2)
            or not np.issubdtype(data.dtype, np.number)
            or np.issubdtype(data.dtype, np.complexfloating)
        ):
            raise ValueError(
                f"wavetable {path.name} must be a 1-D or 2-D array of real numbers "
                f"(float or int), got shape {data.shape} of {data.dtype}"
            )
        if data.ndim == 2 and data.shape[0] == 0:
            raise ValueError(
                f"wavetable {path.name} has shape {data.shape}: no cycles; it needs at least one row (one cycle)"
            )
        data = np.atleast_2d(np.asarray(data, np.float64))
        if frame_size:
            data = data.reshape(-1)
    else:
        from neuralgraph.plugin import NeuralgraphError, read_audio

        try:
            audio, _rate = read_audio(path)
        except NeuralgraphError as exc:
            raise ValueError(str(exc)) from None
        data = audio[0].astype(np.float64)
        if not frame_size:
            data = data[None, :]
    if frame_size:
        count = data.size // frame_size
        if count == 0:
            raise ValueError(f"wavetable {path.name} has {data.size} samples, fewer than frame_size={frame_size}")
        data = data[: count * frame_size].reshape(count, frame_size)
    if data.shape[1] < 4:
        raise ValueError(f"wavetable {path.name} cycles have {data.shape[1]} samples; at least 4 are needed")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"wavetable {path.name} contains NaN or infinite values")
    return data


def wavetable_shape(path: str | Path, frame_size: int = 0) -> tuple[int, int]:
    """``(frames, size)`` of the cycles :func:`load_wavetable` would return, read from the file's
    header only (nothing is loaded); raises ValueError or OSError for an unreadable file."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape  # maps, reads only the header
        samples = math.prod(shape)
        rows, cols = (1, samples) if len(shape) != 2 else shape
    else:
        import soundfile

        samples = int(soundfile.info(str(path)).frames)
        rows, cols = 1, samples
    if frame_size:
        return samples // frame_size, frame_size
    return int(rows), int(cols)


def mipmap_bytes(frames: int, size: int) -> int:
    """Bytes of :func:`mipmaps` for ``frames`` cycles of ``size`` samples, with its temporaries."""
    levels = max(1, int(math.floor(math.log2(size // 2))) + 1) if size >= 2 else 1
    return 8 * levels * frames * (size + 3) + 3 * 16 * frames * (size // 2 + 1) + 8 * frames * size


def mipmaps(cycles: np.ndarray) -> np.ndarray:
    """Band-limited copies of ``cycles`` (frames, size), one per octave, padded for interpolation.

    Level k keeps harmonics 1 .. (size // 2) >> k (and DC); returns float64
    ``(levels, frames, size + 3)`` with one wrapped sample before each cycle and two after.
    """
    frames, size = cycles.shape
    half = size // 2
    levels = max(1, int(math.floor(math.log2(half))) + 1) if half >= 1 else 1
    spectrum = np.fft.rfft(cycles, axis=1)
    out = np.empty((levels, frames, size + 3), np.float64)
    for level in range(levels):
        top = half >> level
        band = spectrum.copy()
        band[:, top + 1 :] = 0.0
        cycle = np.fft.irfft(band, n=size, axis=1)
        out[level, :, 1 : size + 1] = cycle
        out[level, :, 0] = cycle[:, -1]
        out[level, :, size + 1 :] = cycle[:, :2]
    return out


class WavetableOsc(_PhaseOsc):
    """Wavetable oscillator: plays cycles read from a .npy or audio file, band-limited per octave.

    With several cycles in the file, ``position`` (0..1) morphs across them. Without a file it
    plays a built-in sine cycle.
    """

    type_name = "osc.wavetable"
    table = Param(
        init="",
        kind=str,
        path=True,
        live=False,
        doc="A .npy array (1-D: one cycle; 2-D: one cycle per row) or an audio file; "
        "relative to the patch. Empty: a sine cycle.",
    )
    frame_size = Param(
        init=0,
        kind=int,
        min=0,
        max=1 << 20,
        unit="samples",
        live=False,
        doc="Samples per cycle when the file holds several back to back; 0: the whole file.",
    )
    interpolation = Param(
        init="cubic", kind=str, choices=("linear", "cubic"), doc="Interpolation between table samples."
    )
    freq = _freq_input(220.0)
    position = Input(init=0.0, min=0.0, max=1.0, doc="Which cycle plays: 0 the first, 1 the last, crossfaded.")
    sync = _sync_input()
    out = Output(span=(-1.0, 1.0), doc="The table's waveform at its own amplitude.")

    def memory_bytes(self, sample_rate: float, block_size: int, lanes: int) -> int:
        """The band-limited copies of the table (one per octave), from the file's header."""
        if not self.table:
            return mipmap_bytes(1, 2048)
        frames, size = wavetable_shape(self.table, self.frame_size)
        return mipmap_bytes(frames, size)

    def prepare(self, ctx: PrepareContext) -> None:
        super().prepare(ctx)
        if self.table:
            path = Path(self.table)
            if not path.is_absolute():
                path = ctx.patch_dir / path
            cycles = load_wavetable(path, self.frame_size)
        else:
            cycles = np.sin(np.arange(2048) * (TWO_PI / 2048))[None, :]
        self.tables = mipmaps(cycles)
        self.half_size = float(cycles.shape[1] // 2)

    def kernel(self, ins: Ports, outs: Ports):
        return _wavetable_kernel, (
            ins.freq,
            ins.position,
            ins.sync,
            self.phase,
            self.last_reset,
            self.inv_sr,
            self.tables,
            self.half_size,
            self.interpolation == "cubic",
            outs.out,
        )


@hookimpl
def ng_register_nodes(register) -> None:
    register(SineOsc)
    register(SawOsc)
    register(SquareOsc)
    register(TriangleOsc)
    register(WavetableOsc)
