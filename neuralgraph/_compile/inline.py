"""Steps written as source lines inside a fused function instead of called as kernels.

A node offers a compiled kernel (a module-level numba function) for fusion; a compiler step has
no fixed signature to compile once (a mix has any number of terms, each with its own mapping,
ramp or broadcast), so it offers :class:`Inline` source instead: the fused function's generator
(``fusion.generate``) pastes the lines in, with the step's arrays and scalars substituted. An
n-term fan-in then costs one pass over the block with n loads per sample, not n-1 passes
through memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np


@attrs.frozen(eq=False)
class Inline:
    """Source lines a step offers instead of a kernel.

    ``lines`` are ``str.format`` templates at function-body level: ``{k}`` is argument ``k``
    (an array, by its name in the generated function; a scalar, as a literal) and ``{m}`` a
    prefix unique to the member, for its local names (numba gives one type to a name in a
    function, so two members must never share one).
    """

    lines: tuple[str, ...]
    args: tuple[Any, ...]


def flat(view: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The memory under a 2-D view as one contiguous 1-D array, and the view's element strides.

    A broadcast (zero stride) or a column slice is not contiguous, so it cannot be rebuilt from
    its address and shape; the memory it spans can, and the strides index it.
    """
    item = view.itemsize
    s0, s1 = (s // item for s in view.strides)
    extent = (view.shape[0] - 1) * s0 + (view.shape[1] - 1) * s1 + 1
    memory = np.lib.stride_tricks.as_strided(view, shape=(extent,), strides=(item,), writeable=False)
    return memory, s0, s1


def _index(s0: int, s1: int, lane: str, frame: str) -> str:
    parts = [f"{lane} * {s0}" if s0 else "", f"{frame} * {s1}" if s1 else ""]
    return " + ".join(p for p in parts if p) or "0"


def _f32(value: float) -> np.float32:
    return np.float32(value)


def mix_inline(
    terms: Sequence[Any],
    constant: np.float32,
    ramp_state: Sequence[np.ndarray | None],
    ramp_basis: np.ndarray,
    out: np.ndarray,
    copy_only: bool,
) -> Inline | None:
    """A mix step (``steps.MixStep``) as source: ``out = constant + Σ map(term)``, one pass.

    The same float32 operations in the same order as the step's numpy code, term by term, so the
    sum is bit for bit the unfused one; a ramp (``[delta, previous] @ [ramp; ones]`` unfused) and
    an exp curve (numpy's vectorised ``exp`` against LLVM's) may differ in the last bit.
    None when a term is neither the output's shape nor a control-to-audio ramp.
    """
    lanes, width = out.shape
    args: list[Any] = [out]

    def arg(value: Any) -> str:
        args.append(value)
        return "{%d}" % (len(args) - 1)

    prelude: list[str] = []  # per lane, before the frame loop: ramp steps
    inner: list[str] = []  # per frame
    if not copy_only:
        inner.append(f"{{m}}acc = {arg(_f32(constant))}")
    for k, term in enumerate(terms):
        view = term.view
        memory, s0, s1 = flat(view)
        src = arg(memory)
        if term.ramp:
            state = ramp_state[k]
            if state is None or view.shape != (lanes, 1):
                return None
            rs, basis = arg(state), arg(ramp_basis[0])
            prelude += [
                f"    {{m}}p{k} = {rs}[{{m}}l, 1] + {rs}[{{m}}l, 0]",
                f"    {rs}[{{m}}l, 1] = {{m}}p{k}",
                f"    {{m}}d{k} = {src}[{_index(s0, 0, '{m}l', '')}] - {{m}}p{k}",
                f"    {rs}[{{m}}l, 0] = {{m}}d{k}",
            ]
            inner.append(f"{{m}}v = {{m}}d{k} * {basis}[{{m}}i] + {{m}}p{k}")
        elif view.shape == out.shape:
            inner.append(f"{{m}}v = {src}[{_index(s0, s1, '{m}l', '{m}i')}]")
        else:
            return None
        if copy_only:
            inner.append("{0}[{m}l, {m}i] = {m}v")
            break
        if term.scale != 1.0 or term.offset != 0.0:
            inner.append(f"{{m}}v = {{m}}v * {arg(_f32(term.scale))} + {arg(_f32(term.offset))}")
        if term.exp and term.clamp is not None:
            lo, hi = arg(_f32(term.clamp[0])), arg(_f32(term.clamp[1]))
            inner += [
                f"{{m}}v = {lo} if {{m}}v < {lo} else {{m}}v",
                f"{{m}}v = {hi} if {{m}}v > {hi} else {{m}}v",
                "{m}v = np.exp({m}v)",
            ]
        inner.append("{m}acc = {m}acc + {m}v")
    if not copy_only:
        inner.append("{0}[{m}l, {m}i] = {m}acc")
    lines = [
        f"for {{m}}l in range({lanes}):",
        *prelude,
        f"    for {{m}}i in range({width}):",
        *("        " + line for line in inner),
    ]
    return Inline(tuple(lines), tuple(args))
