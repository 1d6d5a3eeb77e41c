"""The memory a plan will need, estimated before anything is allocated, and the budget check.

The compiler calls :func:`check_memory` after it has built the node instances (cheap: parameters
only) and before it prepares any of them. The estimate is an upper bound on the signal buffers
(every output and every input buffer of every node, as if none were shared; the real slab reuses
buffers) plus what each node declares through :meth:`~neuralgraph._nodes.node.Node.memory_bytes`
(delay lines, tables, model buffers). A patch over the budget raises :class:`CompileError` NG127
naming the biggest consumers, instead of a ``MemoryError`` (or the system's OOM killer) later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

from neuralgraph._errors import CompileError, Problem
from neuralgraph._nodes.node import Node
from neuralgraph._nodes.ports import Rate

if TYPE_CHECKING:
    from neuralgraph._patch.patch import Patch

FLOAT32 = 4
#: consumers named in an NG127 message
SHOWN = 3
BUDGET_HINT = (
    "raise the budget on purpose: memory_budget_mb in [limits] of config.toml, "
    "NEURALGRAPH_MEMORY_BUDGET_MB, --memory-budget-mb, or load_patch(..., memory_budget_mb=N)"
)


@attrs.frozen
class Consumer:
    """One node's share of the estimate: its signal buffers and its own state."""

    node: str
    type: str
    lanes: int
    buffers: int
    state: int

    @property
    def total(self) -> int:
        return self.buffers + self.state


def format_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``; binary units, as the budget is given in MiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def estimate(patch: Patch, nodes: Mapping[str, Node], sample_rate: float, block_size: int) -> list[Consumer]:
    """Every node's estimated bytes, largest first."""
    topology = patch.topology
    out: list[Consumer] = []
    for name, node in nodes.items():
        lanes = topology.lanes[name]
        buffers = 0
        for port, decl in node.outputs().items():
            if decl.rate is not Rate.EVENTS:
                width = 1 if decl.rate is Rate.CONTROL else block_size
                buffers += topology.output_lanes[name].get(port, lanes) * width * FLOAT32
        for decl in node.inputs().values():
            if decl.rate is not Rate.EVENTS:  # a constant buffer or a mix step's output
                buffers += lanes * (1 if decl.rate is Rate.CONTROL else block_size) * FLOAT32
        try:
            state = int(node.memory_bytes(sample_rate, block_size, lanes))
        except Exception:  # an estimate must never fail a patch; prepare reports real faults
            state = 0
        shown_lanes = max([lanes, *topology.output_lanes[name].values()])
        out.append(Consumer(name, patch.spec.nodes[name].type, shown_lanes, buffers, max(0, state)))
    out.sort(key=lambda c: c.total, reverse=True)
    return out


def check_memory(patch: Patch, nodes: Mapping[str, Node], sample_rate: float, block_size: int) -> int:
    """The estimated bytes; raises :class:`CompileError` NG127 when over ``patch.limits``."""
    consumers = estimate(patch, nodes, sample_rate, block_size)
    total = sum(c.total for c in consumers)
    budget = patch.limits.memory_budget_bytes
    if total <= budget:
        return total
    top = consumers[0]
    biggest = "; ".join(
        f"nodes.{c.node} ({c.type}, {c.lanes} lane{'s' if c.lanes != 1 else ''}) {format_bytes(c.total)}"
        for c in consumers[:SHOWN]
    )
    loc = patch.spec.nodes[top.node].loc
    message = (
        f"the plan needs about {format_bytes(total)} at {sample_rate:g} Hz, block {block_size}, "
        f"more than the memory budget of {patch.limits.memory_budget_mb} MiB; biggest: {biggest}"
    )
    hint = f"shorten delays, use fewer voices or a lower sample rate, or {BUDGET_HINT}"
    raise CompileError([Problem("NG127", message, loc.file, loc.line, loc.col, f"nodes.{top.node}", total, hint)])
