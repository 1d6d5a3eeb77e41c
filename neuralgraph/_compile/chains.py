"""Series chains inside a fused run: consecutive calls of one kernel handed to the kernel's own chain form.

A run fused by ``fusion`` calls its members' kernels one after another, each a pass over the
block. A kernel whose per-sample recursion is latency-bound (a biquad) gains when the calls of a
series chain run together, sample by sample, so that the CPU overlaps their serial chains. A
kernel offers that by carrying a ``chain`` attribute: ``chain(calls)`` takes the bound argument
tuples of consecutive calls of that kernel and returns one ``(dispatcher, args)`` member doing all
of them, or None when they do not form a chain it can run (the kernel's own rule).

:func:`chained` finds the maximal linked runs (every neighbouring pair accepted by ``chain``),
puts the chain's member at the run's first position and an empty member at the others, so the
list stays aligned with the fused run's nodes: a fault is still reported at the first node, and
the members after it still run unfused. The profile build keeps the separate calls (its clock
reads between members are what name a node's cost).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from neuralgraph._compile.inline import Inline

#: A member that does nothing: the positions a chain's member took over.
EMPTY = Inline((), ())


def _chain_of(member: Any) -> tuple[Any, Callable[[list[tuple[Any, ...]]], Any]] | None:
    if not isinstance(member, tuple):  # source lines (Inline) or a call out to Python (EscapeKernel)
        return None
    dispatcher = member[0]
    chain = getattr(dispatcher, "chain", None)
    return (dispatcher, chain) if callable(chain) else None


def _links(members: Sequence[Any], k: int) -> bool:
    """Members ``k`` and ``k + 1`` are calls of one chainable kernel that its ``chain`` accepts."""
    a, b = _chain_of(members[k]), _chain_of(members[k + 1])
    if a is None or b is None or a[0] is not b[0]:
        return False
    try:
        return a[1]([members[k][1], members[k + 1][1]]) is not None
    except Exception:  # a plugin's chain rule must not break compilation: the calls stay separate
        return False


def chained(members: Sequence[Any]) -> list[Any]:
    """``members`` with every linked run of two or more replaced by its chain's one member."""
    out = list(members)
    i = 0
    while i < len(members):
        j = i
        while j + 1 < len(members) and _links(members, j):
            j += 1
        if j > i:
            found = _chain_of(members[i])
            assert found is not None
            try:
                member = found[1]([m[1] for m in members[i : j + 1]])
            except Exception:
                member = None
            if member is not None:
                out[i : j + 1] = [member] + [EMPTY] * (j - i)
        i = j + 1
    return out
