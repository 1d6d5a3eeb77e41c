"""Turn a checked :class:`~neuralgraph._patch.patch.Patch` into a :class:`~neuralgraph._compile.plan.Plan`.

1. make a fresh instance of every node, estimate the memory the plan needs (signal buffers and
   what each node's ``memory_bytes`` declares) and refuse it over the budget (NG127) before
   anything is allocated; then prepare every node for the sample rate and block size;
2. work out each node's path latency and emit delay steps on the shorter parallel paths;
3. emit a mix step for each input that sums, maps or converts the rate of its sources;
4. colour buffers: walk the steps in order, give each output a buffer from a free list and
   return it when its last reader has run (SuperCollider's wire-buffer colouring), then carve
   every buffer out of one float32 slab; a fused plan first puts steps that can run side by
   side next to each other, and a buffer read in such a group is returned after it (``lanes.py``);
5. bind read-only input views and output views for every step;
6. fuse runs of consecutive nodes that offer a compiled kernel into one step (``fusion.py``).

Steps 5 and 6 produce one :class:`~neuralgraph._compile.records.StepRecord` per step, which the
plan, the profiler and ``neuralgraph check`` read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from neuralgraph._compile.fusion import fuse_steps
from neuralgraph._compile.lanes import schedule
from neuralgraph._compile.memory import check_memory
from neuralgraph._compile.plan import Plan
from neuralgraph._compile.records import StepRecord
from neuralgraph._compile.steps import (
    BypassStep,
    ControlDelayStep,
    CopyStep,
    DelayStep,
    MixStep,
    Term,
    mapping_coefficients,
)
from neuralgraph._errors import CompileError, Problem
from neuralgraph._nodes.events import EventBuffer
from neuralgraph._nodes.gcpause import gc_paused
from neuralgraph._nodes.node import Node, Ports, PrepareContext
from neuralgraph._nodes.ports import Input, Rate
from neuralgraph._patch.graph import Edge
from neuralgraph._patch.model_probe import budget as model_budget
from neuralgraph._patch.patch import Patch


@attrs.define(eq=False)
class Signal:
    """A buffer-to-be: shape, readers still to run, and whether it outlives the block."""

    lanes: int
    width: int
    pinned: bool = False
    readers: int = 0
    buffer: np.ndarray | None = None
    index: int = -1
    owned: bool = False  # the node's own array (Node.output_buffers), not a slab slot


@attrs.define(eq=False)
class ProtoStep:
    """A step before buffers are assigned: what it reads and writes, by signal."""

    name: str
    kind: str  #: one of records.KINDS
    process: Any
    reads: dict[str, Signal | tuple[Signal, int, int, str] | EventBuffer | np.ndarray]
    writes: dict[str, Signal | EventBuffer]
    node: Node | None = None
    mix: MixStep | None = None
    state: Any = None  #: the emitted step object that carries state (mix, delay)


@attrs.frozen(eq=False)
class ConstantInput:
    """An unconnected signal input: its persistent buffer, which the engine ramps (its
    :class:`~neuralgraph._runtime.targets.InputRamp` keeps the ramp), and its initial value."""

    node: str
    port: str
    decl: Input
    buffer: np.ndarray
    value: float


def _rate_width(rate: Rate, block_size: int) -> int:
    return 1 if rate is Rate.CONTROL else block_size


class Compiler:
    def __init__(self, patch: Patch, sample_rate: float, block_size: int, pin: tuple[str, ...] = ()) -> None:
        self.patch = patch
        #: "node.port" outputs whose buffers no other signal may reuse, so they can be read after the block
        self.pin = frozenset(pin)
        self.sample_rate = float(sample_rate)
        self.block_size = int(block_size)
        self.topology = patch.topology
        self.nodes: dict[str, Node] = {}
        self.signals: dict[tuple[str, str], Signal] = {}
        self.events: dict[tuple[str, str], EventBuffer] = {}
        self.constants: dict[str, ConstantInput] = {}
        self.steps: list[ProtoStep] = []
        self.midi = EventBuffer(1024)
        #: Per node, the edges that feed it within the block (feedback edges left out).
        self.incoming: dict[str, list[Edge]] = defaultdict(list)
        for e in self.topology.edges:
            if not e.feedback:
                self.incoming[e.dst].append(e)

    # ---- 1. nodes ---------------------------------------------------------------------------
    def make_nodes(self) -> None:
        spec = self.patch.spec
        problems: list[Problem] = []
        activity: dict[str, np.ndarray | None] = {}
        built = self.patch.take_instances()  # the loader's, for the first plan; fresh after that
        with model_budget(self.patch.limits.memory_budget_bytes):  # models are probed against the patch's budget
            for name in self.topology.order:
                if name not in built:
                    built[name] = self.patch.registry.node_class(spec.nodes[name].type)(**spec.nodes[name].params)
        check_memory(self.patch, built, self.sample_rate, self.block_size)
        read_ports: dict[str, set[str]] = defaultdict(set)  # per node, the outputs a connection reads
        for e in self.topology.edges:
            read_ports[e.src].add(e.src_port)
        for name in self.topology.order:
            node_spec = spec.nodes[name]
            node = built[name]
            lanes = self.topology.lanes[name]
            inherited = self._inherited_activity(name, lanes, activity)
            ctx = PrepareContext(
                sample_rate=self.sample_rate,
                block_size=self.block_size,
                lanes=lanes,
                input_lanes={p: lanes for p in node.inputs()},
                output_lanes=dict(self.topology.output_lanes[name]),
                node_name=name,
                patch_dir=spec.directory,
                active_lanes=inherited,
                read_outputs=frozenset(read_ports[name]),
            )
            try:
                with model_budget(self.patch.limits.memory_budget_bytes):
                    node.prepare(ctx)
                own = node.lane_activity()
            except Exception as exc:  # a plugin's prepare must not crash the host
                loc = node_spec.loc
                problems.append(
                    Problem(
                        "NG117",
                        f"{node_spec.type} failed to prepare: {exc}",
                        loc.file,
                        loc.line,
                        loc.col,
                        f"nodes.{name}",
                    )
                )
                own = None
            activity[name] = _readonly(own) if own is not None else inherited
            self.nodes[name] = node
        if problems:
            raise CompileError(problems)

    def _inherited_activity(
        self, name: str, lanes: int, activity: Mapping[str, np.ndarray | None]
    ) -> np.ndarray | None:
        """The lane-activity flags node ``name`` inherits: those of the source its multi-lane inputs
        all come from (one voices node, directly or through per-lane nodes), else None.

        Single-lane sources broadcast to every lane and do not matter; any multi-lane input
        without flags, or with another source's, means the node must run every lane.
        """
        if lanes < 2:
            return None
        found: np.ndarray | None = None
        for e in self.incoming[name]:
            if self.topology.output_lanes[e.src][e.src_port] < 2:
                continue
            flags = activity.get(e.src)
            if flags is None or flags.shape[0] != lanes or (found is not None and flags is not found):
                return None
            found = flags
        return found

    # ---- 2. latency ----------------------------------------------------------------------------
    def latencies(self) -> tuple[dict[str, int], dict[str, int]]:
        """Per node: the latency at its inputs (after alignment) and at its outputs."""
        at_input: dict[str, int] = {}
        at_output: dict[str, int] = {}
        for name in self.topology.order:
            arrive = max((at_output[e.src] for e in self.incoming[name]), default=0)
            at_input[name] = arrive
            at_output[name] = arrive + max(0, int(self.nodes[name].latency))
        return at_input, at_output

    # ---- 3. steps ---------------------------------------------------------------------------
    def signal(self, node: str, port: str) -> Signal:
        key = (node, port)
        if key not in self.signals:
            decl = self.nodes[node].outputs()[port]
            lanes = self.topology.output_lanes[node][port]
            sig = self.signals[key] = Signal(lanes, _rate_width(decl.rate, self.block_size))
            own = (self.nodes[node].output_buffers() or {}).get(port)
            if own is not None and own.shape == (sig.lanes, sig.width) and own.dtype == np.float32:
                sig.buffer, sig.pinned, sig.owned = own, True, True
        return self.signals[key]

    def emit(self) -> None:
        """One step per node in order, preceded by the delay and mix steps its inputs need; the
        feedback copies go last (they carry this block's values into the next)."""
        at_input, at_output = self.latencies()
        self._by_dst: dict[tuple[str, str], list[Edge]] = defaultdict(list)
        for e in self.topology.edges:
            self._by_dst[(e.dst, e.dst_port)].append(e)
        self._feedback_copies: list[ProtoStep] = []
        self._feedback_signals: dict[tuple[str, str], Signal] = {}
        for name in self.topology.order:
            node = self.nodes[name]
            reads = {port: self._input(name, port, decl, at_input, at_output) for port, decl in node.inputs().items()}
            self.steps.append(ProtoStep(name, "node", node.process, reads, self._outputs(name, node), node))
        self.steps.extend(self._feedback_copies)
        output_node = self.topology.output_node
        self.latency = at_output[output_node] if output_node else 0

    def _input(
        self, name: str, port: str, decl: Input, at_input: Mapping[str, int], at_output: Mapping[str, int]
    ) -> Any:
        """What ``name.port`` reads: an event buffer, a constant's buffer, a source's signal read in
        place, or the output of a mix step emitted here (sums, mappings, rate or lane changes)."""
        edges = self._by_dst.get((name, port), [])
        input_spec = self.patch.spec.nodes[name].inputs.get(port)
        lanes = self.topology.lanes[name]
        width = _rate_width(decl.rate, self.block_size)
        if decl.rate is Rate.EVENTS:
            return self._events_input(name, port, decl, edges)
        if not edges:
            value = input_spec.constant if input_spec else decl.init
            buf = np.full((lanes, width), value, np.float32)
            self.constants[f"{name}.{port}"] = ConstantInput(name, port, decl, buf, value)
            return _readonly(buf)
        terms = []
        for e in edges:
            if e.feedback:
                source = self._feedback_source(e)
            else:
                source = self.signal(e.src, e.src_port)
                delay = at_input[name] - at_output[e.src]
                if delay > 0:
                    source = self._delay(e, source, delay)
            terms.append((e, source))
        constant = input_spec.constant if input_spec else 0.0
        # a plain connection is read in place; anything else (sums, mappings, rate or
        # lane conversion) gets a mix step, so nodes always see full, dense arrays
        simple = (
            len(terms) == 1
            and constant == 0.0
            and terms[0][0].source.range is None
            and terms[0][1].width == width
            and terms[0][1].lanes == lanes
        )
        if simple:
            return terms[0][1]
        return self._mix(name, port, decl, lanes, width, terms, constant)

    def _feedback_source(self, e: Edge) -> Signal:
        """The persistent copy of ``e``'s source that a feedback edge reads (last block's values),
        and the copy step that fills it at the end of the block (made once per source)."""
        key = (e.src, e.src_port)
        if key not in self._feedback_signals:
            src_sig = self.signal(*key)
            src_sig.pinned = True
            fb = Signal(src_sig.lanes, src_sig.width, pinned=True)
            self._feedback_signals[key] = fb
            self._feedback_copies.append(
                ProtoStep(
                    f"{e.src}.{e.src_port} (feedback)",
                    "feedback",
                    CopyStep((fb.lanes, fb.width)).process,
                    {"in": src_sig},
                    {"out": fb},
                )
            )
        return self._feedback_signals[key]

    def _outputs(self, name: str, node: Node) -> dict[str, Any]:
        """What node ``name`` writes: an event buffer or a signal per output (the patch's output
        and input nodes' signals are pinned: the engine reads and fills them; so are the outputs
        named in ``pin``, read after each block through ``plan.pinned``)."""
        writes: dict[str, Any] = {}
        for port, out_decl in node.outputs().items():
            if out_decl.rate is Rate.EVENTS:
                buf = EventBuffer()
                self.events[(name, port)] = buf
                writes[port] = buf
            else:
                sig = self.signal(name, port)
                if name in (self.topology.output_node, self.topology.input_node) or f"{name}.{port}" in self.pin:
                    sig.pinned = True
                writes[port] = sig
        return writes

    def _events_input(self, name: str, port: str, decl: Input, edges: list[Edge]) -> EventBuffer:
        if edges:
            e = edges[0]
            return self.events[(e.src, e.src_port)]
        if decl.source == "midi":
            return self.midi
        return EventBuffer(1)

    def _delay(self, e: Edge, source: Signal, delay: int) -> Signal:
        delayed = Signal(source.lanes, source.width)
        if source.width == 1 and self.block_size > 1:  # a control signal: delayed by whole blocks
            step: DelayStep = ControlDelayStep(delay, source.lanes, self.block_size)
        else:
            step = DelayStep(delay, source.lanes, source.width)
        self.steps.append(
            ProtoStep(
                f"{e.src}.{e.src_port} (delay {delay})",
                "delay",
                step.process,
                {"in": source},
                {"out": delayed},
                state=step,
            )
        )
        return delayed

    def _mix(
        self,
        name: str,
        port: str,
        decl: Input,
        lanes: int,
        width: int,
        terms: list[tuple[Edge, Signal]],
        constant: float,
    ) -> Signal:
        out = Signal(lanes, width)
        term_objs: list[Term] = []
        reads: dict[str, Any] = {}
        for i, (e, sig) in enumerate(terms):
            src_decl = self.nodes[e.src].outputs()[e.src_port]
            if e.source.range is not None:
                term = mapping_coefficients(src_decl.span, e.source.range, e.source.curve)
            else:
                term = Term(view=np.zeros(0))
            term.ramp = sig.width == 1 and width > 1
            # audio into a control input: the block's last sample
            reads[f"t{i}"] = (sig, lanes, 1 if sig.width == 1 or width == 1 else width, "last" if width == 1 else "all")
            term_objs.append(term)
        step = MixStep(term_objs, constant, (lanes, width), self.block_size)
        self.steps.append(
            ProtoStep(f"{name}.{port} (mix)", "mix", step.process, reads, {"out": out}, mix=step, state=step)
        )
        return out

    # ---- 4. buffers ---------------------------------------------------------------------------
    def colour(self, ends: list[int] | None = None) -> tuple[int, int]:
        """Assign slab slots by reference counting; returns (buffer count, slab bytes).

        ``ends`` (``lanes.schedule``): per step, the last step of the group it runs in as one
        call; what a group's steps read, and what they write that nobody reads, is released only
        after that last step, so no step of the group writes where another reads or writes."""

        def sig_of(item: Any) -> Signal | None:
            if isinstance(item, Signal):
                return item
            if isinstance(item, tuple):
                return item[0]
            return None

        for step in self.steps:
            for item in step.reads.values():
                s = sig_of(item)
                if s is not None:
                    s.readers += 1
        free: dict[int, list[int]] = defaultdict(list)
        sizes: list[int] = []
        done: list[Signal] = []  # read for the last time (or never read), free once its group ends
        for t, step in enumerate(self.steps):
            for sig in step.writes.values():
                if isinstance(sig, Signal) and sig.index < 0 and not sig.owned:
                    size = sig.lanes * sig.width
                    if free[size] and not sig.pinned:
                        sig.index = free[size].pop()
                    else:
                        sig.index = len(sizes)
                        sizes.append(size)
            for item in step.reads.values():
                s = sig_of(item)
                if s is None:
                    continue
                s.readers -= 1
                if s.readers == 0 and not s.pinned:
                    done.append(s)
            for sig in step.writes.values():  # outputs nobody reads are free right away
                if isinstance(sig, Signal) and sig.readers == 0 and not sig.pinned:
                    done.append(sig)
            if ends is None or ends[t] == t:
                for s in done:
                    free[s.lanes * s.width].append(s.index)
                done.clear()
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        slab = np.zeros(int(offsets[-1]), np.float32)
        self.slab = slab
        for sig in self._all_signals():
            if sig.owned:
                continue
            start = offsets[sig.index]
            sig.buffer = slab[start : start + sig.lanes * sig.width].reshape(sig.lanes, sig.width)
        return len(sizes), slab.nbytes

    def _all_signals(self) -> list[Signal]:
        seen: dict[int, Signal] = {}
        for step in self.steps:
            for sig in step.writes.values():
                if isinstance(sig, Signal):
                    seen[id(sig)] = sig
        return list(seen.values())

    # ---- 5. binding -----------------------------------------------------------------------------
    def bind(self) -> list[StepRecord]:
        records: list[StepRecord] = []
        for step in self.steps:
            ins: dict[str, Any] = {}
            for port, item in step.reads.items():
                ins[port] = self._view(item, step)
            outs = {port: (sig.buffer if isinstance(sig, Signal) else sig) for port, sig in step.writes.items()}
            if step.mix is not None:  # a mix step reads its terms through views bound here
                for i, term in enumerate(step.mix.terms):
                    term.view = ins[f"t{i}"]
            in_ports, out_ports = Ports(ins), Ports(outs)
            if step.node is not None:  # the node sees its views once (Node.bind), before any block
                step.node.bind(in_ports, out_ports)
                if step.node._runs_kernel():  # bound here, so the first block builds nothing
                    step.node._bind_kernel(in_ports, out_ports)
            thru = None
            if step.node is not None and step.node.bypass == "thru":
                thru = next((v for v in ins.values() if isinstance(v, np.ndarray) and v.ndim == 2), None)
            records.append(
                StepRecord(
                    step.name,
                    step.kind,
                    step.process,
                    in_ports,
                    out_ports,
                    BypassStep(thru).process,
                    node=step.node,
                    kernel_source=step.node if step.node is not None else step.mix,
                    state=step.state,
                )
            )
        return records

    def _view(self, item: Any, step: ProtoStep) -> Any:
        lanes = self.topology.lanes.get(step.name)
        if isinstance(item, Signal):
            buf = item.buffer
            target = (lanes if lanes is not None else item.lanes, item.width)
            return np.broadcast_to(buf, target) if buf.shape != target else _readonly(buf)
        if isinstance(item, tuple):
            sig, lanes, width, which = item
            buf = sig.buffer
            if which == "last" and buf.shape[1] > 1:
                buf = buf[:, -1:]
            return np.broadcast_to(buf, (lanes, buf.shape[1])) if buf.shape[0] != lanes else _readonly(buf)
        return item

    # ---- 6. fusion -------------------------------------------------------------------------------
    def build(self, ceiling: float, fuse: bool = True) -> tuple[Plan, dict[str, ConstantInput]]:
        self.make_nodes()
        self.emit()
        ends = None
        if fuse:  # steps whose kernels can run side by side are put next to each other (lanes.py)
            self.steps, ends = schedule(self.steps)
        count, nbytes = self.colour(ends)
        records = self.bind()
        if fuse:  # runs of consecutive steps offering kernels become one compiled call (fusion.py)
            records = fuse_steps(records)
        output = self.signals[(self.topology.output_node, self.nodes[self.topology.output_node].main_output)].buffer
        inp = None
        if self.topology.input_node:
            node = self.nodes[self.topology.input_node]
            inp = self.signals[(self.topology.input_node, node.main_output)].buffer
        plan = Plan(
            sample_rate=self.sample_rate,
            block_size=self.block_size,
            nodes=self.nodes,
            records=records,
            output=output,
            input=inp,
            midi=self.midi,
            latency=self.latency,
            buffer_count=count,
            slab_bytes=nbytes,
            ceiling=ceiling,
            order=self.topology.order,
            slab=self.slab,
        )
        for i, record in enumerate(records):
            if record.kind == "fused":
                record.state.report = plan.fused_fault(i)
        plan.pinned = {key: self.signals[tuple(key.split(".", 1))].buffer for key in sorted(self.pin)}
        return plan, self.constants


def _readonly(buf: np.ndarray) -> np.ndarray:
    view = buf.view()
    view.flags.writeable = False
    return view


@gc_paused()  # many small objects that all live on: no collector passes over them mid-build
def build_plan(
    patch: Patch,
    sample_rate: float,
    block_size: int,
    *,
    ceiling: float = 1.0,
    fuse: bool = True,
    pin: tuple[str, ...] = (),
) -> tuple[Plan, Mapping[str, ConstantInput]]:
    """Instantiate, prepare and wire ``patch`` for ``sample_rate`` and ``block_size``.

    ``fuse=False`` keeps one step per node (no kernel fusion), e.g. to see per-node costs.
    ``pin`` names audio or control outputs (``"node.port"``) that keep their own buffer, readable
    after each block as ``plan.pinned["node.port"]`` (batch rendering saves them as taps).
    """
    return Compiler(patch, sample_rate, block_size, pin).build(ceiling, fuse)
