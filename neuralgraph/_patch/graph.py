"""Graph-level analysis of a patch: connection ends, rates, cycles, order and lanes.

Works on the validated :class:`~neuralgraph._patch.spec.PatchSpec` plus one node instance per node, and
needs no sample rate, so ``load_patch`` runs it and reports its problems with the loader's.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

import attrs

from neuralgraph._errors import Problem, did_you_mean, display_path
from neuralgraph._nodes.mapping import mapping_transform
from neuralgraph._nodes.node import Node
from neuralgraph._nodes.ports import Rate
from neuralgraph._patch.spec import InputSpec, Loc, PatchSpec, Source


@attrs.frozen
class Edge:
    """A resolved connection: ``src.src_port`` feeds ``dst.dst_port`` through ``source``."""

    src: str
    src_port: str
    dst: str
    dst_port: str
    source: Source

    @property
    def feedback(self) -> bool:
        return self.source.feedback


@attrs.frozen
class Topology:
    """The graph's processing order, edges and lane counts."""

    order: tuple[str, ...]
    edges: tuple[Edge, ...]
    lanes: Mapping[str, int]
    output_lanes: Mapping[str, Mapping[str, int]]
    output_node: str | None
    input_node: str | None


def _problem(code: str, loc: Loc, path: str, message: str, hint: str | None = None, value: object = None) -> Problem:
    return Problem(code, message, loc.file, loc.line, loc.col, path, value, hint)


def _mappable(span: tuple[float, float], rng: tuple[float, float], curve: str) -> bool:
    """Whether mapping ``span`` onto ``rng`` gives coefficients float32 can hold (not inf, no 0 * inf)."""
    if span[1] == span[0] or not math.isfinite(span[1] - span[0]):
        return False
    try:
        scale, offset, _ = mapping_transform(span, rng, curve)
    except (ValueError, ZeroDivisionError, OverflowError):
        return False
    return abs(scale) < 1e30 and abs(offset) < 1e30


#: Per node, its successors in order of their first edge, each with its number of edges.
Successors = dict[str, dict[str, int]]


def successors_of(names: list[str], edges: Collection[Edge]) -> Successors:
    """The within-block (non-feedback) edges as successor counts, in file order."""
    succ: Successors = {n: {} for n in names}
    for e in edges:
        if not e.feedback:
            out = succ[e.src]
            out[e.dst] = out.get(e.dst, 0) + 1
    return succ


def depth_first_order(succ: Successors, nodes: list[str]) -> list[str]:
    """Kahn's algorithm with a LIFO of ready nodes (SuperCollider's SynthDef sort).

    A consumer runs right after its last producer, so few buffers are live at once. Ties are
    broken by file order, so the order is deterministic. Nodes on a cycle are left out.
    """
    rank = {n: i for i, n in enumerate(nodes)}
    indegree = dict.fromkeys(nodes, 0)
    for out in succ.values():
        for dst, count in out.items():
            indegree[dst] += count
    ready = sorted((n for n in nodes if indegree[n] == 0), key=rank.__getitem__, reverse=True)
    order: list[str] = []
    while ready:
        node = ready.pop()
        order.append(node)
        newly = []
        for dst, count in succ[node].items():
            indegree[dst] -= count
            if indegree[dst] == 0:
                newly.append(dst)
        ready.extend(sorted(newly, key=rank.__getitem__, reverse=True))
    return order


def analyse(
    spec: PatchSpec,
    instances: Mapping[str, Node],
    problems: list[Problem],
    declared: Collection[str] | None = None,
) -> Topology:
    """Check connections, cycles and lanes; append problems; return what could be worked out.

    ``declared`` names every node written in the patch, including those that failed to load,
    so that a connection to one of them is not reported as a missing node. The phases, in
    order: resolve every connection to an edge, sort, (only if the sort left nodes out) report
    and break cycles and sort again, find the output and input nodes, count lanes.
    """
    declared = set(spec.nodes) if declared is None else set(declared)
    names = list(spec.nodes)
    edges = resolve_edges(spec, instances, declared, problems)
    succ = successors_of(names, edges)
    order = depth_first_order(succ, names)
    if len(order) < len(names):  # a cycle: networkx finds and reports it (imported only then)
        order = depth_first_order(report_cycles(names, edges, problems), names)
    outputs, inputs = find_io_nodes(spec, instances, problems)
    lanes, out_lanes = count_lanes(order, names, edges, instances, problems)
    return Topology(
        order=tuple(order),
        edges=tuple(edges),
        lanes=lanes,
        output_lanes=out_lanes,
        output_node=outputs[0] if outputs else None,
        input_node=inputs[0] if inputs else None,
    )


def resolve_edges(
    spec: PatchSpec, instances: Mapping[str, Node], declared: set[str], problems: list[Problem]
) -> list[Edge]:
    """Every connection of the patch whose ends exist and fit, as an :class:`Edge`, in file order."""
    edges: list[Edge] = []
    for name, node_spec in spec.nodes.items():
        node = instances.get(name)
        if node is None:
            continue
        for port, input_spec in node_spec.inputs.items():
            for src in input_spec.sources:
                edge = _edge(name, port, node, input_spec, src, instances, declared, problems)
                if edge is not None:
                    edges.append(edge)
    return edges


def _edge(
    name: str,
    port: str,
    node: Node,
    input_spec: InputSpec,
    src: Source,
    instances: Mapping[str, Node],
    declared: set[str],
    problems: list[Problem],
) -> Edge | None:
    """The edge from ``src`` into ``name.port``, or None after appending why it cannot be made."""
    path = f"nodes.{name}.{port}"
    producer = instances.get(src.node)
    if src.node not in declared:
        problems.append(
            _problem(
                "NG120",
                src.loc,
                path,
                f"`{src.label()}`: there is no node `{src.node}`",
                did_you_mean(src.node, declared),
                src.label(),
            )
        )
        return None
    if producer is None:
        return None  # its own problem was reported
    outs = producer.outputs()
    if not outs:  # e.g. onnx.model with no model: its ports come from the file
        problems.append(
            _problem(
                "NG121",
                src.loc,
                path,
                f"`{src.label()}`: `{src.node}` ({producer.type_name}) has no outputs",
                "its ports depend on its parameters: an onnx.model needs a `model` file",
                src.label(),
            )
        )
        return None
    out_port = src.port or producer.main_output
    if out_port not in outs:
        problems.append(
            _problem(
                "NG121",
                src.loc,
                path,
                f"`{src.label()}`: `{src.node}` ({producer.type_name}) has no output `{out_port}`",
                did_you_mean(out_port, outs),
                src.label(),
            )
        )
        return None
    out_rate, in_rate = outs[out_port].rate, node.inputs()[port].rate
    if (out_rate is Rate.EVENTS) != (in_rate is Rate.EVENTS):
        problems.append(
            _problem(
                "NG122",
                src.loc,
                path,
                f"`{src.label()}` is {out_rate.value} rate but `{name}.{port}` takes {in_rate.value}",
                "connect events to events inputs and signals to signal inputs",
                src.label(),
            )
        )
        return None
    if in_rate is Rate.EVENTS and len(input_spec.sources) > 1:
        problems.append(
            _problem(
                "NG115",
                src.loc,
                path,
                "an events input takes exactly one connection",
                "merge event streams with a dedicated node",
                src.label(),
            )
        )
        return None
    if in_rate is Rate.EVENTS and src.range is not None:
        problems.append(_problem("NG115", src.loc, path, "events cannot be mapped with `range`"))
        return None
    lo, hi = outs[out_port].span
    if src.range is not None and not _mappable((lo, hi), src.range, src.curve):
        # a mapping divides by the source's span width: an empty or tiny span cannot be mapped
        problems.append(
            _problem(
                "NG115",
                src.loc,
                path,
                f"`{src.label()}` cannot be mapped: its span [{lo:g}, {hi:g}] is empty or too narrow",
                "give the source's range two different ends, or connect it without `range`",
                src.label(),
            )
        )
        return None
    return Edge(src.node, out_port, name, port, src)


def report_cycles(names: list[str], edges: list[Edge], problems: list[Problem]) -> Successors:
    """One problem per cycle without a feedback edge (per strongly connected component); returns the
    within-block successors less the edges inside those components, so the order can still be worked out."""
    import networkx as nx  # 0.1 s to import: only patches with a cycle pay for it

    graph = nx.MultiDiGraph()
    graph.add_nodes_from(names)
    graph.add_edges_from((e.src, e.dst, {"port": e.dst_port}) for e in edges if not e.feedback)
    position = {n: i for i, n in enumerate(names)}.__getitem__  # names.index is O(n): O(n²) over components
    for component in sorted(nx.strongly_connected_components(graph), key=lambda c: min(map(position, c))):
        if len(component) == 1 and not any(graph.has_edge(n, n) for n in component):
            continue
        start = min(component, key=position)  # deterministic: the first node in the file
        cycle = nx.find_cycle(graph.subgraph(component), source=start)
        path = [u for u, *_ in cycle] + [cycle[0][0]]
        first = next(e for e in edges if e.src == cycle[0][0] and e.dst == cycle[0][1] and not e.feedback)
        problems.append(
            _problem(
                "NG124",
                first.source.loc,
                f"nodes.{first.dst}.{first.dst_port}",
                "cycle " + " -> ".join(path),
                'mark one connection on it { from = "...", feedback = true } to carry the previous block',
            )
        )
        graph.remove_edges_from(list(graph.subgraph(component).edges(keys=True)))
    return {n: {dst: graph.number_of_edges(n, dst) for dst in graph.successors(n)} for n in names}


def find_io_nodes(
    spec: PatchSpec, instances: Mapping[str, Node], problems: list[Problem]
) -> tuple[list[str], list[str]]:
    """The output nodes and input nodes in file order; a patch needs exactly one output."""
    names = list(spec.nodes)
    outputs = [n for n in names if n in instances and instances[n].role == "output"]
    inputs = [n for n in names if n in instances and instances[n].role == "input"]
    if not outputs and instances and spec.nodes:
        # a whole-patch problem: reported at the file's first line, under the name the user gave
        shown = display_path(spec.file)
        problems.append(
            Problem(
                "NG125",
                "the patch has no output node",
                shown,
                1 if shown else None,
                1 if shown else None,
                hint='add [nodes.out] with type = "io.output" and in = "<your last node>"',
            )
        )
    for extra in outputs[1:]:
        loc = spec.nodes[extra].loc
        problems.append(
            _problem(
                "NG125",
                loc,
                f"nodes.{extra}",
                f"a second output node (`{outputs[0]}` is the first)",
                "mix the signals and use a single io.output",
            )
        )
    return outputs, inputs


def count_lanes(
    order: list[str], names: list[str], edges: list[Edge], instances: Mapping[str, Node], problems: list[Problem]
) -> tuple[dict[str, int], dict[str, Mapping[str, int]]]:
    """Lanes per node (its fixed count, else the widest of its inputs) and per output port, in
    processing order; a source of another count than 1 or the node's is a lane mismatch."""
    lanes: dict[str, int] = {}
    out_lanes: dict[str, Mapping[str, int]] = {}
    incoming: dict[str, list[Edge]] = {n: [] for n in names}
    for e in edges:
        incoming[e.dst].append(e)
    for name in order:
        node = instances.get(name)
        if node is None:
            continue
        fixed = node.fixed_lanes()
        count = fixed or 1
        known = [
            (e, out_lanes[e.src][e.src_port])
            for e in incoming[name]
            if not e.feedback and e.src in out_lanes and node.inputs()[e.dst_port].rate is not Rate.EVENTS
        ]
        if fixed is None:
            count = max([n for _, n in known], default=1)
        for e, n in known:
            if n not in (1, count):
                other = max(known, key=lambda k: k[1])[0] if fixed is None else None
                against = (
                    f"node `{name}` has {count} lanes"
                    if other is None
                    else f"`{other.source.label()}` into `{name}.{other.dst_port}` has {count}"
                )
                problems.append(
                    _problem(
                        "NG123",
                        e.source.loc,
                        f"nodes.{name}.{e.dst_port}",
                        f"lane mismatch: `{e.source.label()}` has {n} lanes but {against}",
                        "only 1 lane broadcasts; collapse voices with voices.sum or match the channel counts",
                    )
                )
        lanes[name] = count
        out_lanes[name] = dict(node.output_lanes(count))
    for e in edges:  # feedback edges: checked once every lane count is known
        if e.feedback and e.src in out_lanes and e.dst in lanes:
            n = out_lanes[e.src][e.src_port]
            if n not in (1, lanes[e.dst]):
                problems.append(
                    _problem(
                        "NG123",
                        e.source.loc,
                        f"nodes.{e.dst}.{e.dst_port}",
                        f"lane mismatch: feedback `{e.source.label()}` has {n} lanes, `{e.dst}` has {lanes[e.dst]}",
                    )
                )
    return lanes, out_lanes
