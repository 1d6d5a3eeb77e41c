"""Independent calls of one kernel inside a fused run, handed to the kernel's lanes form side by side.

A patch written one node per voice (8 saws into 8 lowpasses, each its own node) runs each filter
as its own call, a serial per-sample recursion, one after the other: nothing overlaps. The same
patch written as lanes of one node runs one multi-lane kernel, which interleaves its lanes so
that their serial chains overlap. A kernel offers that for separate calls by carrying a ``lanes``
attribute: ``lanes(calls)`` takes the bound argument tuples of up to :data:`LANES` calls of that
kernel (or its ``lanes_most`` attribute's count, when it has one), no data path between them, and returns one ``(dispatcher, args)`` member doing all of
them (same samples, bit for bit), or None when it cannot run them so (the kernel's own rule: lane
count, settings).

Two passes, both only when a plan is fused:

- :func:`schedule`, before buffers are coloured: inside each stretch of compiled steps, the steps
  whose kernel offers a lanes form are ordered in groups of up to :data:`LANES` of one kind
  (kernel, settings and shapes) that do not depend on each other, next to each other; every
  other step keeps its order. ``ends`` tells the colouring which steps form a group: a buffer
  read inside a group is reused only after the group's last step (the group runs as one call, so
  its members' reads and writes overlap in time).
- :func:`laned`, on a fused run's members: adjacent calls of one kernel with a lanes form, where
  no array one call writes is touched by another, are handed to it; its member takes the
  group's first position and an empty member (``chains.EMPTY``) the others, so the list stays
  aligned with the run's nodes (faults are named and the profile build clocks each node, as for
  a chain).
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from neuralgraph._compile.chains import EMPTY
from neuralgraph._nodes.node import Node, Ports

#: The most calls handed to a lanes form at once, unless its kernel says otherwise with a
#: ``lanes_most`` attribute (the SVF's runs eight filters as one vector of eight float64 lanes).
LANES = 4


class Step(Protocol):
    """What :func:`schedule` reads of a compiler step: its kind, node, and what it reads and writes."""

    kind: str
    node: Node | None
    reads: dict[str, Any]
    writes: dict[str, Any]


def _lanes_form(member: Any) -> tuple[Any, Callable[[list[tuple[Any, ...]]], Any]] | None:
    if not isinstance(member, tuple):  # source lines (Inline) or a call out to Python (EscapeKernel)
        return None
    form = getattr(member[0], "lanes", None)
    return (member[0], form) if callable(form) else None


def most(kernel: Any) -> int:
    """The most calls of ``kernel`` its lanes form takes at once (its ``lanes_most``, else :data:`LANES`)."""
    count = getattr(kernel, "lanes_most", LANES)
    return count if isinstance(count, int) and count >= 2 else LANES


def _extents(args: Sequence[Any]) -> np.ndarray:
    """The byte range each array of a call spans, and whether the call may write it: rows of
    (first byte, past the last byte, writeable), what ``np.may_share_memory`` compares."""
    rows = []
    for a in args:
        if isinstance(a, np.ndarray) and a.size:
            start = a.__array_interface__["data"][0]
            if a.flags.c_contiguous:  # every array of a fused member
                rows.append((start, start + a.nbytes, a.flags.writeable))
                continue
            low = sum(min(0, (n - 1) * k) for n, k in zip(a.shape, a.strides))
            high = sum(max(0, (n - 1) * k) for n, k in zip(a.shape, a.strides)) + a.itemsize
            rows.append((start + low, start + high, a.flags.writeable))
    return np.array(rows, np.int64).reshape(-1, 3)


def _apart(call: np.ndarray, earlier: np.ndarray) -> bool:
    """No array of ``call`` shares memory with one of ``earlier`` (extents) where either writes it."""
    first, past, writes = call[:, :1], call[:, 1:2], call[:, 2:] != 0
    overlap = (earlier[:, 0] < past) & (first < earlier[:, 1]) & ((earlier[:, 2] != 0) | writes)
    return not overlap.any()


def laned(members: Sequence[Any]) -> list[Any]:
    """``members`` with every adjacent group of calls to one kernel's lanes form replaced by its member."""
    out = list(members)
    i = 0
    while i < len(members):
        found = _lanes_form(members[i])
        j = i + 1
        if found is not None:
            taken = _extents(members[i][1])
            while (
                j < len(members)
                and j - i < most(found[0])
                and isinstance(members[j], tuple)
                and members[j][0] is found[0]
                and _apart(extents := _extents(members[j][1]), taken)
            ):
                taken = np.concatenate([taken, extents])
                j += 1
        if found is not None and j - i > 1:
            try:
                member = found[1]([m[1] for m in members[i:j]])
            except Exception:  # a plugin's lanes rule must not break compilation: the calls stay separate
                member = None
            if member is not None:
                out[i:j] = [member] + [EMPTY] * (j - i - 1)
                i = j
                continue
        i += 1
    return out


# ---- ordering ----------------------------------------------------------------------------------


def _compiled(step: Step) -> bool:
    """A step that fusion can take: a mix, or a node whose type offers a kernel."""
    return step.kind == "mix" or (step.kind == "node" and type(step.node).kernel is not Node.kernel)


def _touched(items: Any) -> list[int]:
    """The identities of the buffers behind a step's reads or writes (a mix term is a tuple)."""
    return [id(item[0] if isinstance(item, tuple) else item) for item in items]


def _placeholder(item: Any, shared: dict[tuple[Any, ...], np.ndarray], writeable: bool) -> Any:
    """An array shaped as ``item``'s buffer will be (a signal, or a mix term of one), for a probe."""
    if isinstance(item, tuple):
        item = item[0]
    if not (hasattr(item, "lanes") and hasattr(item, "width")):
        return item  # an event buffer or a constant's own array: as bound
    key = (item.lanes, item.width, writeable)
    if key not in shared:
        shared[key] = np.zeros((item.lanes, item.width), np.float32)
        shared[key].flags.writeable = writeable
    return shared[key]


def _lane_key(step: Step, probed: dict[Any, bool], shared: dict[tuple[Any, ...], np.ndarray]) -> tuple[Any, ...] | None:
    """What a node step's kernel would be (its dispatcher, scalars, array shapes) when that kernel
    offers a lanes form, else None. Asked, of a type that says it may offer one
    (``Node.side_by_side``), with placeholder arrays before buffers exist; a node
    type whose first probe at a lane count offers none is not asked again at that count."""
    node = step.node
    if step.kind != "node" or node is None or not type(node).side_by_side or not _compiled(step):
        return None
    kind = (type(node), tuple(getattr(w, "lanes", 0) for w in step.writes.values()))
    if probed.get(kind) is False:
        return None
    try:
        ins = Ports({p: _placeholder(v, shared, False) for p, v in step.reads.items()})
        offered = node.kernel(ins, Ports({p: _placeholder(v, shared, True) for p, v in step.writes.items()}))
    except Exception:  # a plugin's kernel hook must not break compilation
        return None
    found = _lanes_form(offered)
    probed.setdefault(kind, found is not None)
    if found is None or offered is None:
        return None
    bound = [(a.shape, a.dtype.str) if isinstance(a, np.ndarray) else a for a in offered[1]]
    key = (id(found[0]), most(found[0]), *bound)
    try:
        hash(key)
    except TypeError:  # an unhashable scalar: not grouped
        return None
    return key


def _dependencies(steps: Sequence[Step]) -> tuple[list[list[int]], list[int]]:
    """Per step, the later steps that must follow it (they read what it writes, or write what it
    reads or writes), and how many earlier steps each one waits for."""
    after: list[list[int]] = [[] for _ in steps]
    waits = [0] * len(steps)
    writer: dict[int, int] = {}
    readers: dict[int, list[int]] = defaultdict(list)
    for j, step in enumerate(steps):
        reads, writes = _touched(step.reads.values()), _touched(step.writes.values())
        before = {writer[o] for o in reads + writes if o in writer}
        for o in writes:
            before.update(readers.pop(o, ()))
        for o in reads:
            readers[o].append(j)
        for o in writes:
            writer[o] = j
        before.discard(j)
        for i in before:
            after[i].append(j)
        waits[j] = len(before)
    return after, waits


class _Segment:
    """List scheduling of one stretch of compiled steps: the earliest ready step (in the original
    order) runs next, except a keyed step that waits while fewer of its kind are ready than can
    still come (at most its kernel's :func:`most`, the key's second item) and something else can
    run; a keyed step that runs takes the other ready steps of its kind with it, up to that count."""

    def __init__(self, steps: Sequence[Step], keys: Sequence[tuple[Any, ...] | None]) -> None:
        self.keys = keys
        self.after, self.waits = _dependencies(steps)
        self.left = Counter(k for k in keys if k is not None)  # not placed yet, per kind
        self.ready_count: Counter[tuple[Any, ...]] = Counter()
        self.ready: list[int] = []
        self.ready_of: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        self.placed = [False] * len(steps)
        self.order: list[int] = []
        self.groups: list[int] = []  # per placed step, the size of the group it ends (0 inside one)
        for i, w in enumerate(self.waits):
            if w == 0:
                self._push(i)

    def _push(self, i: int) -> None:
        heapq.heappush(self.ready, i)
        key = self.keys[i]
        if key is not None:
            heapq.heappush(self.ready_of[key], i)
            self.ready_count[key] += 1

    def _place(self, i: int) -> None:
        self.placed[i] = True
        self.order.append(i)
        key = self.keys[i]
        if key is not None:
            self.ready_count[key] -= 1
            self.left[key] -= 1
        for j in self.after[i]:
            self.waits[j] -= 1
            if self.waits[j] == 0:
                self._push(j)

    def _waits(self, i: int) -> bool:
        key = self.keys[i]
        return key is not None and self.ready_count[key] < min(key[1], self.left[key])

    def _next(self) -> int:
        held: list[int] = []
        chosen = -1
        while self.ready:
            i = heapq.heappop(self.ready)
            if self.placed[i]:
                continue
            if not self._waits(i):
                chosen = i
                break
            held.append(i)
        if chosen < 0:  # everything ready waits for more of its kind: the earliest runs as it is
            chosen = held.pop(0)
        for i in held:
            heapq.heappush(self.ready, i)
        return chosen

    def run(self) -> tuple[list[int], list[int]]:
        """The new order (indices into the stretch) and, per position, its group's size or 0."""
        while len(self.order) < len(self.placed):
            i = self._next()
            key = self.keys[i]
            group = [i]
            if key is not None:
                group = []
                while self.ready_of[key] and len(group) < key[1]:
                    j = heapq.heappop(self.ready_of[key])
                    if not self.placed[j]:
                        group.append(j)
            for j in group:  # picked first, then placed: a step that depends on one is not in it
                self._place(j)
            self.groups += [0] * (len(group) - 1) + [len(group)]
        return self.order, self.groups


def schedule(steps: Sequence[Step]) -> tuple[list[Any], list[int]]:
    """``steps`` in the order that puts groups for a lanes form together, and per position the
    position of the last step of its group (its own for a step alone): see the module doc.

    Only steps fusion can take move, and only among their neighbours that fusion can take: any
    other step (a node without a kernel, a delay, a feedback copy) stays where it is, and nothing
    crosses it. ``steps`` come back unchanged when no kind has two steps.
    """
    probed: dict[Any, bool] = {}
    shared: dict[tuple[Any, ...], np.ndarray] = {}
    keys = [_lane_key(s, probed, shared) for s in steps]
    if all(n < 2 for n in Counter(k for k in keys if k is not None).values()):
        return list(steps), list(range(len(steps)))
    order: list[Any] = []
    ends: list[int] = []
    start = 0
    while start < len(steps):
        stop = start
        while stop < len(steps) and _compiled(steps[stop]):
            stop += 1
        if stop == start:  # a step that stays: alone
            order.append(steps[start])
            ends.append(len(ends))
            start += 1
            continue
        placed, groups = _Segment(steps[start:stop], keys[start:stop]).run()
        for i, size in zip(placed, groups):
            order.append(steps[start + i])
            ends.append(len(ends))
            if size > 1:
                ends[-size:] = [len(ends) - 1] * size
        start = stop
    return order, ends
