"""Cost per block of every built-in node type, at 1 and 16 lanes, blocks 64 and 256.

    python benchmarks/all_nodes.py [--blocks 300] [--types osc.sine,midi.voices] [--markdown]

Generic over the registry: every node type a plugin of this project registers (plugins/,
imported as ``neuralgraph_plugins``) gets one row. Each node is built with the parameters it has
in the first patch of graphs/ that uses it (so onnx.model runs a shipped model, osc.wavetable
a shipped table), or its defaults when no patch uses it, prepared on its own at 48 kHz and its
``process`` called directly (no engine, no other nodes). Inputs: ``in``/``a``/``b`` get uniform
noise, ``gate`` is on for the first three quarters of every block (an edge pair per block), other
signal inputs their ``init`` ±10 % (so coefficient recomputation runs), MIDI inputs four
note-ons at frame 0, a mod-wheel move, a pitch bend and the four note-offs half-way through
every block. midi.voices gets ``count`` = lanes; nodes with fixed lanes (io.*, fx.reverb) run
their own count, shown in the table. Prints CPU µs per block (best of 5 runs of ``--blocks``
calls) and ns per sample per lane.

benchmarks/classic_nodes.py, modulation_effects.py and onnx_node.py time their groups with
type-specific inputs and comparisons against alternative implementations; this one is the
complete inventory.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from timing import per_block

import neuralgraph as ng
from neuralgraph.plugin import EventBuffer, Ports, PrepareContext, Rate

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [(1, 64), (1, 256), (16, 64), (16, 256)]
LANE_PARAMS = {"midi.voices": "count"}  # types whose lane count is a parameter, not their inputs'
CHORD = (60, 64, 67, 71)


def builtin_types(registry: ng.Registry) -> list[str]:
    """Node types registered by this project's own plugins (not third-party ones installed alongside)."""
    return sorted(n for n, t in registry.node_types.items() if t.cls.__module__.startswith("neuralgraph_plugins."))


def shipped_params() -> dict[str, tuple[dict[str, Any], Path, str]]:
    """For each node type, its parameters (paths resolved) in the first graphs/ patch using it."""
    found: dict[str, tuple[dict[str, Any], Path, str]] = {}
    graphs = ROOT / "graphs"
    for path in sorted([*graphs.glob("*.toml"), *(graphs / "bench").glob("*.toml")]):
        patch = ng.load_patch(path)
        for node in patch.spec.nodes.values():
            if node.type not in found:
                found[node.type] = (dict(node.params), path.parent, str(path.relative_to(ROOT)))
    return found


def midi_events(block: int) -> EventBuffer:
    """The same busy block of MIDI every call: a chord struck and released, a wheel and a bend."""
    events = EventBuffer()
    for note in CHORD:
        events.push(0, 0x90, note, 100)
    events.push(1, 0xB0, 1, 64)
    events.push(2, 0xE0, 0, 80)
    for note in CHORD:
        events.push(block // 2, 0x80, note, 0)
    return events


def node_runner(
    name: str, cls: type, params: dict[str, Any], patch_dir: Path, lanes: int, block: int
) -> tuple[Callable[[], None], int]:
    """A closure running one ``process`` call of a prepared node, and the node's lane count."""
    params = dict(params)
    if name in LANE_PARAMS:
        params[LANE_PARAMS[name]] = lanes
    node = cls(**params)
    lanes = node.fixed_lanes() or lanes
    inputs = node.inputs()
    out_lanes = dict(node.output_lanes(lanes))
    node.prepare(
        PrepareContext(
            sample_rate=48000.0,
            block_size=block,
            lanes=lanes,
            input_lanes={p: (1 if d.rate is Rate.EVENTS else lanes) for p, d in inputs.items()},
            output_lanes=out_lanes,
            node_name=name.replace(".", "_"),
            patch_dir=patch_dir,
        )
    )
    rng = np.random.default_rng(0)
    arrays: dict[str, Any] = {}
    for port, decl in inputs.items():
        width = 1 if decl.rate is Rate.CONTROL else block
        if decl.rate is Rate.EVENTS:
            arrays[port] = midi_events(block)
        elif port == "gate":
            arrays[port] = np.repeat((np.arange(block) < 3 * block // 4).astype(np.float32)[None, :], lanes, 0)
        elif port in ("in", "a", "b"):
            arrays[port] = rng.uniform(-1, 1, (lanes, width)).astype(np.float32)
        else:
            arrays[port] = (decl.init * (1 + 0.1 * rng.uniform(-1, 1, (lanes, width)))).astype(np.float32)
    ins = Ports(arrays)
    outs = Ports(
        {
            port: np.zeros((out_lanes[port], 1 if d.rate is Rate.CONTROL else block), np.float32)
            for port, d in node.outputs().items()
            if d.rate is not Rate.EVENTS
        }
    )
    return (lambda: node.process(ins, outs, block)), lanes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=300, help="calls per timed run (best of 5 runs)")
    parser.add_argument("--types", default="", help="comma-separated types (default: every built-in type)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    registry = ng.Registry.load()
    types = args.types.split(",") if args.types else builtin_types(registry)
    shipped = shipped_params()
    cells = [f"{lanes}×{block} µs" for lanes, block in CONFIGS]
    if args.markdown:
        print("| type | " + " | ".join(cells) + " | ns/sample/lane (16×256) | parameters from |")
        print("|---|" + "---:|" * len(CONFIGS) + "---:|---|")
    else:
        print("48 kHz, CPU time per process() call (best of 5); ns/s = ns per sample per lane at 16x256")
        print(f"{'type':22} " + " ".join(f"{c:>12}" for c in cells) + f" {'ns/s':>7}  parameters from")
    for name in types:
        params, patch_dir, source = shipped.get(name, ({}, ROOT, "defaults"))
        times, lanes_run = [], []
        for lanes, block in CONFIGS:
            run, real_lanes = node_runner(name, registry.node_class(name), params, patch_dir, lanes, block)
            times.append(per_block(run, args.blocks) * 1e6)
            lanes_run.append(real_lanes)
        ns = times[-1] * 1e3 / (lanes_run[-1] * CONFIGS[-1][1])
        fixed = (
            ""
            if lanes_run == [c[0] for c in CONFIGS]
            else f" (always {lanes_run[0]} lane{'s' if lanes_run[0] > 1 else ''})"
        )
        if args.markdown:
            print(f"| `{name}` | " + " | ".join(f"{t:.2f}" for t in times) + f" | {ns:.1f} | {source}{fixed} |")
        else:
            print(f"{name:22} " + " ".join(f"{t:12.2f}" for t in times) + f" {ns:7.1f}  {source}{fixed}")


if __name__ == "__main__":
    main()
