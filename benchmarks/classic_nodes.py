"""Cost per block of the oscillator, noise and filter nodes, at 1 and 16 lanes, blocks 64 and 256.

    python benchmarks/classic_nodes.py [--blocks 2000] [--types osc.sine,filter.lowpass]

Each node is prepared on its own at 48 kHz and its ``process`` called directly (no engine), with
audio inputs at their defaults modulated by ±10 % (so coefficient recomputation paths run) and
control inputs constant. Prints CPU µs per block (best of 5) and ns per sample per lane. It
also times the sine the old way (numpy cumsum phase + np.sin) against the table kernel now used.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from timing import per_block

import neuralgraph as ng
from neuralgraph.plugin import Ports, PrepareContext, Rate


def classic_types() -> list[str]:
    """The built-in oscillator, noise and filter types (``neuralgraph_plugins``), sorted."""
    registry = ng.Registry.load()
    return sorted(
        name
        for name, t in registry.node_types.items()
        if name.split(".")[0] in ("osc", "noise", "filter") and t.cls.__module__.startswith("neuralgraph_plugins.")
    )


def node_runner(cls: type, lanes: int, block: int):
    node = cls()
    inputs = node.inputs()
    node.prepare(
        PrepareContext(
            sample_rate=48000.0,
            block_size=block,
            lanes=lanes,
            input_lanes={p: lanes for p in inputs},
            output_lanes={p: lanes for p in node.outputs()},
        )
    )
    rng = np.random.default_rng(0)
    arrays = {}
    for name, decl in inputs.items():
        width = 1 if decl.rate is Rate.CONTROL else block
        if name == "in":
            arrays[name] = rng.uniform(-1, 1, (lanes, width)).astype(np.float32)
        else:
            arrays[name] = (decl.init * (1 + 0.1 * rng.uniform(-1, 1, (lanes, width)))).astype(np.float32)
    ins = Ports(arrays)
    outs = Ports({name: np.zeros((lanes, block), np.float32) for name in node.outputs()})
    return lambda: node.process(ins, outs, block)


def numpy_sine(lanes: int, block: int):
    """The sine as it was: float64 cumsum phase accumulator, then np.sin into the output."""
    freq = np.full((lanes, block), 440.0, np.float32)
    ramp = np.zeros((lanes, block))
    phase = np.zeros((lanes, 1))
    out = np.zeros((lanes, block), np.float32)

    def run() -> None:
        np.multiply(freq, 1 / 48000, out=ramp)
        np.cumsum(ramp, axis=1, out=ramp)
        np.add(ramp, phase, out=ramp)
        np.remainder(ramp, 1.0, out=ramp)
        np.copyto(phase, ramp[:, -1:])
        np.multiply(ramp, 2 * math.pi, out=ramp)
        np.sin(ramp, out=out)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=2000)
    parser.add_argument("--types", default=",".join(classic_types()))
    args = parser.parse_args()
    registry = ng.Registry.load()
    configs = [(1, 64), (1, 256), (16, 64), (16, 256)]
    header = " ".join(f"{f'{lanes}x{block} µs':>12} {'ns/s':>6}" for lanes, block in configs)
    print("48 kHz, CPU time per process() call (best of 5); ns/s = ns per sample per lane")
    print(f"{'type':18} {header}")
    rows = [
        (name, lambda lanes, block, name=name: node_runner(registry.node_class(name), lanes, block))
        for name in args.types.split(",")
    ]
    rows.append(("(numpy sine, old)", numpy_sine))
    for name, make in rows:
        cells = []
        for lanes, block in configs:
            t = per_block(make(lanes, block), args.blocks)
            cells.append(f"{t * 1e6:12.2f} {t / (lanes * block) * 1e9:6.1f}")
        print(f"{name:18} {' '.join(cells)}")


if __name__ == "__main__":
    main()
