"""``onnx.model``'s block as source lines for a fused run, the model run made in them (C API) or by an escape.

At frame rate most blocks make no call: they copy their samples into the window bound to the
model and the held results out to the ports. :func:`escape_kernel` writes the node's whole block
as compiled lines (an :class:`~neuralgraph.plugin.EscapeKernel`): a block with no call due never
enters Python; where the hop fills, the lines save their place in the node's cursor and escape,
the fused step runs the model's bindings (:func:`model_call`: nothing else, unless an output
needs a cast these lines do not make) and re-enters the lines, which feed the state back, turn
the outputs into samples (cast, held, spread or interpolated over the hop), shift the context
and finish the block. At stream rate the same lines copy the block in, escape for the run, and
copy the results out. Every step is the node's ``process`` step with the same float32
operations in the same order (``onnx_buffers``), so the stream is bit for bit the unfused one.

Where the call is the model's run alone (no control input or output cast left to Python), the
lines make it themselves through the node's C API session (:func:`c_run`, ``onnx_capi``) and go
straight on with what follows the call: no escape, no second entry. The escape then only
reports a failed run (the node's fault); without a C session the lines escape for every call.

The cursor (int64): ``[pos, wp, done, called, stale]``: the position in the hop, the write
position in the window, the samples of this block already handled, whether the run was just
made, and whether hop buffers are stale. ``done`` and ``called`` are 0 between blocks, so
``process`` and these lines can take turns.

An output whose frames are held or interpolated over the hop (fewer frames than samples) is not
spread into its hop buffer at the call and copied out per block (two writes of every sample):
each block computes its samples from the frames (:meth:`_Lines.held`, :meth:`_Lines.ramp`) and
the call sets ``stale``. Should ``process`` run a block after such a call (the run falling back
member by member, or the node's snapshot loaded into an unfused engine), it first fills the hop
buffers from the same frames (``TensorOut.fill``).

Indices are unsigned: numba wraps a negative signed index around, a test that keeps LLVM from
vectorising the copies (2.4x slower on a (2, 4, 128) copy).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from neuralgraph.plugin import EscapeKernel, Ports, njit

from .onnx_buffers import TensorOut, write_scaled
from .onnx_capi import CSession, run_binding

if TYPE_CHECKING:
    from .onnx_model import OnnxModel

POS, WP, DONE, CALLED, STALE = range(5)
F16 = np.dtype(np.float16)
#: tensor dtypes whose values the lines cast to float32 themselves (numba's casts are numpy's;
#: float16 through its bits, :func:`float_bits`)
CASTS = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int32), np.dtype(np.int64), F16)


@njit(cache=True, nogil=True, inline="always")
def half_bits(f: int) -> int:  # pragma: no cover - compiled
    """The float16 bits of the float32 whose bits are ``f``: numpy's conversion (round to nearest
    even, overflow to infinity, subnormals, NaN kept a NaN), which numba does not offer."""
    f = f & 0xFFFFFFFF
    sign = (f & 0x80000000) >> 16
    exp = f & 0x7F800000
    if exp >= 0x47800000:  # overflow, infinity or NaN
        sig = f & 0x007FFFFF
        if exp == 0x7F800000 and sig != 0:
            nan = 0x7C00 + (sig >> 13)
            return sign + (nan + 1 if nan == 0x7C00 else nan)
        return sign + 0x7C00
    if exp <= 0x38000000:  # a subnormal half, or zero
        if exp < 0x33000000:
            return sign
        exp >>= 23
        sig = 0x00800000 + (f & 0x007FFFFF)
        sig >>= 113 - exp
        if (sig & 0x00003FFF) != 0x00001000 or (f & 0x000007FF) != 0:
            sig += 0x00001000
        return sign + (sig >> 13)
    hexp = (exp - 0x38000000) >> 13
    sig = f & 0x007FFFFF
    if (sig & 0x00003FFF) != 0x00001000:
        sig += 0x00001000
    return sign + hexp + (sig >> 13)


@njit(cache=True, nogil=True, inline="always")
def float_bits(h: int) -> int:  # pragma: no cover - compiled
    """The float32 bits of the float16 whose bits are ``h`` (exact)."""
    h = h & 0xFFFF
    sign = (h & 0x8000) << 16
    exp = h & 0x7C00
    if exp == 0:
        sig = h & 0x03FF
        if sig == 0:
            return sign
        sig <<= 1
        while (sig & 0x0400) == 0:
            sig <<= 1
            exp += 1
        return sign + ((127 - 15 - exp) << 23) + ((sig & 0x03FF) << 13)
    if exp == 0x7C00:
        return sign + 0x7F800000 + ((h & 0x03FF) << 13)
    return sign + (((h & 0x7FFF) + 0x1C000) << 13)


def flat(view: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The memory under a (lanes, [K,] T) view as one contiguous 1-D array from its first element,
    and the view's element strides as 3 (a broadcast axis has stride 0)."""
    if view.ndim == 2:
        view = view[:, None, :]
    item = view.itemsize
    strides = tuple(s // item for s in view.strides)
    extent = sum((n - 1) * s for n, s in zip(view.shape, strides)) + 1
    memory = np.lib.stride_tricks.as_strided(view, shape=(extent,), strides=(item,))
    return memory, strides  # type: ignore[return-value]


def _at(base: str, i: str, stride: int) -> str:
    return base if stride == 0 else f"{base} + {i}" if stride == 1 else f"{base} + {i} * np.uint64({stride})"


class _Lines:
    """Collects the lines' arguments (``arg``) and writes their loops."""

    def __init__(self) -> None:
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return "{%d}" % (len(self.args) - 1)

    def copy(self, dst: np.ndarray, dst_at: str, src: np.ndarray, src_at: str, n: str, value: str = "{v}") -> list[str]:
        """``dst[l, k, dst_at + i] = value(src[l, k, src_at + i])`` for every lane, feature and
        ``i < n`` (``value``: an expression of ``{v}``, the source element)."""
        (d, (d0, d1, d2)), (s, (s0, s1, s2)) = flat(dst), flat(src)
        dn, sn = self.arg(d), self.arg(s)
        feats = 1 if dst.ndim == 2 else dst.shape[1]
        element = value.format(v=f"{sn}[{_at('{m}s', '{m}i', s2)}]")
        return [
            f"for {{m}}l in range({dst.shape[0]}):",
            f"    for {{m}}k in range({feats}):",
            f"        {{m}}d = np.uint64({{m}}l * {d0} + {{m}}k * {d1} + ({dst_at}) * {d2})",
            f"        {{m}}s = np.uint64({{m}}l * {s0} + {{m}}k * {s1} + ({src_at}) * {s2})",
            f"        for {{m}}i in range(np.uint64({n})):",
            f"            {dn}[{_at('{m}d', '{m}i', d2)}] = {element}",
        ]

    def cast(self, dst: np.ndarray, dst_at: str, src: np.ndarray, src_at: str, n: str) -> list[str]:
        """:meth:`copy` with ``src`` cast to ``dst``'s dtype as numpy casts it (float16 through
        the bits: ``{f0}`` is :func:`half_bits`, ``{f1}`` :func:`float_bits`)."""
        if dst.dtype == src.dtype:  # float16 as its bits (numba has no float16)
            bits = np.dtype(f"u{dst.itemsize}")
            return self.copy(dst.view(bits), dst_at, src.view(bits), src_at, n)
        if dst.dtype == F16:
            return self.copy(dst.view(np.uint16), dst_at, src.view(np.uint32), src_at, n, "{{f0}}(np.int64({v}))")
        if src.dtype == F16:
            return self.copy(dst.view(np.uint32), dst_at, src.view(np.uint16), src_at, n, "{{f1}}(np.int64({v}))")
        return self.copy(dst, dst_at, src, src_at, n, f"np.{dst.dtype.name}({{v}})")

    def state(self, state_in: np.ndarray, state_out: np.ndarray) -> list[str]:
        """The state fed back: ``state_in = state_out`` (same dtype and shape, copied as bits)."""
        bits = np.dtype(f"u{state_in.itemsize}")
        a, b = self.arg(state_in.reshape(-1).view(bits)), self.arg(state_out.reshape(-1).view(bits))
        return [f"for {{m}}i in range(np.uint64({state_in.size})):", f"    {a}[{{m}}i] = {b}[{{m}}i]"]

    def unpack(self, out: TensorOut, view: np.ndarray) -> list[str]:
        """``TensorOut.unpack``: the call's frames cast (and spread or interpolated) into the
        output's float32 hop buffer, then scaled and offset."""
        tm, hop = out.tm, out.hop
        assert hop is not None
        if out.spread is not None:  # frame f held over its hop / frames samples
            lines = self._spread(hop, view, out.frames, hop.shape[2] // out.frames)
        elif out.resample:
            lines = self._resample(out, view)
        else:
            lines = self.cast(hop, "0", view, str(out.start), str(hop.shape[2]))
        if tm.scale != 1.0:
            lines += self.copy(hop, "0", hop, "0", str(hop.shape[2]), f"{{v}} * np.float32({float(tm.scale)!r})")
        if tm.offset:
            lines += self.copy(hop, "0", hop, "0", str(hop.shape[2]), f"{{v}} + np.float32({float(tm.offset)!r})")
        return lines

    def _spread(self, hop: np.ndarray, view: np.ndarray, frames: int, span: int) -> list[str]:
        (d, (d0, d1, d2)), (s, (s0, s1, s2)) = flat(hop), flat(view)
        dn, sn = self.arg(d), self.arg(s)
        return [
            f"for {{m}}l in range({hop.shape[0]}):",
            f"    for {{m}}k in range({hop.shape[1]}):",
            f"        for {{m}}f in range({frames}):",
            f"            {{m}}v = np.float32({sn}[{{m}}l * {s0} + {{m}}k * {s1} + {{m}}f * {s2}])",
            f"            {{m}}d = np.uint64({{m}}l * {d0} + {{m}}k * {d1} + {{m}}f * {span * d2})",
            f"            for {{m}}i in range(np.uint64({span})):",
            f"                {dn}[{_at('{m}d', '{m}i', d2)}] = {{m}}v",
        ]

    def advance(self, out: TensorOut, view: np.ndarray) -> list[str]:
        """At a call, for an interpolated output: the last frame leads the next call's, the
        call's frames after it (``out.ext``)."""
        frames, ext = out.frames, self.arg(out.ext)
        s, (s0, s1, s2) = flat(view)
        sn = self.arg(s)
        return [
            f"for {{m}}l in range({view.shape[0]}):",
            f"    for {{m}}k in range({view.shape[1]}):",
            f"        {ext}[{{m}}l, {{m}}k, 0] = {ext}[{{m}}l, {{m}}k, {frames}]",
            f"        for {{m}}f in range({frames}):",
            f"            {ext}[{{m}}l, {{m}}k, {{m}}f + 1] = np.float32({sn}[{{m}}l * {s0} + {{m}}k * {s1} + {{m}}f * {s2}])",
        ]

    def held(self, dst: np.ndarray, out: TensorOut, view: np.ndarray) -> list[str]:
        """The block's samples ``[pos, pos + n)`` of the hop straight from the frames ``view``
        (lanes, K, frames), each frame held over ``hop / frames`` samples: what ``unpack``'s
        spread and the copy out give, with one write per sample."""
        span = out.span // out.frames
        (d, (d0, d1, d2)), (s, (s0, s1, s2)) = flat(dst), flat(view)
        dn, sn = self.arg(d), self.arg(s)
        value = _scaled(out, f"np.float32({sn}[{{m}}hs + {{m}}hf * {s2}])")
        return [
            f"for {{m}}hl in range({view.shape[0]}):",
            f"    for {{m}}hk in range({view.shape[1]}):",
            f"        {{m}}hd = np.uint64({{m}}hl * {d0} + {{m}}hk * {d1} + {{m}}done * {d2})",
            f"        {{m}}hs = {{m}}hl * {s0} + {{m}}hk * {s1}",
            "        {m}hj = {m}pos",
            "        while {m}hj < {m}pos + {m}n:",
            f"            {{m}}hf = {{m}}hj // {span}",
            f"            {{m}}he = min(({{m}}hf + 1) * {span}, {{m}}pos + {{m}}n)",
            f"            {{m}}hv = {value}",
            "            for {m}hi in range(np.uint64({m}hj - {m}pos), np.uint64({m}he - {m}pos)):",
            f"                {dn}[{_at('{m}hd', '{m}hi', d2)}] = {{m}}hv",
            "            {m}hj = {m}he",
        ]

    def ramp(self, dst: np.ndarray, out: TensorOut, k: int | None) -> list[str]:
        """The block's samples ``[pos, pos + n)`` of the hop interpolated between the frames in
        ``out.ext`` (feature ``k``, or all): ``onnx_buffers.resample``'s arithmetic per sample,
        walked run by run (``out.ends``: the samples between the same two frames), so that each
        run is a vectorised loop (about 4x faster than reading the frames per sample)."""
        frames = out.frames
        ext = out.ext if k is None else out.ext[:, k : k + 1, :]
        lo, frac, ends = self.arg(out.lo), self.arg(out.frac), self.arg(out.ends)
        (d, (d0, d1, d2)), (e, (e0, e1, e2)) = flat(dst), flat(ext)
        dn, en = self.arg(d), self.arg(e)
        value = _scaled(out, "({m}ra + {m}re1 * {m}rw if {m}rw != 0.0 else {m}ra)")
        return [
            f"for {{m}}rl in range({ext.shape[0]}):",
            f"    for {{m}}rk in range({ext.shape[1]}):",
            f"        {{m}}rd = np.uint64({{m}}rl * {d0} + {{m}}rk * {d1} + {{m}}done * {d2})",
            f"        {{m}}rs = np.uint64({{m}}rl * {e0} + {{m}}rk * {e1})",
            "        {m}rj = {m}pos",
            "        while {m}rj < {m}pos + {m}n:",
            f"            {{m}}rf = np.uint64({lo}[{{m}}rj])",
            f"            {{m}}rend = min({ends}[{{m}}rj], {{m}}pos + {{m}}n)",
            f"            {{m}}re0 = {en}[{_at('{m}rs', '{m}rf', e2)}]",
            f"            {{m}}re1 = {en}[{_at('{m}rs', f'min({{m}}rf + np.uint64(1), np.uint64({frames}))', e2)}]",
            "            for {m}ri in range(np.uint64({m}rj - {m}pos), np.uint64({m}rend - {m}pos)):",
            f"                {{m}}rw = {frac}[np.uint64({{m}}pos) + {{m}}ri]",
            "                {m}ra = {m}re0 * (np.float32(1.0) - {m}rw)",
            f"                {dn}[{_at('{m}rd', '{m}ri', d2)}] = {value}",
            "            {m}rj = {m}rend",
        ]

    def _resample(self, out: TensorOut, view: np.ndarray) -> list[str]:
        """:meth:`advance`, then each sample of the hop between two frames
        (``onnx_buffers.resample``'s arithmetic)."""
        frames, hop = out.frames, out.hop
        assert hop is not None
        ext, lo, frac = self.arg(out.ext), self.arg(out.lo), self.arg(out.frac)
        d, (d0, d1, d2) = flat(hop)
        dn = self.arg(d)
        return self.advance(out, view) + [
            f"for {{m}}l in range({hop.shape[0]}):",
            f"    for {{m}}k in range({hop.shape[1]}):",
            f"        for {{m}}j in range({hop.shape[2]}):",
            f"            {{m}}f = {lo}[{{m}}j]",
            f"            {{m}}e0 = {ext}[{{m}}l, {{m}}k, {{m}}f]",
            f"            {{m}}e1 = {ext}[{{m}}l, {{m}}k, min({{m}}f + 1, {frames})]",
            f"            {{m}}w = {frac}[{{m}}j]",
            "            {m}a = {m}e0 * (np.float32(1.0) - {m}w)",
            f"            {dn}[{{m}}l * {d0} + {{m}}k * {d1} + {{m}}j * {d2}] = {{m}}a + {{m}}e1 * {{m}}w if {{m}}w != 0.0 else {{m}}a",
        ]


def _scaled(out: TensorOut, value: str) -> str:
    """``value`` scaled and offset as ``TensorOut.fill`` does it (float32, in that order)."""
    tm = out.tm
    if tm.scale != 1.0:
        value = f"np.float32({value}) * np.float32({float(tm.scale)!r})"
    if tm.offset:
        value = f"np.float32({value}) + np.float32({float(tm.offset)!r})"
    return value


def renders(out: TensorOut, view: np.ndarray) -> bool:
    """Whether the lines make this output's blocks from its frames (held or interpolated over a
    frame-rate hop), leaving the hop buffer stale (module doc)."""
    return out.resample and compiled(out, view)


def usable(node: OnnxModel, ins: Ports, outs: Ports) -> bool:
    """Whether the node's block can be these lines: bound to the plan's Ports with its own output
    buffers, no worker, float32 samples written straight into a float32 or float16 window with
    no scale or offset (stream rate: not already zero-copy through its own bindings)."""
    if node.map is None or node.worker or node.rate == "block" or not node.direct_in:
        return False
    if node.owned is None or outs is not node._plan_outs or node._gather is not None:
        return False
    if node.rate == "stream" and node._plan_ins is not None:
        return False
    for port, ring, scale, offset in node.ring_in:
        if scale != 1.0 or offset != 0.0 or ring.dtype not in (np.float32, F16) or ins[port].dtype != np.float32:
            return False
    if not all(a.flags.c_contiguous for pair in node.states for a in pair):  # copied as flat bits
        return False
    return all(src.dtype == np.float32 and dst.dtype == np.float32 for dst, src in node.owned_copies)


def compiled(out: TensorOut, view: np.ndarray) -> bool:
    """Whether :meth:`_Lines.unpack` makes this output's unpack (else the escape does, in Python)."""
    plain = out.spread is None and not out.resample
    return view.dtype in CASTS and out.hop is not None and (view.dtype != F16 or plain)


def compiled_control(view: np.ndarray, scale: float, offset: float) -> bool:
    """Whether the lines write this control input (a float tensor, no scale or offset)."""
    return view.dtype in (np.float32, np.float64, F16) and scale == 1.0 and offset == 0.0


def python_control(node: OnnxModel, ins: Ports) -> list[tuple[np.ndarray, np.ndarray, float, float]]:
    """The control inputs the lines do not write (other dtypes, scale or offset): ``(tensor view,
    port, scale, offset)``, written in Python before the run."""
    return [
        (view, ins[port], scale, offset)
        for port, view, scale, offset in node.control_in
        if not compiled_control(view, scale, offset)
    ]


def model_call(node: OnnxModel, ins: Ports, unpacks: list[tuple[TensorOut, np.ndarray]]) -> Callable[[], None]:
    """What the escape runs in Python: the control inputs and unpacks the lines do not make
    (other dtypes, scale or offset), and the model's bindings run."""
    run, bindings = node._run, node.bindings
    control = python_control(node, ins)
    if not control and not unpacks and len(bindings) == 1:
        return functools.partial(run, bindings[0], None)  # the run alone: the cheapest Python call

    def call() -> None:
        for view, src, scale, offset in control:
            write_scaled(view, src, scale, offset)
        for binding in bindings:
            run(binding, None)
        for out, view in unpacks:
            out.unpack(view)

    return call


def escape_kernel(node: OnnxModel, ins: Ports, outs: Ports) -> EscapeKernel | None:
    """The node's block as escaping lines (module doc), or None when :func:`usable` says no."""
    if not usable(node, ins, outs):
        return None
    frame = node.rate == "frame"
    src = _Lines()
    cur = src.arg(node.cursor)
    hop = node.hop if frame else "frames"
    copy_in = [
        line for port, ring, _, _ in node.ring_in for line in src.cast(ring, "{m}wp", ins[port], "{m}done", "{m}n")
    ]
    control = [
        line
        for port, view, scale, offset in node.control_in
        if compiled_control(view, scale, offset)
        for line in src.cast(view, "0", ins[port], "0", "1")
    ]
    # frame rate: the previous call's results from the hop position; stream: this call's, after it
    lazy = {id(out) for out, view in node.lazy if renders(out, view)}
    copy_out: list[str] = []
    unwritten: set[str] = set()
    for (whole_dst, whole_src), (_, out, view, whole_k) in zip(node.owned_copies, node.owned_outs):
        for dst, hop_src, k in read_parts(node, whole_dst, whole_src, out, whole_k, unwritten):
            if id(out) in lazy:
                copy_out += (
                    src.held(dst, out, view if k is None else view[:, k : k + 1, :])
                    if out.spread is not None
                    else src.ramp(dst, out, k)
                )
            elif frame:
                copy_out += src.copy(dst, "{m}done", hop_src, "{m}pos", "{m}n")
            else:
                copy_out += src.copy(dst, "0", hop_src, "0", "frames")
    after = [line for state_in, state_out in node.states for line in src.state(state_in, state_out)]
    for out, view in node.unpacks:
        if id(out) in lazy:
            after += [] if out.spread is not None else src.advance(out, view)
        elif compiled(out, view):
            after += src.unpack(out, view)
    if lazy:
        after.append(f"{cur}[{STALE}] = 1")
    if node.rings:  # the context moves to the front of the window; the next hop is written after it
        c = node.context
        shifts = [src.cast(ring, "0", ring, f"{cur}[{WP}] - {c}", str(c)) for ring in node.rings.values()] if c else []
        after += [line for lines in shifts for line in lines]
        after.append(f"{cur}[{WP}] = {c}")
    python = [(out, view) for out, view in node.unpacks if not compiled(out, view)]
    if python:  # the escape unpacks these in Python, with compiled helpers
        node.warm()
    resume = after + ([] if frame else copy_out)
    capi = node.c_session() if not python and not python_control(node, ins) else None
    if capi is not None:  # the run alone, made here
        run = c_run(src, capi, len(node.bindings)) + resume
        head: list[str] = []
        call = capi.failure
    else:  # escape for the call, and resume after it
        run = [f"{cur}[{CALLED}] = 1", "{escape}"]
        head = [f"if {cur}[{CALLED}] != 0:", f"    {cur}[{CALLED}] = 0", *("    " + line for line in resume)]
        call = model_call(node, ins, python)
    lines = [
        *head,
        f"while {cur}[{DONE}] < frames:",
        f"    {{m}}done = {cur}[{DONE}]",
        f"    {{m}}pos = {cur}[{POS}]",
        f"    {{m}}wp = {cur}[{WP}]",
        f"    {{m}}n = min({hop} - {{m}}pos, frames - {{m}}done)",
        *("    " + line for line in copy_in + (copy_out if frame else [])),
        f"    {cur}[{POS}] = {{m}}pos + {{m}}n",
        f"    {cur}[{WP}] = {{m}}wp + {{m}}n",
        f"    {cur}[{DONE}] = {{m}}done + {{m}}n",
        f"    if {{m}}pos + {{m}}n == {hop}:",
        f"        {cur}[{POS}] = 0",
        *("        " + line for line in control + run),
        f"{cur}[{DONE}] = 0",
    ]
    return EscapeKernel(tuple(lines), tuple(src.args), call, (half_bits, float_bits, run_binding), frozenset(unwritten))


def read_parts(
    node: OnnxModel, dst: np.ndarray, hop_src: np.ndarray, out: TensorOut, k: int | None, unwritten: set[str]
) -> list[tuple[np.ndarray, np.ndarray, int | None]]:
    """One owned copy (a port, or with ``k`` None every port of the tensor as axis 1) cut to the
    ports some connection reads (``node.read_outputs``): the whole copy, one part per read port,
    or none. The ports left out are added to ``unwritten``: nothing reads them, and a tap on one
    runs the node's ``process``, which writes them all."""
    read = node.read_outputs
    ports = out.tm.ports()
    if k is not None:
        ports = [(p, f) for p, f in ports if f == k]
    kept = [(i, p, f) for i, (p, f) in enumerate(ports) if read is None or p in read]
    unwritten.update(p for p, _ in ports if read is not None and p not in read)
    if k is not None or len(kept) == len(ports):
        return [(dst, hop_src, k)] if kept else []
    return [(dst[:, i : i + 1, :], hop_src[:, i : i + 1, :], f) for i, _, f in kept]


def runs_kernel(node: OnnxModel, ins: Ports, outs: Ports) -> EscapeKernel | None:
    """A block-rate model whose block is its runs alone (every tensor a port's array, bound in
    place: ``OnnxModel.bind``) as lines that make them through its C API session over those
    arrays; None where ``process`` does more, or without a C session."""
    if node._runs_only is None or ins is not node._plan_ins or outs is not node._plan_outs:
        return None
    capi = node.c_session()
    if capi is None:
        return None
    src = _Lines()
    lines = c_run(src, capi, len(node._runs_only))
    return EscapeKernel(tuple(lines), tuple(src.args), capi.failure, (half_bits, float_bits, run_binding))


def c_run(src: _Lines, capi: CSession, bindings: int) -> list[str]:
    """The model's runs through onnxruntime's C API (``{f2}``: :func:`onnx_capi.run_binding`), one
    per binding; a failed run stores its status and escapes to :meth:`CSession.failure`, which
    makes it the node's fault. ``status[1]`` counts the calls made here."""
    table, status = src.arg(capi.table), src.arg(capi.status)
    return [
        f"for {{m}}b in range({bindings}):",
        f"    {{m}}st = {{f2}}({table}, {{m}}b)",
        "    if {m}st != 0:",
        f"        {status}[0] = {{m}}st",
        "        {escape}",
        f"{status}[1] += 1",
    ]
