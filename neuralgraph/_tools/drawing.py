"""Drawings of a patch: Graphviz DOT text, and SVG/PNG/PDF through Graphviz's ``dot`` program.

Each node is a box with its name, its type, its lane count when it has more than one, the
parameters and constant inputs written in the patch, its connected inputs as ports on the left
and its connected outputs on the right. Edges are styled by the rate of the signal they carry:
audio solid black, control dashed blue, events dotted purple. A feedback edge is drawn red and
labelled ``feedback (1 block)``; an edge carrying more than one lane is labelled with the count.

``neuralgraph graph PATCH -o patch.svg`` is the command-line front end.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from neuralgraph._errors import NeuralgraphError, UsageError
from neuralgraph._nodes.node import Node
from neuralgraph._nodes.ports import Rate
from neuralgraph._patch.graph import Edge
from neuralgraph._patch.patch import Patch

#: Output formats ``dot`` renders, by file suffix; ``.dot``/``.gv`` are written directly.
RENDERED = {".svg": "svg", ".png": "png", ".pdf": "pdf"}
DOT_SUFFIXES = (".dot", ".gv")

#: Edge attributes by the rate of the signal carried.
EDGE_STYLE: Mapping[Rate, str] = {
    Rate.AUDIO: 'color="#222222", penwidth=1.6',
    Rate.CONTROL: 'color="#2b6cb0", style=dashed',
    Rate.EVENTS: 'color="#7b3fa0", style=dotted, penwidth=2.0',
}
FEEDBACK_STYLE = 'color="#c53030", style=bold, constraint=false, fontcolor="#c53030"'
#: At most this many parameter lines are shown in a node's box; the rest are summarised.
MAX_SETTINGS = 8
#: Connections between numbered ports of two nodes drawn as one bus edge from this many on.
BUS_MIN = 3

#: The key under the title: what each edge style means.
LEGEND = (
    '<font point-size="9">audio: solid · <font color="#2b6cb0">control: dashed</font> · '
    '<font color="#7b3fa0">events: dotted</font> · <font color="#c53030">feedback: red</font> · '
    "×N: lanes carried · → [lo, hi]: mapped range</font>"
)

INSTALL_HINT = (
    "install Graphviz (Debian/Ubuntu: apt-get install graphviz; Fedora: dnf install graphviz; "
    "macOS: brew install graphviz; conda: conda install graphviz), or write DOT text with -o PATCH.dot"
)


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and ("/" in value or "\\" in value):
        return Path(value).name  # a resolved file path: its name is what the patch author wrote
    return str(value)


def _settings(patch: Patch, name: str, node: Node) -> list[str]:
    """``key = value unit`` lines for the parameters and constant inputs the patch writes."""
    spec = patch.spec.nodes[name]
    lines = []
    for pname, value in spec.params.items():
        decl = type(node).params().get(pname)
        unit = f" {decl.unit}" if decl is not None and decl.unit else ""
        lines.append(f"{pname} = {_value(value)}{unit}")
    inputs = node.inputs()
    for port, value in spec.inputs.items():
        if not value.sources and port in inputs:
            unit = f" {inputs[port].unit}" if inputs[port].unit else ""
            lines.append(f"{port} = {_value(value.constant)}{unit}")
    if len(lines) > MAX_SETTINGS:
        hidden = len(lines) - (MAX_SETTINGS - 1)
        lines = lines[: MAX_SETTINGS - 1] + [f"… {hidden} more"]
    return lines


def _edge_label(edge: Edge, lanes: int) -> str:
    parts = []
    src = edge.source
    if src.range is not None:
        lo, hi = src.range
        parts.append(f"→ [{lo:g}, {hi:g}]{' exp' if src.curve == 'exp' else ''}")
    if src.feedback:
        parts.append("feedback (1 block)")
    if lanes > 1:
        parts.append(f"×{lanes}")
    return "  ".join(parts)


@attrs.frozen
class _Wire:
    """One drawn edge: a single connection, or a bus of numbered ports (``harm_1…32 -> amp_1…32``)."""

    src: str
    src_port: str  # the port id in the drawing (a port name, or a bus id)
    dst: str
    dst_port: str
    edge: Edge  # the first connection it stands for
    count: int = 1


_NUMBERED = re.compile(r"^(.*?)_?(\d+)$")


def _bus_key(e: Edge) -> tuple[str, str, str, str] | None:
    """Connections between numbered ports of the same two nodes, plain and in step, form a bus."""
    src, dst = _NUMBERED.match(e.src_port), _NUMBERED.match(e.dst_port)
    if not (src and dst) or src.group(2) != dst.group(2) or e.feedback or e.source.range is not None:
        return None
    return (e.src, src.group(1), e.dst, dst.group(1))


def _wires(edges: tuple[Edge, ...]) -> tuple[list[_Wire], dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Edges grouped into wires, and for each node the port id and label each connected port draws as."""
    groups: dict[tuple[str, str, str, str], list[Edge]] = {}
    for e in edges:
        key = _bus_key(e)
        if key is not None:
            groups.setdefault(key, []).append(e)
    wires: list[_Wire] = []
    ins: dict[str, dict[str, str]] = {}
    outs: dict[str, dict[str, str]] = {}
    drawn: set[tuple[str, str, str, str]] = set()
    for e in edges:
        key = _bus_key(e)
        bus = groups.get(key) if key is not None else None
        if bus is not None and len(bus) >= BUS_MIN:
            if key in drawn:
                continue
            drawn.add(key)
            first, last = _NUMBERED.match(bus[0].src_port), _NUMBERED.match(bus[-1].src_port)
            dfirst, dlast = _NUMBERED.match(bus[0].dst_port), _NUMBERED.match(bus[-1].dst_port)
            src_id, dst_id = f"{key[1]}_bus", f"{key[3]}_bus"
            outs.setdefault(e.src, {})[src_id] = f"{bus[0].src_port} … {last.group(2)}" if first else src_id
            ins.setdefault(e.dst, {})[dst_id] = f"{bus[0].dst_port} … {dlast.group(2)}" if dfirst else dst_id
            wires.append(_Wire(e.src, src_id, e.dst, dst_id, e, len(bus)))
        else:
            outs.setdefault(e.src, {}).setdefault(e.src_port, e.src_port)
            ins.setdefault(e.dst, {}).setdefault(e.dst_port, e.dst_port)
            wires.append(_Wire(e.src, e.src_port, e.dst, e.dst_port, e))
    return wires, ins, outs


def edge_rate(instances: Mapping[str, Node], e: Edge) -> Rate:
    """What a connection carries: events, control (either end runs once per block) or audio."""
    out_rate = instances[e.src].outputs()[e.src_port].rate
    in_rate = instances[e.dst].inputs()[e.dst_port].rate
    if Rate.EVENTS in (out_rate, in_rate):
        return Rate.EVENTS
    return Rate.CONTROL if Rate.CONTROL in (out_rate, in_rate) else Rate.AUDIO


def patch_to_dot(patch: Patch) -> str:
    """The patch as Graphviz DOT text (deterministic: nodes in file order, edges in patch order).

    Three or more connections between numbered ports of the same two nodes (``harm_1`` …
    ``harm_32`` into ``amp_1`` … ``amp_32``) are drawn as one bus edge labelled with the count.
    """
    topo = patch.topology
    instances = patch.instances  # the loader's: declarations only, nothing is prepared here
    wires, used_in, used_out = _wires(topo.edges)

    title = f"{patch.name} ({patch.file.name})" if patch.file is not None else patch.name
    lines = [
        "digraph patch {",
        "  graph [rankdir=LR, fontname=Helvetica, fontsize=12, nodesep=0.3, ranksep=0.6,",
        f"         labelloc=t, label=<<b>{_esc(title)}</b><br/>{LEGEND}>];",
        "  node [shape=plaintext, fontname=Helvetica, fontsize=10];",
        "  edge [fontname=Helvetica, fontsize=9, arrowsize=0.7];",
    ]
    for name, node in instances.items():
        spec = patch.spec.nodes[name]
        lanes = topo.lanes.get(name, 1)
        ins = list(used_in.get(name, {}).items())
        outs = list(used_out.get(name, {}).items())
        settings = _settings(patch, name, node)
        fill = "#fde8c8" if node.role in ("output", "input") else "#eef2f7"
        header = f'<b>{_esc(name)}</b><br/><font point-size="9">{_esc(spec.type)}'
        out_lanes = set(topo.output_lanes.get(name, {}).values()) or {lanes}
        if out_lanes != {lanes}:  # a node that starts or collapses lanes: midi.voices, voices.sum, fx.pan
            header += f" · {lanes} → {max(out_lanes)} lanes"
        elif lanes > 1:
            header += f" · {lanes} lanes"
        header += "</font>"
        rows = max(len(ins), len(outs), 1)
        cells = [f'<tr><td colspan="3" bgcolor="{fill}">{header}</td></tr>']
        body = "<br/>".join(_esc(s) for s in settings) if settings else " "
        for i in range(rows):
            left = (
                f'<td port="in_{_esc(ins[i][0])}" align="left" bgcolor="#ffffff">{_esc(ins[i][1])}</td>'
                if i < len(ins)
                else '<td border="0"></td>'
            )
            right = (
                f'<td port="out_{_esc(outs[i][0])}" align="right" bgcolor="#ffffff">{_esc(outs[i][1])}</td>'
                if i < len(outs)
                else '<td border="0"></td>'
            )
            middle = (
                f'<td rowspan="{rows}" align="left" balign="left"><font point-size="9">{body}</font></td>'
                if i == 0
                else ""
            )
            cells.append(f"<tr>{left}{middle}{right}</tr>")
        table = '<table border="0" cellborder="1" cellspacing="0" cellpadding="3">' + "".join(cells) + "</table>"
        lines.append(f'  "{name}" [label=<{table}>];')
    for w in wires:
        e = w.edge
        lanes = topo.output_lanes.get(e.src, {}).get(e.src_port, 1)
        style = FEEDBACK_STYLE if e.feedback else EDGE_STYLE[edge_rate(instances, e)]
        label = _edge_label(e, lanes)
        if w.count > 1:
            label = f"{w.count} ports  {label}".strip()
            style += f", penwidth={min(1.5 + w.count / 16, 3.5):g}, arrowsize=0.4"
        attrs_text = style + (f', label="{_esc(label)}"' if label else "")
        lines.append(f'  "{w.src}":"out_{w.src_port}":e -> "{w.dst}":"in_{w.dst_port}":w [{attrs_text}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_program() -> str | None:
    """The path of Graphviz's ``dot``, or None when it is not installed."""
    return shutil.which("dot")


def render_dot(dot: str, fmt: str) -> bytes:
    """Run ``dot -T<fmt>`` on DOT text; raises NeuralgraphError naming what to install."""
    program = dot_program()
    if program is None:
        raise NeuralgraphError(
            f"drawing {fmt.upper()} needs Graphviz's `dot` program, which is not on PATH: " + INSTALL_HINT
        )
    run = subprocess.run(
        [program, f"-T{fmt}"], input=dot.encode("utf-8"), capture_output=True, timeout=120, check=False
    )
    if run.returncode != 0:
        raise NeuralgraphError(f"Graphviz `dot -T{fmt}` failed: {run.stderr.decode(errors='replace').strip()}")
    return run.stdout


def patch_svg(patch: Patch) -> str | None:
    """The drawing as SVG text, or None without Graphviz's ``dot`` (Jupyter's ``Patch._repr_svg_``)."""
    if dot_program() is None:
        return None
    return render_dot(patch_to_dot(patch), "svg").decode("utf-8")


def draw_patch(patch: Patch, output: str | Path) -> Path:
    """Write a drawing of ``patch`` to ``output``; its suffix (.dot, .gv, .svg, .png, .pdf) picks the format."""
    out = Path(output)
    suffix = out.suffix.lower()
    dot = patch_to_dot(patch)
    if suffix in DOT_SUFFIXES:
        out.write_text(dot, encoding="utf-8")
    elif suffix in RENDERED:
        out.write_bytes(render_dot(dot, RENDERED[suffix]))
    else:
        known = ", ".join((*DOT_SUFFIXES, *RENDERED))
        raise UsageError(
            f"{out.name}: cannot tell the drawing format from {suffix or 'no suffix'!r}; use one of {known}"
        )
    return out
