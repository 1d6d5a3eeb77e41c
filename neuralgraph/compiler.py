"""Turn a checked :class:`~neuralgraph.patch.Patch` into a :class:`~neuralgraph.plan.Plan`.

1. make a fresh instance of every node, estimate the memory the plan needs (signal buffers and
   what each node's ``memory_bytes`` declares) and refuse it over the budget (NG127) before
   anything is allocated; then prepare every node for the sample rate and block size;
2. work out each node's path latency and emit delay steps on the shorter parallel paths;
3. emit a mix step for each input that sums, maps or converts the rate of its sources;
4. colour buffers: walk the steps in order, give each output a buffer from a free list and
   return it when its last reader has run (SuperCollider's wire-buffer colouring), then carve
   every buffer out of one float32 slab;
5. bind read-only input views and output views for every step;
6. fuse runs of consecutive nodes that offer a compiled kernel into one step (``fusion.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from .errors import CompileError, Problem
from .memory import check_memory
from .model_probe import budget as model_budget
from .events import EventBuffer
from .fusion import FusedStep, fuse_steps
from .graph import Edge
from .node import Node, Ports, PrepareContext
from .patch import Patch
from .plan import Plan, Step
from .ports import Input, Rate
from .steps import BypassStep, CopyStep, DelayStep, MixStep, Term, mapping_coefficients


@attrs.define(eq=False)
class Signal:
    """A buffer-to-be: shape, readers still to run, and whether it outlives the block."""

    lanes: int
    width: int
    pinned: bool = False
    readers: int = 0
    buffer: np.ndarray | None = None
    index: int = -1


@attrs.define(eq=False)
class ProtoStep:
    """A step before buffers are assigned: what it reads and writes, by signal."""

    name: str
    process: Any
    reads: dict[str, Signal | tuple[Signal, int, int, str] | EventBuffer | np.ndarray]
    writes: dict[str, Signal | EventBuffer]
    node: Node | None = None
    mix: MixStep | None = None


@attrs.define(eq=False)
class ConstantInput:
    """An unconnected signal input: a persistent one-lane buffer the engine can ramp."""

    node: str
    port: str
    decl: Input
    buffer: np.ndarray
    value: float
    target: float = 0.0
    step: float = 0.0
    remaining: int = 0
    active: bool = False


def _rate_width(rate: Rate, block_size: int) -> int:
    return 1 if rate is Rate.CONTROL else block_size


class Compiler:
    def __init__(self, patch: Patch, sample_rate: float, block_size: int) -> None:
        self.patch = patch
        self.sample_rate = float(sample_rate)
        self.block_size = int(block_size)
        self.topology = patch.topology
        self.nodes: dict[str, Node] = {}
        self.signals: dict[tuple[str, str], Signal] = {}
        self.events: dict[tuple[str, str], EventBuffer] = {}
        self.constants: dict[str, ConstantInput] = {}
        self.steps: list[ProtoStep] = []
        self.resettable: list[object] = []
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
        with model_budget(self.patch.limits.memory_budget_bytes):  # models are probed against the patch's budget
            built = {name: self.patch.registry.node_class(spec.nodes[name].type)(**spec.nodes[name].params)
                     for name in self.topology.order}
        check_memory(self.patch, built, self.sample_rate, self.block_size)
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
            )
            try:
                with model_budget(self.patch.limits.memory_budget_bytes):
                    node.prepare(ctx)
                own = node.lane_activity()
            except Exception as exc:  # a plugin's prepare must not crash the host
                loc = node_spec.loc
                problems.append(Problem("NG117", f"{node_spec.type} failed to prepare: {exc}", loc.file,
                                        loc.line, loc.col, f"nodes.{name}"))
                own = None
            activity[name] = _readonly(own) if own is not None else inherited
            self.nodes[name] = node
        if problems:
            raise CompileError(problems)

    def _inherited_activity(self, name: str, lanes: int,
                            activity: Mapping[str, np.ndarray | None]) -> np.ndarray | None:
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
            self.signals[key] = Signal(lanes, _rate_width(decl.rate, self.block_size))
        return self.signals[key]

    def emit(self) -> None:
        spec = self.patch.spec
        at_input, at_output = self.latencies()
        by_dst: dict[tuple[str, str], list[Edge]] = defaultdict(list)
        for e in self.topology.edges:
            by_dst[(e.dst, e.dst_port)].append(e)
        feedback_copies: list[ProtoStep] = []
        feedback_signals: dict[tuple[str, str], Signal] = {}
        output_node = self.topology.output_node
        input_node = self.topology.input_node

        for name in self.topology.order:
            node = self.nodes[name]
            lanes = self.topology.lanes[name]
            reads: dict[str, Any] = {}
            for port, decl in node.inputs().items():
                edges = by_dst.get((name, port), [])
                input_spec = spec.nodes[name].inputs.get(port)
                width = _rate_width(decl.rate, self.block_size)
                if decl.rate is Rate.EVENTS:
                    reads[port] = self._events_input(name, port, decl, edges)
                    continue
                if not edges:
                    value = input_spec.constant if input_spec else decl.init
                    buf = np.full((lanes, width), value, np.float32)
                    self.constants[f"{name}.{port}"] = ConstantInput(name, port, decl, buf, value)
                    reads[port] = _readonly(buf)
                    continue
                terms = []
                for e in edges:
                    if e.feedback:
                        key = (e.src, e.src_port)
                        if key not in feedback_signals:
                            src_sig = self.signal(*key)
                            src_sig.pinned = True
                            fb = Signal(src_sig.lanes, src_sig.width, pinned=True)
                            feedback_signals[key] = fb
                            feedback_copies.append(ProtoStep(f"{e.src}.{e.src_port} (feedback)",
                                                             CopyStep((fb.lanes, fb.width)).process,
                                                             {"in": src_sig}, {"out": fb}))
                        source = feedback_signals[key]
                    else:
                        source = self.signal(e.src, e.src_port)
                        delay = at_input[name] - at_output[e.src]
                        if delay > 0:
                            source = self._delay(e, source, delay)
                    terms.append((e, source))
                constant = input_spec.constant if input_spec else 0.0
                # a plain connection is read in place; anything else (sums, mappings, rate or
                # lane conversion) gets a mix step, so nodes always see full, dense arrays
                simple = (len(terms) == 1 and constant == 0.0 and terms[0][0].source.range is None
                          and terms[0][1].width == width and terms[0][1].lanes == lanes)
                if simple:
                    reads[port] = terms[0][1]
                else:
                    reads[port] = self._mix(name, port, decl, lanes, width, terms, constant)
            writes: dict[str, Any] = {}
            for port, out_decl in node.outputs().items():
                if out_decl.rate is Rate.EVENTS:
                    buf = EventBuffer()
                    self.events[(name, port)] = buf
                    writes[port] = buf
                else:
                    sig = self.signal(name, port)
                    if name in (output_node, input_node):
                        sig.pinned = True
                    writes[port] = sig
            self.steps.append(ProtoStep(name, node.process, reads, writes, node))
        self.steps.extend(feedback_copies)
        self.latency = at_output[output_node] if output_node else 0

    def _events_input(self, name: str, port: str, decl: Input, edges: list[Edge]) -> EventBuffer:
        if edges:
            e = edges[0]
            return self.events[(e.src, e.src_port)]
        if decl.source == "midi":
            return self.midi
        return EventBuffer(1)

    def _delay(self, e: Edge, source: Signal, delay: int) -> Signal:
        delayed = Signal(source.lanes, source.width)
        step = DelayStep(delay, source.lanes, source.width)
        self.resettable.append(step)
        self.steps.append(ProtoStep(f"{e.src}.{e.src_port} (delay {delay})", step.process, {"in": source},
                                    {"out": delayed}))
        return delayed

    def _mix(self, name: str, port: str, decl: Input, lanes: int, width: int,
             terms: list[tuple[Edge, Signal]], constant: float) -> Signal:
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
        self.resettable.append(step)
        self.steps.append(ProtoStep(f"{name}.{port} (mix)", step.process, reads, {"out": out}, mix=step))
        return out

    # ---- 4. buffers ---------------------------------------------------------------------------
    def colour(self) -> tuple[int, int]:
        """Assign slab slots by reference counting; returns (buffer count, slab bytes)."""
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
        for step in self.steps:
            for sig in step.writes.values():
                if isinstance(sig, Signal) and sig.index < 0:
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
                    free[s.lanes * s.width].append(s.index)
            for sig in step.writes.values():  # outputs nobody reads are free right away
                if isinstance(sig, Signal) and sig.readers == 0 and not sig.pinned:
                    free[sig.lanes * sig.width].append(sig.index)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        slab = np.zeros(int(offsets[-1]), np.float32)
        self.slab = slab
        for sig in self._all_signals():
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
    def bind(self) -> tuple[list[Step], list[Step], list[str]]:
        steps: list[Step] = []
        bypass: list[Step] = []
        names: list[str] = []
        for step in self.steps:
            ins: dict[str, Any] = {}
            for port, item in step.reads.items():
                ins[port] = self._view(item, step)
            outs = {port: (sig.buffer if isinstance(sig, Signal) else sig) for port, sig in step.writes.items()}
            if step.mix is not None:  # a mix step reads its terms through views bound here
                for i, term in enumerate(step.mix.terms):
                    term.view = ins[f"t{i}"]
            in_ports, out_ports = Ports(ins), Ports(outs)
            steps.append((step.process, in_ports, out_ports))
            thru = None
            if step.node is not None and step.node.bypass == "thru":
                thru = next((v for v in ins.values() if isinstance(v, np.ndarray) and v.ndim == 2), None)
            bypass.append((BypassStep(thru).process, in_ports, out_ports))
            names.append(step.name)
        return steps, bypass, names

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
    def fuse(self, steps: list[Step], bypass: list[Step], names: list[str]
             ) -> tuple[list[Step], list[Step], list[str], list[FusedStep]]:
        """Runs of consecutive nodes offering ``Node.kernel`` become one compiled call (fusion.py)."""
        nodes = [s.node if s.node is not None else s.mix for s in self.steps]  # mix steps offer kernels too
        steps, bypass, names, fused = fuse_steps(steps, bypass, names, nodes)
        self.resettable.extend(fused)  # after the nodes' own reset: checks their bindings held
        return steps, bypass, names, fused

    def build(self, ceiling: float, fuse: bool = True) -> tuple[Plan, dict[str, ConstantInput]]:
        self.make_nodes()
        self.emit()
        count, nbytes = self.colour()
        steps, bypass, names = self.bind()
        fused: list[FusedStep] = []
        if fuse:
            steps, bypass, names, fused = self.fuse(steps, bypass, names)
        output = self.signals[(self.topology.output_node, self.nodes[self.topology.output_node].main_output)].buffer
        inp = None
        if self.topology.input_node:
            node = self.nodes[self.topology.input_node]
            inp = self.signals[(self.topology.input_node, node.main_output)].buffer
        plan = Plan(sample_rate=self.sample_rate, block_size=self.block_size, nodes=self.nodes, steps=steps,
                    step_names=names, bypass=bypass, output=output, input=inp, midi=self.midi,
                    latency=self.latency, buffer_count=count, slab_bytes=nbytes, ceiling=ceiling,
                    resettable=self.resettable, order=self.topology.order, slab=self.slab)
        for step in fused:
            step.report = plan.fused_fault(names.index(step.name))
        return plan, self.constants


def _readonly(buf: np.ndarray) -> np.ndarray:
    view = buf.view()
    view.flags.writeable = False
    return view


def build_plan(patch: Patch, sample_rate: float, block_size: int, *, ceiling: float = 1.0, fuse: bool = True
               ) -> tuple[Plan, Mapping[str, ConstantInput]]:
    """Instantiate, prepare and wire ``patch`` for ``sample_rate`` and ``block_size``.

    ``fuse=False`` keeps one step per node (no kernel fusion), e.g. to see per-node costs.
    """
    return Compiler(patch, sample_rate, block_size).build(ceiling, fuse)
