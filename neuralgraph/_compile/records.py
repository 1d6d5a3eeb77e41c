"""One record per compiled step: what the compiler emitted, fusion regrouped and the plan runs.

The compiler makes one :class:`StepRecord` per node and per step it emits (mix, delay, feedback
copy), fusion replaces a run of them by one record whose ``members`` are the records it ran,
and the plan, the profiler and ``neuralgraph check`` read the same records: no parallel lists
of steps, names, bypasses and nodes to keep in step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from neuralgraph._nodes.node import Node, Ports

#: A step's ``process(ins, outs, frames)``.
Process = Callable[[Ports, Ports, int], None]

#: What a record runs: a patch node, or a step the compiler emitted, or a fused run of either.
KINDS = ("node", "mix", "delay", "feedback", "fused")


@attrs.define(eq=False)
class StepRecord:
    """One step of a plan.

    ``process`` runs it; ``bypass`` replaces it after a fault (silence, or the first input for a
    ``thru`` node; a fused run contains its members' faults itself, so there it is ``process``).
    ``kernel_source`` is what fusion asks for a compiled kernel (the node, or the mix step);
    ``state`` is the compiler-emitted object that carries state from block to block (reset and
    snapshots), if any.
    """

    name: str
    kind: str
    process: Process
    ins: Ports
    outs: Ports
    bypass: Process
    node: Node | None = None
    kernel_source: Any = None
    state: Any = None
    members: tuple[StepRecord, ...] = ()

    @property
    def label(self) -> str:
        """The node type for a node, else the kind (``fused``, or ``compiler`` for emitted steps)."""
        if self.node is not None:
            return self.node.type_name
        return "fused" if self.kind == "fused" else "compiler"

    @property
    def states(self) -> tuple[Any, ...]:
        """The stateful objects of this step, members first (the order in which they reset)."""
        own = () if self.state is None else (self.state,)
        return tuple(s for m in self.members for s in m.states) + own
