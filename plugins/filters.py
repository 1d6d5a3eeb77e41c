"""Filters: a state-variable filter, RBJ biquads, a one-pole and a DC blocker.

- ``filter.lowpass`` / ``highpass`` / ``bandpass`` / ``notch``: Andrew Simper's (Cytomic)
  trapezoidal state-variable filter. Its coefficients are recomputed whenever ``cutoff`` or
  ``q`` change, sample by sample, and its state is that of a trapezoidal integrator, so it stays
  stable under any audio-rate modulation of cutoff (clamped to 1 Hz .. 0.499 × the sample rate)
  and Q. Response: the bilinear transform (with prewarping at cutoff) of the analog 2-pole.
- ``filter.peak`` / ``lowshelf`` / ``highshelf``: Robert Bristow-Johnson's cookbook biquads,
  coefficients recomputed per block per lane from control-rate inputs, run in transposed
  direct form II.
- ``filter.onepole``: trapezoidal one-pole lowpass or highpass, audio-rate cutoff.
- ``filter.dc_block``: ``y[n] = x[n] - x[n-1] + R y[n-1]``.

All lanes run in one compiled call. Per-sample recursion with per-sample coefficients does not
vectorise, and scipy's ``lfilter``/``sosfilt`` allocate their output, so the kernels are numba.
A non-finite input sample is treated as 0 and a non-finite state is cleared, so one bad sample
cannot silence a filter for good.
"""

from __future__ import annotations

import math

import numpy as np

from neuralgraph.plugin import (
    Input,
    Node,
    Output,
    Param,
    Ports,
    PrepareContext,
    Rate,
    carray,
    hookimpl,
    intrinsic,
    njit,
)

MIN_CUTOFF = 1.0  # Hz
NYQUIST_FRACTION = 0.499  # the highest cutoff, as a fraction of the sample rate
MIN_Q, MAX_Q = 0.05, 100.0
TINY = 1e-30  # states below this are flushed to 0 (no subnormals)

SVF_MODES = {"lowpass": 0, "highpass": 1, "bandpass": 2, "notch": 3}


def _finite(x: float) -> bool:
    return abs(x) < 1e30  # False for NaN and Inf


_finite_jit = njit(cache=True, nogil=True, inline="always")(_finite)


@njit(cache=True, nogil=True, inline="always")
def _svf_step(a1, a2, a3):  # pragma: no cover - compiled
    """The state update as a 2x2 map: ic1' = 2 a2 v0 + m11 ic1 - m12 ic2, ic2' = 2 a3 v0 + m12 ic1 + m22 ic2."""
    return 2.0 * a1 - 1.0, 2.0 * a2, 1.0 - 2.0 * a3


@njit(cache=True, nogil=True, inline="always")
def _svf_coefficients(fc, qq, sample_rate, hi_cut):  # pragma: no cover - compiled
    """Simper's k, a1, a2, a3 for a cutoff and Q (NaN: the lowest cutoff, Q 0.707), both clamped."""
    f = fc if fc == fc else MIN_CUTOFF
    f = min(hi_cut, max(MIN_CUTOFF, f))
    qv = qq if qq == qq else 0.7071067811865476
    qv = min(MAX_Q, max(MIN_Q, qv))
    g = math.tan(math.pi * f / sample_rate)
    k = 1.0 / qv
    a1 = 1.0 / (1.0 + g * (g + k))
    a2 = g * a1
    return k, a1, a2, g * a2


@njit(cache=True, nogil=True, inline="always")
def _svf_plain(x, cutoff, q, coeffs, frames):  # pragma: no cover - compiled
    """True when every lane's cutoff and Q stay, all block, the values its coefficients were made
    for, and every input sample is finite (so _svf_four's loop needs no per-sample check)."""
    changed = 0
    for lane in range(cutoff.shape[0]):
        fc = cutoff[lane, 0]
        qq = q[lane, 0]
        if fc != coeffs[lane, 0] or qq != coeffs[lane, 1]:
            return False
        for i in range(frames):  # in the inputs' own type, no early exit: the scan vectorises
            changed |= np.int32(cutoff[lane, i] != fc) | np.int32(q[lane, i] != qq)
            changed |= np.int32(not _finite_jit(x[lane, i]))
    return changed == 0


@njit(cache=True, nogil=True, inline="always")
def _svf_tick(mode, v0, ic1, ic2, c):  # pragma: no cover - compiled
    """One sample of one lane (c = k, a1, a2, a3, m11, m12, m22): the output and the new state.
    _svf_kernel's arithmetic for a finite input (_svf_plain checked the block: the check per
    sample was a fifth of the four-lanes loop); kept out of that kernel, whose one-lane loop was
    5 % slower with it."""
    k, a1, a2, a3, m11, m12, m22 = c
    in1 = a2 * v0
    in2 = a3 * v0
    v1 = (in1 + a1 * ic1) - a2 * ic2
    v2 = (in2 + a2 * ic1) + (1.0 - a3) * ic2
    next1 = (2.0 * in1 + m11 * ic1) - m12 * ic2
    next2 = (2.0 * in2 + m12 * ic1) + m22 * ic2
    return _svf_output(mode, v0, v1, v2, k), next1, next2


@njit(cache=True, nogil=True, inline="always")
def _svf_held_coeffs(coeffs):  # pragma: no cover - compiled
    """A lane's held k, a1, a2, a3 and its 2x2 state map m11, m12, m22 (``coeffs``: its row)."""
    a1, a2, a3 = coeffs[3], coeffs[4], coeffs[5]
    m11, m12, m22 = _svf_step(a1, a2, a3)
    return coeffs[2], a1, a2, a3, m11, m12, m22


@njit(cache=True, nogil=True, fastmath={"contract"})
def _svf_lanes(x, mode, state, coeffs, out, frames):  # pragma: no cover - compiled
    # One copy of the loop per mode (a literal mode folds the output choice out of the loop).
    if mode == 0:
        _svf_groups(x, 0, state, coeffs, out, frames)
    elif mode == 1:
        _svf_groups(x, 1, state, coeffs, out, frames)
    elif mode == 2:
        _svf_groups(x, 2, state, coeffs, out, frames)
    else:
        _svf_groups(x, 3, state, coeffs, out, frames)


@njit(cache=True, nogil=True, fastmath={"contract"}, inline="always")
def _svf_groups(x, mode, state, coeffs, out, frames):  # pragma: no cover - compiled
    # Lanes must be a multiple of 4: a remainder loop gained nothing and LLVM fused its
    # multiply-adds differently (not bit-identical).
    for g in range(0, out.shape[0], 4):
        _svf_four(
            mode,
            (x[g], x[g + 1], x[g + 2], x[g + 3]),
            (state[g], state[g + 1], state[g + 2], state[g + 3]),
            (coeffs[g], coeffs[g + 1], coeffs[g + 2], coeffs[g + 3]),
            (out[g], out[g + 1], out[g + 2], out[g + 3]),
            frames,
        )


@njit(cache=True, nogil=True, fastmath={"contract"}, inline="always")
def _svf_four(mode, x, state, coeffs, out, frames):  # pragma: no cover - compiled
    # Held coefficients: four lanes (each argument a tuple of their four rows) at a time,
    # sample-outer, each lane's state in registers, so four independent serial chains overlap
    # instead of each waiting for its own previous sample (1.18x on 8 lanes, 2x on four one-lane
    # filters). Per-lane arithmetic is _svf_kernel's, so the output is bit-identical.
    x0, x1, x2, x3 = x
    o0, o1, o2, o3 = out
    c0, c1 = _svf_held_coeffs(coeffs[0]), _svf_held_coeffs(coeffs[1])
    c2, c3 = _svf_held_coeffs(coeffs[2]), _svf_held_coeffs(coeffs[3])
    p1, p2, q1, q2 = state[0][0], state[0][1], state[1][0], state[1][1]
    r1, r2, s1, s2 = state[2][0], state[2][1], state[3][0], state[3][1]
    for i in range(frames):
        o0[i], p1, p2 = _svf_tick(mode, x0[i], p1, p2, c0)
        o1[i], q1, q2 = _svf_tick(mode, x1[i], q1, q2, c1)
        o2[i], r1, r2 = _svf_tick(mode, x2[i], r1, r2, c2)
        o3[i], s1, s2 = _svf_tick(mode, x3[i], s1, s2, c3)
    state[0][0], state[0][1], state[1][0], state[1][1] = p1, p2, q1, q2
    state[2][0], state[2][1], state[3][0], state[3][1] = r1, r2, s1, s2


@njit(cache=True, nogil=True, inline="always")
def _svf_output(mode, v0, v1, v2, k):  # pragma: no cover - compiled
    """The mode's output from the input and Simper's v1, v2."""
    if mode == 0:
        return v2
    if mode == 1:
        return v0 - k * v1 - v2
    if mode == 2:
        return k * v1  # constant 0 dB peak gain
    return v0 - k * v1


@njit(cache=True, nogil=True, fastmath={"contract"})
def _svf_kernel(x, cutoff, q, mode, state, coeffs, sample_rate, out, frames):  # pragma: no cover - compiled
    # Simper's update (v3 = v0 - ic2, v1 = a1 ic1 + a2 v3, v2 = ic2 + a2 ic1 + a3 v3, ic = 2 v - ic)
    # expanded into a 2x2 map of the state plus input terms: each new state is a product of each
    # old one, summed, so a sample's serial chain is a multiply-add and an add, not the five
    # dependent operations of the textbook order (1.2x on the kernel). Outputs use v1 and v2.
    hi_cut = NYQUIST_FRACTION * sample_rate
    for lane in range(out.shape[0]):
        ic1 = state[lane, 0]
        ic2 = state[lane, 1]
        last_fc = coeffs[lane, 0]
        last_q = coeffs[lane, 1]
        k = coeffs[lane, 2]
        a1 = coeffs[lane, 3]
        a2 = coeffs[lane, 4]
        a3 = coeffs[lane, 5]
        m11, m12, m22 = _svf_step(a1, a2, a3)
        for i in range(frames):
            fc = cutoff[lane, i]
            qq = q[lane, i]
            if fc != last_fc or qq != last_q:  # recompute only when modulated
                last_fc = fc
                last_q = qq
                k, a1, a2, a3 = _svf_coefficients(fc, qq, sample_rate, hi_cut)
                m11, m12, m22 = _svf_step(a1, a2, a3)
            v0 = x[lane, i]
            if not _finite_jit(v0):
                v0 = 0.0
            in1 = a2 * v0
            in2 = a3 * v0
            v1 = (in1 + a1 * ic1) - a2 * ic2
            v2 = (in2 + a2 * ic1) + (1.0 - a3) * ic2
            next1 = (2.0 * in1 + m11 * ic1) - m12 * ic2
            ic2 = (2.0 * in2 + m12 * ic1) + m22 * ic2
            ic1 = next1
            if mode == 0:
                y = v2
            elif mode == 1:
                y = v0 - k * v1 - v2
            elif mode == 2:
                y = k * v1  # constant 0 dB peak gain
            else:
                y = v0 - k * v1
            out[lane, i] = y
        if not (_finite_jit(ic1) and _finite_jit(ic2)):
            ic1 = 0.0
            ic2 = 0.0
        if abs(ic1) < TINY:
            ic1 = 0.0
        if abs(ic2) < TINY:
            ic2 = 0.0
        state[lane, 0] = ic1
        state[lane, 1] = ic2
        coeffs[lane, 0] = last_fc
        coeffs[lane, 1] = last_q
        coeffs[lane, 2] = k
        coeffs[lane, 3] = a1
        coeffs[lane, 4] = a2
        coeffs[lane, 5] = a3


@njit(cache=True, nogil=True, fastmath={"contract"})
def _svf_lanes_kernel(x, cutoff, q, mode, state, coeffs, sample_rate, out, frames):  # pragma: no cover - compiled
    """_svf_kernel for lanes in multiples of 4: the held-coefficient block runs four lanes at a time."""
    if not _svf_plain(x, cutoff, q, coeffs, frames):  # modulated, or a non-finite input
        _svf_kernel(x, cutoff, q, mode, state, coeffs, sample_rate, out, frames)
        return
    _svf_lanes(x, mode, state, coeffs, out, frames)
    _svf_settle(state)


@njit(cache=True, nogil=True, inline="always")
def _svf_settle(state):  # pragma: no cover - compiled
    """_svf_kernel's end of block for every lane (a helper shared with it slowed its one-lane loop)."""
    for lane in range(state.shape[0]):
        ic1 = state[lane, 0]
        ic2 = state[lane, 1]
        if not (_finite_jit(ic1) and _finite_jit(ic2)):
            ic1 = 0.0
            ic2 = 0.0
        state[lane, 0] = 0.0 if abs(ic1) < TINY else ic1
        state[lane, 1] = 0.0 if abs(ic2) < TINY else ic2


#: One-lane filters a side-by-side call runs as one vector (eight float64 lanes: two AVX2
#: registers or one AVX-512; fewer filters leave lanes that stay silent).
SVF_VECTOR = 8


def _transposed(builder, rows):  # pragma: no cover - compiled
    """SVF_VECTOR vectors of SVF_VECTOR as the columns of the square they form (three rounds of
    swapping off-diagonal blocks of 1, 2, 4: shuffles, no memory)."""
    rows, size, b = list(rows), SVF_VECTOR, 1
    while b < size:
        for p in (p for p in range(size) if not (p // b) % 2):
            low = [q if not (q // b) % 2 else size + q - b for q in range(size)]
            high = [q + b if not (q // b) % 2 else size + q for q in range(size)]
            rows[p], rows[p + b] = (builder.shuffle_vector(rows[p], rows[p + b], _mask(m)) for m in (low, high))
        b *= 2
    return rows


def _mask(indices):  # pragma: no cover - compiled
    from llvmlite import ir

    return ir.Constant(ir.VectorType(ir.IntType(32), len(indices)), [ir.Constant(ir.IntType(32), k) for k in indices])


def _svf_access(builder, io, ir):  # pragma: no cover - compiled
    """How the vector recursion reads sample ``i``'s inputs and writes its outputs (one sample, and
    SVF_VECTOR samples at a time or None): rows of a [frames, SVF_VECTOR] float64 array, or
    (``io`` an int64 [2, SVF_VECTOR] table of addresses: inputs, outputs) each lane's own float32
    buffer, SVF_VECTOR samples of every lane loaded and stored as the square they form, turned by
    shuffles (_transposed), so that there is no gather before the recursion and no scatter after."""
    double, single = ir.VectorType(ir.DoubleType(), SVF_VECTOR), ir.VectorType(ir.FloatType(), SVF_VECTOR)
    if io.type.pointee != ir.IntType(64):
        at = builder.bitcast(io, double.as_pointer())
        return (
            (lambda i: builder.load(builder.gep(at, [i]), align=8)),
            (lambda i, v: builder.store(v, builder.gep(at, [i]), align=8)),
            None,
        )
    f32 = ir.FloatType().as_pointer()
    rows = [
        builder.inttoptr(builder.load(builder.gep(io, [ir.Constant(ir.IntType(64), k)])), f32)
        for k in range(2 * SVF_VECTOR)
    ]
    lanes = [ir.Constant(ir.IntType(32), k) for k in range(SVF_VECTOR)]

    def load(i):
        v = ir.Constant(double, None)
        for k, lane in enumerate(lanes):
            v = builder.insert_element(
                v, builder.fpext(builder.load(builder.gep(rows[k], [i]), align=4), ir.DoubleType()), lane
            )
        return v

    def store(i, v):
        for k, lane in enumerate(lanes):
            y = builder.fptrunc(builder.extract_element(v, lane), ir.FloatType())
            builder.store(y, builder.gep(rows[SVF_VECTOR + k], [i]), align=4)

    def span(k, i):
        return builder.bitcast(builder.gep(rows[k], [i]), single.as_pointer())

    def loads(i):
        square = [builder.load(span(k, i), align=4) for k in range(SVF_VECTOR)]
        return [builder.fpext(v, double) for v in _transposed(builder, square)]

    def stores(i, vs):
        for k, v in enumerate(_transposed(builder, [builder.fptrunc(v, single) for v in vs])):
            builder.store(v, span(SVF_VECTOR + k, i), align=4)

    return load, store, (loads, stores)


def _svf_loop(builder, ir, first, limit, step, carried, body):  # pragma: no cover - compiled
    """``for i in range(first, limit - step + 1, step)`` carrying the values ``carried`` (``body(i,
    values)`` returns the next ones); returns i's value after the loop and the values."""
    start, by = builder.block, ir.Constant(ir.IntType(64), step)
    loop, done = builder.append_basic_block("svf.loop"), builder.append_basic_block("svf.done")
    builder.cbranch(builder.icmp_signed("<=", builder.add(first, by), limit), loop, done)
    builder.position_at_end(loop)
    phis = [builder.phi(v.type) for v in [first, *carried]]
    new = [builder.add(phis[0], by), *body(phis[0], phis[1:])]
    end = builder.block
    builder.cbranch(builder.icmp_signed("<=", builder.add(new[0], by), limit), loop, done)
    builder.position_at_end(done)
    finals = [builder.phi(v.type) for v in phis]  # phis first in their block
    for phi, final, a, b in zip(phis, finals, [first, *carried], new):
        for node in (phi, final):
            node.add_incoming(a, start)
            node.add_incoming(b, end)
    return finals[0], finals[1:]


def _svf_vector_tick(builder, coeffs, mode, ir):  # pragma: no cover - compiled
    """A function emitting one sample of the vector recursion: ``tick(v0, ic1, ic2)`` -> the
    output of ``mode`` and the next states, from the rows of ``coeffs`` (a <SVF_VECTOR x double>*:
    k, a1, a2, a3, 1 - a3, m11, m12, m22). Every multiply-add is the fused one _svf_kernel's
    compiled loop makes, in the same order."""
    vector = ir.VectorType(ir.DoubleType(), SVF_VECTOR)
    name = f"llvm.fma.v{SVF_VECTOR}f64"
    fma = builder.module.globals.get(name) or ir.Function(builder.module, ir.FunctionType(vector, [vector] * 3), name)

    def madd(a, b, c):
        return builder.call(fma, [a, b, c])

    k, a1, a2, a3, b, m11, m12, m22 = (_svf_row_of(builder, coeffs, r, ir) for r in range(8))

    def tick(v0, ic1, ic2):
        in1, in2 = builder.fmul(a2, v0), builder.fmul(a3, v0)
        v1 = madd(builder.fneg(a2), ic2, madd(a1, ic1, in1))
        out = [madd(b, ic2, madd(a2, ic1, in2)), None, builder.fmul(k, v1), madd(builder.fneg(k), v1, v0)]
        out[1] = builder.fsub(out[3], out[0])  # v0 - k v1 - v2
        next1 = madd(builder.fneg(m12), ic2, madd(m11, ic1, builder.fadd(in1, in1)))
        next2 = madd(m22, ic2, madd(m12, ic1, builder.fadd(in2, in2)))
        return out[mode], next1, next2

    return tick


def _svf_row_of(builder, pointer, k, ir):  # pragma: no cover - compiled
    """Row ``k`` of a [rows, SVF_VECTOR] float64 array as one vector."""
    return builder.load(builder.gep(pointer, [ir.Constant(ir.IntType(64), k)]), align=8)


@intrinsic
def _svf_vector_run(typingctx, io, c, s, frames, mode):  # pragma: no cover - compiled
    """Simper's recursion for SVF_VECTOR filters at once, written as LLVM vector operations (numba
    leaves the straight-line vectoriser off, so a loop across lanes stays scalar). ``io``
    [frames, SVF_VECTOR] float64 holds each sample's inputs, replaced by the outputs, or is an
    int64 [2, SVF_VECTOR] table of the lanes' float32 input and output buffers' addresses
    (_svf_access); ``c`` [8, SVF_VECTOR] the rows k, a1, a2, a3, 1 - a3, m11, m12, m22; ``s``
    [2, SVF_VECTOR] the state, updated. Every multiply-add is the fused one _svf_kernel's compiled
    loop makes (checked bit for bit, all four modes: tests/test_lanes.py), so each lane's samples
    are that kernel's."""
    from llvmlite import ir
    from numba.core import types

    if not isinstance(mode, types.IntegerLiteral):
        return None
    vector = ir.VectorType(ir.DoubleType(), SVF_VECTOR)

    def codegen(context, builder, signature, args):
        data = [context.make_array(t)(context, builder, a).data for t, a in zip(signature.args[:3], args[:3])]
        load, store, spans = _svf_access(builder, data[0], ir)
        coeffs, states = (builder.bitcast(d, vector.as_pointer()) for d in data[1:])
        tick = _svf_vector_tick(builder, coeffs, mode.literal_value, ir)

        def one(i, state):
            out, *state = tick(load(i), *state)
            store(i, out)
            return state

        def many(i, state):
            outs = []
            for v0 in spans[0](i):
                out, *state = tick(v0, *state)
                outs.append(out)
            spans[1](i, outs)
            return state

        i, state = ir.Constant(ir.IntType(64), 0), [_svf_row_of(builder, states, r, ir) for r in (0, 1)]
        if spans is not None:
            i, state = _svf_loop(builder, ir, i, args[3], SVF_VECTOR, state, many)
        _, state = _svf_loop(builder, ir, i, args[3], 1, state, one)
        for r, final in enumerate(state):
            builder.store(final, builder.gep(states, [ir.Constant(ir.IntType(64), r)]), align=8)
        return context.get_dummy_value()

    return types.none(io, c, s, frames, mode), codegen


#: Columns of a side-by-side call's table (one row per filter): addresses, then control widths.
_SX, _SCUT, _SQ, _SSTATE, _SCOEFFS, _SOUT, _SCUT_W, _SQ_W = range(8)


@njit(cache=True, nogil=True, inline="always")
def _svf_row(row, frames):  # pragma: no cover - compiled
    """One filter's arrays from its table row (raw views: no reference counting per block)."""
    x = carray(_pointer(row[_SX]), (1, frames), np.float32)
    cutoff = carray(_pointer(row[_SCUT]), (1, row[_SCUT_W]), np.float32)
    q = carray(_pointer(row[_SQ]), (1, row[_SQ_W]), np.float32)
    state = carray(_pointer(row[_SSTATE]), (1, 2), np.float64)
    coeffs = carray(_pointer(row[_SCOEFFS]), (1, 6), np.float64)
    return x, cutoff, q, state, coeffs, carray(_pointer(row[_SOUT]), (1, frames), np.float32)


@njit(cache=True, nogil=True, inline="always")
def _svf_lane_into(state, coeffs, r, j, c, s):  # pragma: no cover - compiled
    """Row ``r``'s filter lane (held coefficients, state) into column ``j``."""
    a1, a2, a3 = coeffs[r, 3], coeffs[r, 4], coeffs[r, 5]
    m11, m12, m22 = _svf_step(a1, a2, a3)
    c[0, j], c[1, j], c[2, j], c[3, j], c[4, j] = coeffs[r, 2], a1, a2, a3, 1.0 - a3
    c[5, j], c[6, j], c[7, j] = m11, m12, m22
    s[0, j], s[1, j] = state[r, 0], state[r, 1]


@njit(cache=True, nogil=True, inline="always")
def _svf_into(x, state, coeffs, r, j, io, c, s, frames):  # pragma: no cover - compiled
    """Row ``r``'s filter lane (inputs, held coefficients, state) into column ``j``."""
    for i in range(frames):
        io[i, j] = x[r, i]
    _svf_lane_into(state, coeffs, r, j, c, s)


@njit(cache=True, nogil=True, inline="always")
def _svf_lane_from(state, r, j, s):  # pragma: no cover - compiled
    """Row ``r``'s filter lane's state (not settled) from column ``j``."""
    state[r, 0], state[r, 1] = s[0, j], s[1, j]


@njit(cache=True, nogil=True, inline="always")
def _svf_from(out, state, r, j, io, s, frames):  # pragma: no cover - compiled
    """Row ``r``'s filter lane (outputs, state: not settled) from column ``j``."""
    for i in range(frames):
        out[r, i] = io[i, j]
    _svf_lane_from(state, r, j, s)


@njit(cache=True, nogil=True, inline="always")
def _svf_run(mode, io, c, s, frames):  # pragma: no cover - compiled
    if mode == 0:  # a literal mode per copy of the loop
        _svf_vector_run(io, c, s, frames, 0)
    elif mode == 1:
        _svf_vector_run(io, c, s, frames, 1)
    elif mode == 2:
        _svf_vector_run(io, c, s, frames, 2)
    else:
        _svf_vector_run(io, c, s, frames, 3)


@njit(cache=True, nogil=True, inline="always")
def _svf_rows_of(x, out, g, rows):  # pragma: no cover - compiled
    """The vector's table of addresses (_svf_access) for rows g .. g + SVF_VECTOR - 1 of x and out;
    False when their samples are not side by side in memory (then the vector takes a copy)."""
    if x.strides[1] != 4 or out.strides[1] != 4:
        return False
    for j in range(SVF_VECTOR):
        rows[j] = x.ctypes.data + (g + j) * x.strides[0]
        rows[SVF_VECTOR + j] = out.ctypes.data + (g + j) * out.strides[0]
    return True


@njit(cache=True, nogil=True)
def _svf_vector_kernel(x, cutoff, q, mode, state, coeffs, sample_rate, out, io, c, s, rows, frames):  # pragma: no cover
    """_svf_kernel for SVF_VECTOR lanes or more: a held block (_svf_plain) runs SVF_VECTOR lanes at a
    time as one vector recursion (the per-lane loop's samples, bit for bit): a full group straight
    from x into out, a last group of fewer lanes through ``io``."""
    if not _svf_plain(x, cutoff, q, coeffs, frames):  # modulated, or a non-finite input
        _svf_kernel(x, cutoff, q, mode, state, coeffs, sample_rate, out, frames)
        return
    lanes = out.shape[0]
    for g in range(0, lanes, SVF_VECTOR):  # a last group's spare columns run what they held
        count = min(SVF_VECTOR, lanes - g)
        direct = count == SVF_VECTOR and _svf_rows_of(x, out, g, rows)
        for j in range(count):
            if direct:
                _svf_lane_into(state, coeffs, g + j, j, c, s)
            else:
                _svf_into(x, state, coeffs, g + j, j, io, c, s, frames)
        if direct:
            _svf_run(mode, rows, c, s, frames)
        else:
            _svf_run(mode, io, c, s, frames)
        for j in range(count):
            if direct:
                _svf_lane_from(state, g + j, j, s)
            else:
                _svf_from(out, state, g + j, j, io, s, frames)
    _svf_settle(state)


@njit(cache=True, nogil=True)
def _svf_across(table, mode, sample_rate, rows, c, s, spare, frames):  # pragma: no cover - compiled
    """_svf_kernel for up to SVF_VECTOR one-lane filters (``table``: a row of addresses each): one
    vector recursion (_svf_vector_run) straight from their inputs into their outputs (``rows``:
    those buffers' addresses; spare lanes read and write ``spare``'s rows) when all hold their
    coefficients and have finite inputs, else one after the other."""
    plain = True
    for j in range(table.shape[0]):
        x, cutoff, q, _, coeffs, _ = _svf_row(table[j], frames)
        plain = plain and _svf_plain(x, cutoff, q, coeffs, frames)
    if not plain:
        for j in range(table.shape[0]):
            x, cutoff, q, state, coeffs, out = _svf_row(table[j], frames)
            _svf_kernel(x, cutoff, q, mode, state, coeffs, sample_rate, out, frames)
        return
    for j in range(table.shape[0]):
        _, _, _, state, coeffs, _ = _svf_row(table[j], frames)
        _svf_lane_into(state, coeffs, 0, j, c, s)
    _svf_run(mode, rows, c, s, frames)
    for j in range(table.shape[0]):
        _, _, _, state, _, _ = _svf_row(table[j], frames)
        _svf_lane_from(state, 0, j, s)
        _svf_settle(state)


def _svf_lanes_form(calls: list[tuple]) -> tuple | None:
    """_svf_kernel's lanes form (neuralgraph._compile.lanes): two to SVF_VECTOR one-lane filters
    of one mode and sample rate, no data path between them, as one _svf_across call: a table of
    their arrays' addresses (the plan keeps the arrays), the vector's table of input and output
    addresses (spare lanes read zeros and write a spare row, both kept here) and its arrays."""
    if not 2 <= len(calls) <= SVF_VECTOR or len({(c[3], c[6]) for c in calls}) != 1:
        return None
    shapes = {tuple((a.shape, a.dtype) for a in c if isinstance(a, np.ndarray)) for c in calls}
    if len(shapes) != 1 or any(shape[0] != 1 for shape, _ in next(iter(shapes))):
        return None
    x, cutoff, q, mode, state, coeffs, rate, out = calls[0]
    kinds = {x.dtype, cutoff.dtype, q.dtype, out.dtype}
    if (state.shape, coeffs.shape) != ((1, 2), (1, 6)) or kinds != {np.dtype(np.float32)}:
        return None
    columns = (0, 1, 2, 4, 5, 7)  # x, cutoff, q, state, coeffs, out in a call's arguments
    table = np.array([[_address(c[k]) for k in columns] + [cutoff.shape[1], q.shape[1]] for c in calls], np.int64)
    spare = np.zeros((2, x.shape[1]), np.float32)  # a spare lane's input (zeros) and output
    ins = [_address(c[0]) for c in calls] + [_address(spare[0])] * (SVF_VECTOR - len(calls))
    outs = [_address(c[7]) for c in calls] + [_address(spare[1])] * (SVF_VECTOR - len(calls))
    rows = np.array(ins + outs, np.int64)
    c, s = np.zeros((8, SVF_VECTOR), np.float64), np.zeros((2, SVF_VECTOR), np.float64)
    return _svf_across, (table, mode, rate, rows, c, s, spare)


#: fusion runs up to SVF_VECTOR separate one-lane calls of this kernel side by side (neuralgraph._compile.lanes)
_svf_kernel.lanes = _svf_lanes_form
_svf_kernel.lanes_most = SVF_VECTOR


class _StateVariable(Node):
    bypass = "thru"
    side_by_side = True  # one-lane filters run eight at a time in a fused plan (_svf_lanes_form)
    mode = "lowpass"
    in_ = Input(init=0.0, doc="The signal to filter.")
    cutoff = Input(
        init=1000.0,
        min=0.0,
        max=100000.0,
        unit="Hz",
        doc="Cutoff (centre) frequency, audio rate; clamped to 1 Hz .. 0.499 × sample rate.",
    )
    q = Input(
        init=0.7071067811865476,
        min=MIN_Q,
        max=MAX_Q,
        doc="Resonance (0.707: Butterworth; higher rings); clamped to 0.05..100.",
    )
    out = Output(doc="The filtered signal.")

    def prepare(self, ctx: PrepareContext) -> None:
        self.sample_rate = float(ctx.sample_rate)
        self.state = np.zeros((ctx.lanes, 2), np.float64)
        self.coeffs = np.zeros((ctx.lanes, 6), np.float64)
        # held blocks: 8 or more lanes run as vectors of 8 (_svf_vector_kernel: 1.15x on the lanes P1),
        # fewer in fours (_svf_groups: below 8 lanes, faster than a vector with spare lanes)
        kernels = {True: _svf_vector_kernel, False: _svf_lanes_kernel if ctx.lanes % 4 == 0 else _svf_kernel}
        self.svf_kernel = kernels[ctx.lanes >= SVF_VECTOR]
        self.vector = (
            np.zeros((ctx.block_size, SVF_VECTOR), np.float64),
            np.zeros((8, SVF_VECTOR), np.float64),
            np.zeros((2, SVF_VECTOR), np.float64),
            np.zeros(2 * SVF_VECTOR, np.int64),
        )
        self.mode_index = SVF_MODES[self.mode]
        self.reset()

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        x, cutoff, q, out, rate = ins.in_, ins.cutoff, ins.q, outs.out, self.sample_rate
        if self.svf_kernel is _svf_vector_kernel:
            _svf_vector_kernel(x, cutoff, q, self.mode_index, self.state, self.coeffs, rate, out, *self.vector, frames)
        else:
            _svf_kernel(x, cutoff, q, self.mode_index, self.state, self.coeffs, rate, out, frames)

    def kernel(self, ins: Ports, outs: Ports):
        args = (ins.in_, ins.cutoff, ins.q, self.mode_index, self.state, self.coeffs, self.sample_rate, outs.out)
        return self.svf_kernel, args + (self.vector if self.svf_kernel is _svf_vector_kernel else ())

    def reset(self) -> None:
        self.state.fill(0.0)
        self.coeffs.fill(0.0)
        self.coeffs[:, 0] = np.nan  # forces a coefficient computation on the first sample


class Lowpass(_StateVariable):
    """2-pole state-variable lowpass (12 dB/octave), stable under audio-rate cutoff modulation."""

    type_name = "filter.lowpass"
    mode = "lowpass"


class Highpass(_StateVariable):
    """2-pole state-variable highpass (12 dB/octave), stable under audio-rate cutoff modulation."""

    type_name = "filter.highpass"
    mode = "highpass"


class Bandpass(_StateVariable):
    """State-variable bandpass, 0 dB at its centre, bandwidth cutoff/q."""

    type_name = "filter.bandpass"
    mode = "bandpass"


class Notch(_StateVariable):
    """State-variable notch: removes ``cutoff``, width cutoff/q."""

    type_name = "filter.notch"
    mode = "notch"


# ---- RBJ biquads -------------------------------------------------------------------------------------

RBJ_MODES = {"peak": 0, "lowshelf": 1, "highshelf": 2}


@njit(cache=True, nogil=True, inline="always")
def _rbj(mode, fc, q, gain_db, sample_rate, c):  # pragma: no cover - compiled
    """RBJ cookbook coefficients, normalised by a0, into c = [b0, b1, b2, a1, a2]."""
    w0 = 2.0 * math.pi * fc / sample_rate
    cw = math.cos(w0)
    alpha = math.sin(w0) / (2.0 * q)
    a = 10.0 ** (gain_db / 40.0)
    if mode == 0:
        b0 = 1.0 + alpha * a
        b1 = -2.0 * cw
        b2 = 1.0 - alpha * a
        a0 = 1.0 + alpha / a
        a1 = -2.0 * cw
        a2 = 1.0 - alpha / a
    else:
        sa = 2.0 * math.sqrt(a) * alpha
        if mode == 1:
            b0 = a * ((a + 1.0) - (a - 1.0) * cw + sa)
            b1 = 2.0 * a * ((a - 1.0) - (a + 1.0) * cw)
            b2 = a * ((a + 1.0) - (a - 1.0) * cw - sa)
            a0 = (a + 1.0) + (a - 1.0) * cw + sa
            a1 = -2.0 * ((a - 1.0) + (a + 1.0) * cw)
            a2 = (a + 1.0) + (a - 1.0) * cw - sa
        else:
            b0 = a * ((a + 1.0) + (a - 1.0) * cw + sa)
            b1 = -2.0 * a * ((a - 1.0) + (a + 1.0) * cw)
            b2 = a * ((a + 1.0) + (a - 1.0) * cw - sa)
            a0 = (a + 1.0) - (a - 1.0) * cw + sa
            a1 = 2.0 * ((a - 1.0) - (a + 1.0) * cw)
            a2 = (a + 1.0) - (a - 1.0) * cw - sa
    c[0] = b0 / a0
    c[1] = b1 / a0
    c[2] = b2 / a0
    c[3] = a1 / a0
    c[4] = a2 / a0


@njit(cache=True, nogil=True, inline="always")
def _biquad_update(cutoff, q, gain_db, mode, params, c, sample_rate, lane):  # pragma: no cover - compiled
    """One lane's coefficients ``c`` recomputed when its clamped control inputs changed."""
    hi_cut = NYQUIST_FRACTION * sample_rate
    fc = cutoff[lane, 0]
    qv = q[lane, 0]
    gd = gain_db[lane, 0]
    fc = min(hi_cut, max(MIN_CUTOFF, fc if fc == fc else MIN_CUTOFF))  # x == x is False for NaN
    qv = min(MAX_Q, max(MIN_Q, qv if qv == qv else 0.7071067811865476))
    gd = min(48.0, max(-48.0, gd if gd == gd else 0.0))
    if fc != params[lane, 0] or qv != params[lane, 1] or gd != params[lane, 2]:
        params[lane, 0] = fc
        params[lane, 1] = qv
        params[lane, 2] = gd
        _rbj(mode, fc, qv, gd, sample_rate, c)


@njit(cache=True, nogil=True, inline="always")
def _flushed(s1, s2):  # pragma: no cover - compiled
    """A state pair after a block: cleared when not finite, tiny values flushed to 0."""
    if not (_finite_jit(s1) and _finite_jit(s2)):
        return 0.0, 0.0
    return (0.0 if abs(s1) < TINY else s1), (0.0 if abs(s2) < TINY else s2)


@njit(cache=True, nogil=True, fastmath={"contract"})
def _biquad_kernel(
    x, cutoff, q, gain_db, mode, state, params, coeffs, sample_rate, out, frames
):  # pragma: no cover - compiled
    for lane in range(out.shape[0]):
        c = coeffs[lane]
        _biquad_update(cutoff, q, gain_db, mode, params, c, sample_rate, lane)
        b0 = c[0]
        b1 = c[1]
        b2 = c[2]
        a1 = c[3]
        a2 = c[4]
        s1 = state[lane, 0]
        s2 = state[lane, 1]
        for i in range(frames):
            v = x[lane, i]
            if not _finite_jit(v):
                v = 0.0
            y = b0 * v + s1
            # b1*v + s2 does not wait for y: the serial chain per sample is two fused multiply-adds
            s1 = (b1 * v + s2) - a1 * y
            s2 = b2 * v - a2 * y
            out[lane, i] = y
        state[lane, 0], state[lane, 1] = _flushed(s1, s2)


# ---- biquads in series, sample by sample ---------------------------------------------------------------
#
# Each biquad's sample waits on its own previous sample (two multiply-adds), so one filter per pass
# over the block is bound by that latency. In a series chain, filter k's sample i needs only filter
# k-1's sample i: running every filter of the chain inside one loop over the samples lets the CPU
# overlap the chains (1.65x on P3's 20 filters, benchmarks/cascade_speed.py). Same arithmetic, same
# order per filter, the float32 rounding of each filter's output kept: bit for bit the separate calls.

#: Columns of a cascade's table (one row per filter): addresses, the mode, the control widths.
_CUTOFF, _Q, _GAIN, _MODE, _STATE, _PARAMS, _COEFFS, _OUT, _CUTOFF_W, _Q_W, _GAIN_W, _IN = range(12)
#: Samples a filter runs per step of the skewed loop (its state stays in registers over them).
_SPAN = 4


@intrinsic
def _pointer(typingctx, address):  # pragma: no cover - compiled
    """int64 address -> void* (the cascade's filters are reached through its table of addresses)."""
    from numba.core import cgutils, types  # at typing time: importing this module imports no numba

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(types.int64), codegen


@intrinsic
def _load_f32(typingctx, address):  # pragma: no cover - compiled
    """The float32 at an int64 address."""
    from llvmlite import ir
    from numba.core import types

    def codegen(context, builder, signature, args):
        return builder.load(builder.inttoptr(args[0], ir.FloatType().as_pointer()))

    return types.float32(types.int64), codegen


@intrinsic
def _store_f32(typingctx, address, value):  # pragma: no cover - compiled
    """Store a float32 at an int64 address."""
    from llvmlite import ir
    from numba.core import types

    def codegen(context, builder, signature, args):
        builder.store(args[1], builder.inttoptr(args[0], ir.FloatType().as_pointer()))
        return context.get_dummy_value()

    return types.none(types.int64, types.float32), codegen


@njit(cache=True, nogil=True, fastmath={"contract"}, inline="always")
def _biquad_sample(src, dst, i, b0, b1, b2, a1, a2, s1, s2):  # pragma: no cover - compiled
    """One sample of one filter of a cascade, read from and written to float32 rows by address;
    the same arithmetic as ``_biquad_kernel``'s loop. Returns the new state."""
    v = np.float64(_load_f32(src + i * 4))
    if not _finite_jit(v):
        v = 0.0
    y = b0 * v + s1
    _store_f32(dst + i * 4, np.float32(y))
    return (b1 * v + s2) - a1 * y, b2 * v - a2 * y


@njit(cache=True, nogil=True, fastmath={"contract"})
def _biquad_cascade_kernel(x, table, work, rows, sample_rate, frames):  # pragma: no cover - compiled
    n = table.shape[0]
    lanes, width = x.shape
    for lane in range(lanes):
        for k in range(n):  # each filter's coefficients and state, as its own call would start
            row = table[k]
            cutoff = carray(_pointer(row[_CUTOFF]), (lanes, row[_CUTOFF_W]), np.float32)
            q = carray(_pointer(row[_Q]), (lanes, row[_Q_W]), np.float32)
            gain_db = carray(_pointer(row[_GAIN]), (lanes, row[_GAIN_W]), np.float32)
            params = carray(_pointer(row[_PARAMS]), (lanes, 3), np.float64)
            c = carray(_pointer(row[_COEFFS]), (lanes, 5), np.float64)[lane]
            _biquad_update(cutoff, q, gain_db, row[_MODE], params, c, sample_rate, lane)
            state = carray(_pointer(row[_STATE]), (lanes, 2), np.float64)
            w = work[k]
            for j in range(5):
                w[j] = c[j]
            w[5] = state[lane, 0]
            w[6] = state[lane, 1]
        # skewed: at step t filter k does samples (t - k) * SPAN .. + SPAN, reading what filter
        # k - 1 wrote a step before, so the filters of one step are independent of each other
        row_bytes = width * 4
        for k in range(n):
            rows[k, 0] = table[k, _IN] + lane * row_bytes
            rows[k, 1] = table[k, _OUT] + lane * row_bytes
        steps = (frames + _SPAN - 1) // _SPAN
        for t in range(steps + n - 1):
            for k in range(max(0, t - steps + 1), min(n, t + 1)):
                start = (t - k) * _SPAN
                src = rows[k, 0]
                dst = rows[k, 1]
                b0 = work[k, 0]
                b1 = work[k, 1]
                b2 = work[k, 2]
                a1 = work[k, 3]
                a2 = work[k, 4]
                s1 = work[k, 5]
                s2 = work[k, 6]
                if start + _SPAN <= frames:  # a whole span: a loop of known length, unrolled
                    for j in range(_SPAN):
                        s1, s2 = _biquad_sample(src, dst, start + j, b0, b1, b2, a1, a2, s1, s2)
                else:
                    for i in range(start, frames):
                        s1, s2 = _biquad_sample(src, dst, i, b0, b1, b2, a1, a2, s1, s2)
                work[k, 5] = s1
                work[k, 6] = s2
        for k in range(n):
            state = carray(_pointer(table[k, _STATE]), (lanes, 2), np.float64)
            state[lane, 0], state[lane, 1] = _flushed(work[k, 5], work[k, 6])


def _address(a: np.ndarray) -> int:
    return int(a.__array_interface__["data"][0])


def _biquad_chain(calls: list[tuple]) -> tuple | None:
    """One cascade call doing consecutive ``_biquad_kernel`` calls (their bound arguments), or None
    when they are not a series chain: each filter must read the one before's output, and no control
    input may be one of the chain's outputs (the cascade reads them all before its first sample)."""
    x = calls[0][0]
    outs = [call[9] for call in calls]
    written = {_address(o) for o in outs}
    for k, (_, cutoff, q, gain_db, _mode, state, params, coeffs, rate, out) in enumerate(calls):
        if k and not (_address(calls[k][0]) == _address(outs[k - 1]) and calls[k][0].shape == x.shape):
            return None
        if out.shape != x.shape or rate != calls[0][8] or out.dtype != np.float32 or x.dtype != np.float32:
            return None
        for control in (cutoff, q, gain_db):
            if control.dtype != np.float32 or control.shape[0] != x.shape[0] or _address(control) in written:
                return None
        if (state.shape, params.shape, coeffs.shape) != ((x.shape[0], 2), (x.shape[0], 3), (x.shape[0], 5)):
            return None
    table = np.array(
        [
            [_address(c[1]), _address(c[2]), _address(c[3]), int(c[4]), _address(c[5]), _address(c[6]), _address(c[7])]
            + [_address(c[9]), c[1].shape[1], c[2].shape[1], c[3].shape[1], _address(c[0])]
            for c in calls
        ],
        np.int64,
    )
    return _biquad_cascade_kernel, (
        x,
        table,
        np.zeros((len(calls), 7), np.float64),
        np.zeros((len(calls), 2), np.int64),
        calls[0][8],
    )


#: fusion runs consecutive calls of this kernel as one cascade call (neuralgraph._compile.chains)
_biquad_kernel.chain = _biquad_chain


class _Biquad(Node):
    bypass = "thru"
    mode = "peak"
    in_ = Input(init=0.0, doc="The signal to filter.")
    cutoff = Input(
        init=1000.0,
        rate=Rate.CONTROL,
        min=0.0,
        max=100000.0,
        unit="Hz",
        doc="Centre (peak) or corner (shelves) frequency, per block; clamped to 1 Hz .. 0.499 × rate.",
    )
    q = Input(
        init=0.7071067811865476,
        rate=Rate.CONTROL,
        min=MIN_Q,
        max=MAX_Q,
        doc="Q: bandwidth of the peak, slope of the shelves (0.707: steepest without overshoot).",
    )
    gain_db = Input(
        init=0.0, rate=Rate.CONTROL, min=-48.0, max=48.0, unit="dB", doc="Gain at the centre (peak) or of the shelf."
    )
    out = Output(doc="The filtered signal.")

    def prepare(self, ctx: PrepareContext) -> None:
        self.sample_rate = float(ctx.sample_rate)
        self.state = np.zeros((ctx.lanes, 2), np.float64)
        self.current = np.zeros((ctx.lanes, 3), np.float64)
        self.coeffs = np.zeros((ctx.lanes, 5), np.float64)
        self.mode_index = RBJ_MODES[self.mode]
        self.reset()

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        _biquad_kernel(
            ins.in_,
            ins.cutoff,
            ins.q,
            ins.gain_db,
            self.mode_index,
            self.state,
            self.current,
            self.coeffs,
            self.sample_rate,
            outs.out,
            frames,
        )

    def kernel(self, ins: Ports, outs: Ports):
        return _biquad_kernel, (
            ins.in_,
            ins.cutoff,
            ins.q,
            ins.gain_db,
            self.mode_index,
            self.state,
            self.current,
            self.coeffs,
            self.sample_rate,
            outs.out,
        )

    def reset(self) -> None:
        self.state.fill(0.0)
        self.current.fill(np.nan)  # forces a coefficient computation on the first block
        self.coeffs.fill(0.0)


class Peak(_Biquad):
    """Peaking EQ (RBJ biquad): ``gain_db`` at ``cutoff``, bandwidth set by ``q``."""

    type_name = "filter.peak"
    mode = "peak"


class LowShelf(_Biquad):
    """Low shelf (RBJ biquad): ``gain_db`` below ``cutoff``, half of it (in dB) at ``cutoff``."""

    type_name = "filter.lowshelf"
    mode = "lowshelf"


class HighShelf(_Biquad):
    """High shelf (RBJ biquad): ``gain_db`` above ``cutoff``, half of it (in dB) at ``cutoff``."""

    type_name = "filter.highshelf"
    mode = "highshelf"


# ---- one-pole and DC blocker ----------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _onepole_kernel(x, cutoff, highpass, state, last, sample_rate, out, frames):  # pragma: no cover - compiled
    hi_cut = NYQUIST_FRACTION * sample_rate
    for lane in range(out.shape[0]):
        s = state[lane]
        last_fc = last[lane, 0]
        big_g = last[lane, 1]
        for i in range(frames):
            fc = cutoff[lane, i]
            if fc != last_fc:
                last_fc = fc
                f = fc if fc == fc else MIN_CUTOFF
                g = math.tan(math.pi * min(hi_cut, max(MIN_CUTOFF, f)) / sample_rate)
                big_g = g / (1.0 + g)
            v = x[lane, i]
            if not _finite_jit(v):
                v = 0.0
            u = (v - s) * big_g
            low = u + s
            s = low + u
            out[lane, i] = v - low if highpass[0] else low
        if not _finite_jit(s) or abs(s) < TINY:
            s = 0.0
        state[lane] = s
        last[lane, 0] = last_fc
        last[lane, 1] = big_g


class OnePole(Node):
    """One-pole (6 dB/octave) lowpass or highpass, trapezoidal, with audio-rate cutoff."""

    type_name = "filter.onepole"
    bypass = "thru"
    mode = Param(init="lowpass", kind=str, choices=("lowpass", "highpass"), doc="Which output.")
    in_ = Input(init=0.0, doc="The signal to filter.")
    cutoff = Input(
        init=1000.0,
        min=0.0,
        max=100000.0,
        unit="Hz",
        doc="-3 dB frequency, audio rate; clamped to 1 Hz .. 0.499 × sample rate.",
    )
    out = Output(doc="The filtered signal.")

    def prepare(self, ctx: PrepareContext) -> None:
        self.sample_rate = float(ctx.sample_rate)
        self.state = np.zeros(ctx.lanes, np.float64)
        self.last = np.zeros((ctx.lanes, 2), np.float64)
        self.highpass = np.zeros(1, np.int64)  # an array, so a live mode change reaches a fused kernel
        self.on_param("mode")
        self.reset()

    def on_param(self, name: str) -> None:
        if name == "mode":
            self.highpass[0] = self.mode == "highpass"

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        _onepole_kernel(ins.in_, ins.cutoff, self.highpass, self.state, self.last, self.sample_rate, outs.out, frames)

    def kernel(self, ins: Ports, outs: Ports):
        return _onepole_kernel, (ins.in_, ins.cutoff, self.highpass, self.state, self.last, self.sample_rate, outs.out)

    def reset(self) -> None:
        self.state.fill(0.0)
        self.last[:, 0] = np.nan
        self.last[:, 1] = 0.0


@njit(cache=True, nogil=True)
def _dc_block_kernel(x, r, state, out, frames):  # pragma: no cover - compiled
    for lane in range(out.shape[0]):
        x1 = state[lane, 0]
        y1 = state[lane, 1]
        for i in range(frames):
            v = x[lane, i]
            if not _finite_jit(v):
                v = 0.0
            y = v - x1 + r * y1
            x1 = v
            y1 = y
            out[lane, i] = y
        if not _finite_jit(y1) or abs(y1) < TINY:
            y1 = 0.0
        state[lane, 0] = x1
        state[lane, 1] = y1


def dc_block_pole(cutoff: float, sample_rate: float) -> float:
    """The pole R of ``filter.dc_block`` for a -3 dB point near ``cutoff`` Hz."""
    return math.exp(-2.0 * math.pi * cutoff / sample_rate)


class DCBlock(Node):
    """Removes DC: ``y[n] = x[n] - x[n-1] + R·y[n-1]``, R = exp(-2π·cutoff/rate)."""

    type_name = "filter.dc_block"
    bypass = "thru"
    cutoff = Param(init=10.0, min=0.1, max=1000.0, unit="Hz", doc="Corner frequency (about -3 dB).")
    in_ = Input(init=0.0, doc="The signal.")
    out = Output(doc="The signal without its DC offset.")

    def prepare(self, ctx: PrepareContext) -> None:
        self.sample_rate = float(ctx.sample_rate)
        self.state = np.zeros((ctx.lanes, 2), np.float64)
        self.on_param("cutoff")

    def on_param(self, name: str) -> None:
        if name == "cutoff":
            self.pole = dc_block_pole(min(self.cutoff, 0.25 * self.sample_rate), self.sample_rate)

    def process(self, ins: Ports, outs: Ports, frames: int) -> None:
        _dc_block_kernel(ins.in_, self.pole, self.state, outs.out, frames)

    def reset(self) -> None:
        self.state.fill(0.0)


@hookimpl
def ng_register_nodes(register) -> None:
    for cls in (Lowpass, Highpass, Bandpass, Notch, Peak, LowShelf, HighShelf, OnePole, DCBlock):
        register(cls)
