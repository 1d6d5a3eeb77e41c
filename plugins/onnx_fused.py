"""``onnx.model``'s per-block copies as source lines for a fused run, escaping for each model call.

At frame rate most blocks make no call: they copy their samples into the window bound to the
model and the held results out to the ports. :func:`escape_kernel` writes that as compiled lines
(an :class:`~neuralgraph.plugin.EscapeKernel`): a block with no call due never enters Python;
where the hop fills, the lines save their place in the node's cursor and escape, the fused step
makes the call in Python (``OnnxModel._call``: the run, state feedback, outputs, the context
shift) and re-enters the lines, which finish the block. At stream rate the same lines copy the
block in, escape for the call, and copy the results out. The copies are exactly the node's
``process`` copies (float32 to float32, same order), so the stream is bit for bit the same.

The cursor (int64): ``[pos, wp, done, called]``: the position in the hop, the write position in
the window, the samples of this block already handled, and whether the call was just made. The
last two are 0 between blocks, so ``process`` and these lines can take turns.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from neuralgraph.plugin import EscapeKernel, Ports

if TYPE_CHECKING:
    from .onnx_model import OnnxModel

POS, WP, DONE, CALLED = range(4)


def flat(view: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The memory under a (lanes, [K,] T) float32 view as one contiguous 1-D array from its first
    element, and the view's element strides as 3 (a broadcast axis has stride 0)."""
    if view.ndim == 2:
        view = view[:, None, :]
    item = view.itemsize
    strides = tuple(s // item for s in view.strides)
    extent = sum((n - 1) * s for n, s in zip(view.shape, strides)) + 1
    memory = np.lib.stride_tricks.as_strided(view, shape=(extent,), strides=(item,))
    return memory, strides  # type: ignore[return-value]


class _Source:
    """Collects the lines' arguments: ``arg(x)`` is the template text naming ``x``."""

    def __init__(self) -> None:
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return "{%d}" % (len(self.args) - 1)

    def copy(self, dst: np.ndarray, dst_at: str, src: np.ndarray, src_at: str, n: str) -> list[str]:
        """Lines copying ``n`` samples of every lane and feature: ``dst[..., dst_at + i] =
        src[..., src_at + i]``."""
        (d, (d0, d1, d2)), (s, (s0, s1, s2)) = flat(dst), flat(src)
        dn, sn = self.arg(d), self.arg(s)
        lanes, feats = dst.shape[0], 1 if dst.ndim == 2 else dst.shape[1]
        return [
            f"for {{m}}l in range({lanes}):",
            f"    for {{m}}k in range({feats}):",
            f"        {{m}}d = {{m}}l * {d0} + {{m}}k * {d1} + ({dst_at}) * {d2}",
            f"        {{m}}s = {{m}}l * {s0} + {{m}}k * {s1} + ({src_at}) * {s2}",
            f"        for {{m}}i in range({n}):",
            f"            {dn}[{{m}}d + {{m}}i * {d2}] = {sn}[{{m}}s + {{m}}i * {s2}]",
        ]


def usable(node: OnnxModel, ins: Ports, outs: Ports) -> bool:
    """Whether the node's block can be these lines: bound to the plan's Ports with its own output
    buffers, no worker, samples written straight into the bound window, float32 throughout and
    no scale or offset on the way in (the lines copy; the casts stay in ``process``)."""
    if node.map is None or node.worker or node.rate == "block" or not node.direct_in:
        return False
    if node.owned is None or outs is not node._plan_outs or node._gather is not None:
        return False
    if node.rate == "stream" and node._plan_ins is not None:  # already zero-copy through its own bindings
        return False
    for port, ring, scale, offset in node.ring_in:
        if scale != 1.0 or offset != 0.0 or ring.dtype != np.float32 or ins[port].dtype != np.float32:
            return False
    return all(src.dtype == np.float32 and dst.dtype == np.float32 for dst, src in node.owned_copies)


def escape_kernel(node: OnnxModel, ins: Ports, outs: Ports) -> EscapeKernel | None:
    """The node's block as escaping lines (module doc), or None when :func:`usable` says no."""
    if not usable(node, ins, outs):
        return None
    src = _Source()
    cur = src.arg(node.cursor)
    hop = node.hop if node.rate == "frame" else "frames"
    copy_in = [
        line for port, ring, _, _ in node.ring_in for line in src.copy(ring, "{m}wp", ins[port], "{m}done", "{m}n")
    ]
    # frame rate: the previous call's results, from the hop position; stream: this call's, after it
    copy_out = [
        line
        for dst, out in node.owned_copies
        for line in src.copy(
            dst,
            "{m}done" if node.rate == "frame" else "0",
            out,
            "{m}pos" if node.rate == "frame" else "0",
            "{m}n" if node.rate == "frame" else "frames",
        )
    ]
    after_call = [] if node.rate == "frame" else copy_out
    lines = [
        f"if {cur}[{CALLED}] != 0:",
        f"    {cur}[{CALLED}] = 0",
        *("    " + line for line in after_call),
        "    pass",
        f"while {cur}[{DONE}] < frames:",
        f"    {{m}}done = {cur}[{DONE}]",
        f"    {{m}}pos = {cur}[{POS}]",
        f"    {{m}}wp = {cur}[{WP}]",
        f"    {{m}}n = min({hop} - {{m}}pos, frames - {{m}}done)",
        *("    " + line for line in copy_in),
        *("    " + line for line in (copy_out if node.rate == "frame" else [])),
        f"    {cur}[{POS}] = {{m}}pos + {{m}}n",
        f"    {cur}[{WP}] = {{m}}wp + {{m}}n",
        f"    {cur}[{DONE}] = {{m}}done + {{m}}n",
        f"    if {{m}}pos + {{m}}n == {hop}:",
        f"        {cur}[{POS}] = 0",
        f"        {cur}[{CALLED}] = 1",
        "        {escape}",
        f"{cur}[{DONE}] = 0",
    ]
    return EscapeKernel(tuple(lines), tuple(src.args), functools.partial(node._call, ins))
