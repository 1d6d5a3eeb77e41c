"""onnx.model's overhead over a bare onnxruntime IOBinding loop, per model, in one run.

    python benchmarks/onnx_overhead.py [--block 128] [--units 400]

For each model (the shipped flute decoder at 1 and 8 lanes, the drive's GRU amp, and the seven
models of the signature zoo in tests/onnx_zoo.py, built into a temporary folder), the node is
prepared as the engine prepares it (its own output buffers, ``bind`` with the plan's port arrays)
and driven block by block; the baseline runs the same bound model the
same number of times (one call per lane for per-lane models, through the same C++ entry point
the node uses) with nothing else: no port copies,
no casts, no state feedback, no rings (``/ bare``); and, for stream and frame rates, a hand-written
streaming loop doing the same job block by block (``/ loop``: one copy in and out per tensor per
block, the run, state feedback, the context shift). ratio = node time / baseline time per call, medians
of units timed one after the other (see ``measure``). Read the ratios, not the microseconds.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from neuralgraph.plugin import Ports, PrepareContext, Rate
from neuralgraph_plugins.onnx_model import OnnxModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def prepared(params: dict, lanes: int, block: int, sr: float, values: dict[str, float]):
    """A node prepared and bound as in a plan, and its per-block runner."""
    node = OnnxModel(**params)
    node.prepare(PrepareContext(sample_rate=sr, block_size=block, lanes=lanes, input_lanes={}, output_lanes={}))
    rng = np.random.default_rng(0)

    def width(d: Any) -> int:
        return 1 if d.rate is Rate.CONTROL else block

    ins = Ports(
        {
            p: (values.get(p, 0.1) + 0.05 * rng.standard_normal((lanes, width(d)))).astype(np.float32)
            for p, d in node.inputs().items()
        }
    )
    own = node.output_buffers()
    outs = Ports(
        own if own is not None else {p: np.zeros((lanes, width(d)), np.float32) for p, d in node.outputs().items()}
    )
    node.bind(ins, outs)
    return node, (lambda: node.process(ins, outs, block))


def streaming_loop(node: OnnxModel, block: int):
    """The loop a user writes by hand with onnxruntime for the same stream (no neuralgraph): per
    block, the block's samples copied (cast) into the bound window and the current output copied
    out, one copy per tensor; per call, the model run, the state fed back and the context shifted."""
    mm, slot, hop, context, lanes = node.map, node.slots[0], node.hop, node.context, node.lanes
    run, bindings = node._session.run_with_iobinding, node.io_bindings
    ins = [(slot.views[tm.name], np.full((lanes, 1, block), 0.1, np.float32)) for tm in mm.inputs if tm.role == "audio"]
    outs = [
        (slot.views[tm.name], np.zeros((lanes, tm.features, block), np.float32))
        for tm in mm.outputs
        if tm.role in ("audio", "control")
    ]
    scratch = [np.zeros_like(view[..., :context]) for view, _ in ins]
    states, pos = node.states, [0]

    def step() -> None:
        done = 0
        while done < block:
            p = pos[0]
            n = min(hop - p, block - done)
            for view, src in ins:
                np.copyto(view[..., context + p : context + p + n], src[..., done : done + n], casting="unsafe")
            for view, dst in outs:
                np.copyto(
                    dst[..., done : done + n], view[..., :n] if view.shape[2] >= n else view[..., :1], casting="unsafe"
                )
            pos[0] = p = p + n
            done += n
            if p == hop:
                for binding in bindings:
                    run(binding)
                for state_in, state_out in states:
                    np.copyto(state_in, state_out)
                if context:
                    for (view, _), tmp in zip(ins, scratch):
                        np.copyto(tmp, view[..., hop:])
                        np.copyto(view[..., :context], tmp)
                pos[0] = 0

    return step


def measure(node: OnnxModel, step, block: int, units: int) -> tuple[float, float, float, int]:
    """Median seconds per model call of (node, bare calls, hand-written loop), and calls per unit.

    A unit is the fewest blocks that hold a whole number of calls (1 block at block and stream
    rates; 5 blocks of 128 = 4 calls of a 160-sample hop). The three are timed one unit after the
    other, ``units`` times, and each median is taken: on a loaded machine a preempted unit is an
    outlier the median ignores, and all three see the same load."""
    blocks = node.hop // math.gcd(node.hop, block) if node.rate == "frame" else 1
    calls = blocks * block // node.hop if node.rate == "frame" else 1
    # the bare calls go through the same C++ entry the node uses (onnxruntime's public
    # run_with_iobinding adds about a microsecond of Python checks per call, which the node skips:
    # timed against it, the node would look cheaper than it is)
    run, bindings = node._run, node.bindings
    by_hand = streaming_loop(node, block) if node.rate != "block" else None

    def bare() -> None:
        for _ in range(calls):
            for binding in bindings:
                run(binding, None)

    def loop() -> None:
        for _ in range(blocks):
            by_hand()

    def framework() -> None:
        for _ in range(blocks):
            step()

    fns = (framework, bare, loop) if by_hand is not None else (framework, bare)
    times = np.zeros((len(fns), units))
    for u in range(-20, units):  # 20 units of warm-up
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            if u >= 0:
                times[i, u] = time.perf_counter() - t0
    med = [float(np.median(t)) / calls for t in times]
    return med[0], med[1], med[2] if by_hand is not None else med[1], calls


def cases(tmp: Path) -> list[tuple[str, dict, int, dict[str, float], float]]:
    from onnx_zoo import SR, ZOO

    flute = str(ROOT / "graphs" / "models" / "ddsp_flute.onnx")
    amp = str(ROOT / "graphs" / "models" / "amp_gru.onnx")
    out = [
        ("flute (block, 1 lane)", {"model": flute}, 1, {"f0": 440.0, "loudness": -30.0}, 48000.0),
        ("flute (block, 8 lanes)", {"model": flute}, 8, {"f0": 440.0, "loudness": -30.0}, 48000.0),
        ("drive amp_gru (stream, 1 lane)", {"model": amp, "rate": "stream"}, 1, {}, 48000.0),
    ]
    for entry in ZOO:
        table = tomllib.loads("[nodes.net]\n" + entry.node)["nodes"]["net"]
        params = {k: v for k, v in table.items() if k in OnnxModel.params()}
        values = {k: float(v) for k, v in table.items() if k not in OnnxModel.params()}
        params["model"] = str(entry.build(tmp / f"{entry.name}.onnx"))
        out.append(
            (
                f"zoo {entry.name} ({params.get('rate', 'block')}, {entry.lanes} lanes)",
                params,
                entry.lanes,
                values,
                float(SR),
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--units", type=int, default=400, help="timed units per model (see measure)")
    args = ap.parse_args()
    print(
        f"{'model':<36} {'calls':>6} {'node us/call':>13} {'bare us/call':>13} {'loop us/call':>13} "
        f"{'/ bare':>7} {'/ loop':>7}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, params, lanes, values, sr in cases(Path(tmp)):
            node, step = prepared(params, lanes, args.block, sr, values)
            ours, bare, loop, calls = measure(node, step, args.block, args.units)
            print(
                f"{name:<36} {calls:>6} {1e6 * ours:>13.1f} {1e6 * bare:>13.1f} "
                f"{1e6 * loop:>13.1f} {ours / bare:>7.2f} {ours / loop:>7.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
