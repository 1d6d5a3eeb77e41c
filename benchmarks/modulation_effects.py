"""Cost per block of the envelope, modulator, mapper, arithmetic, dynamics and effects nodes.

    python benchmarks/modulation_effects.py [--blocks 1000] [--types env.adsr,fx.reverb]

Each node is prepared on its own at 48 kHz, 1 and 16 lanes, blocks 64 and 256, and its
``process`` called directly (no engine). Inputs hold their defaults with ±10 % noise, envelope
gates toggle every 1000 frames, and signal inputs (``in``, ``a``) are noise. A node that imposes
its lane count (``fx.pan`` 1, ``fx.reverb`` 2) runs at that count in every column. Prints CPU µs
per block (best of 5) and ns per sample per lane. The last row times ``control.smooth``'s
one-pole done with scipy's ``lfilter`` instead of the numba kernel, for comparison.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from timing import per_block

import neuralgraph as ng
from neuralgraph.plugin import Ports, PrepareContext, Rate

TYPES = [
    "env.adsr",
    "env.ar",
    "lfo",
    "control.smooth",
    "control.slew",
    "map.range",
    "map.midi_to_hz",
    "map.db_to_gain",
    "map.quantize",
    "map.clamp",
    "math.sub",
    "math.abs",
    "math.min",
    "math.max",
    "fx.gain",
    "fx.pan",
    "fx.waveshape",
    "fx.delay",
    "fx.chorus",
    "fx.reverb",
    "fx.limiter",
]


def node_runner(cls: type, lanes: int, block: int):
    node = cls()
    lanes = node.fixed_lanes() or lanes
    inputs = node.inputs()
    out_lanes = dict(node.output_lanes(lanes))
    node.prepare(
        PrepareContext(
            sample_rate=48000.0,
            block_size=block,
            lanes=lanes,
            input_lanes={p: lanes for p in inputs},
            output_lanes=out_lanes,
        )
    )
    rng = np.random.default_rng(0)
    arrays = {}
    for name, decl in inputs.items():
        width = 1 if decl.rate is Rate.CONTROL else block
        if name == "gate":
            arrays[name] = ((np.arange(block) // 1000) % 2 == 0).astype(np.float32)[None, :].repeat(lanes, 0)
        elif name in ("in", "a", "b"):
            arrays[name] = rng.uniform(-1, 1, (lanes, width)).astype(np.float32)
        else:
            arrays[name] = (decl.init * (1 + 0.1 * rng.uniform(-1, 1, (lanes, width)))).astype(np.float32)
    ins = Ports(arrays)
    outs = Ports({name: np.zeros((out_lanes[name], block), np.float32) for name in node.outputs()})
    return lambda: node.process(ins, outs, block)


def scipy_smooth(lanes: int, block: int):
    """control.smooth done with scipy.signal.lfilter (static coefficients, state carried in zi).

    lfilter returns a new array every call, so besides its cost it would break the no-allocation
    rule; the row is here to show the numba kernel is also the faster."""
    from scipy.signal import lfilter

    coef = 1.0 - math.exp(-1.0 / 960.0)  # 20 ms at 48 kHz, the node's default
    b, a = np.array([coef]), np.array([1.0, coef - 1.0])
    x = np.random.default_rng(0).uniform(-1, 1, (lanes, block)).astype(np.float32)
    out = np.zeros((lanes, block), np.float32)
    zi = [np.zeros((lanes, 1))]

    def run() -> None:
        y, zi[0] = lfilter(b, a, x, axis=1, zi=zi[0])
        np.copyto(out, y)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=1000)
    parser.add_argument("--types", default=",".join(TYPES))
    args = parser.parse_args()
    registry = ng.Registry.load()
    configs = [(1, 64), (1, 256), (16, 64), (16, 256)]
    header = " ".join(f"{f'{lanes}x{block} µs':>12} {'ns/s':>6}" for lanes, block in configs)
    print("48 kHz, CPU time per process() call (best of 5); ns/s = ns per sample per lane")
    print(f"{'type':16} {header}")
    for name in args.types.split(","):
        cls = registry.node_class(name)
        cells = []
        for lanes, block in configs:
            run = node_runner(cls, lanes, block)
            t = per_block(run, args.blocks)
            real_lanes = cls().fixed_lanes() or lanes
            cells.append(f"{t * 1e6:12.2f} {t / (real_lanes * block) * 1e9:6.1f}")
        print(f"{name:16} {' '.join(cells)}")
    cells = []
    for lanes, block in configs:
        t = per_block(scipy_smooth(lanes, block), args.blocks)
        cells.append(f"{t * 1e6:12.2f} {t / (lanes * block) * 1e9:6.1f}")
    print(f"{'(scipy smooth)':16} {' '.join(cells)}")


if __name__ == "__main__":
    main()
