"""P1's and P2's node kernels beside another checkout's, same process, same inputs.

    python benchmarks/kernel_ab.py --against OTHER_CHECKOUT [--rounds 9] [--calls 20000]

For each case (P1's saw: 8 lanes at P1's frequencies; P1's lowpass: 8 lanes of saw-like input at
1.2 kHz, Q 2; P2's sines: 32 lanes at a constant frequency and 32 FM carriers; P2's
``voices.sum`` of 32 lanes; and a modulated saw, the sample-by-sample path), the node of this
checkout's ``plugins/`` and the same node of ``OTHER_CHECKOUT/plugins/`` are prepared at 48 kHz, block 64, and their kernels (``node.kernel``:
whatever arguments each version takes) are called from a compiled loop, in interleaved rounds
(process time, minimum per round). Prints µs per block of each, the ratio (other / this: above 1
is faster here), and the largest output difference over 300 blocks, compared first. On a shared
machine the ratio is the figure to quote.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path
from types import ModuleType

# Modules loaded from a path cannot reload numba's on-disk cache: compile into a fresh folder.
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="kernel_ab_")

import numpy as np  # noqa: E402

from neuralgraph.plugin import Ports, PrepareContext  # noqa: E402

HERE = Path(__file__).resolve().parent.parent
RATE, BLOCK = 48000.0, 64
P1_FREQS = 110.0 * 2.0 ** (np.arange(8) / 4.0)
P2_FREQS = 100.0 + 25.0 * np.arange(32)


def load(checkout: Path, name: str, tag: str) -> ModuleType:
    """``plugins/<name>.py`` of ``checkout`` as a module of its own."""
    spec = importlib.util.spec_from_file_location(f"kernel_ab_{tag}_{name}", checkout / "plugins" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def saw_input(freqs: np.ndarray, blocks: int, modulated: bool) -> dict[str, np.ndarray]:
    f = np.repeat(freqs[None, :, None], blocks, 0) * np.ones((1, 1, BLOCK))
    if modulated:
        f *= 1.0 + 0.1 * np.random.default_rng(0).uniform(-1, 1, f.shape)
    return {"freq": f.astype(np.float32), "sync": np.zeros(f.shape, np.float32)}


def fm_input(blocks: int) -> dict[str, np.ndarray]:
    t = np.arange(blocks * BLOCK) / RATE
    f = P2_FREQS[:, None] * (1.0 + 3.0 * np.sin(2 * np.pi * 1.5 * P2_FREQS[:, None] * t))
    f = f.reshape(len(P2_FREQS), blocks, BLOCK).transpose(1, 0, 2)
    return {"freq": f.astype(np.float32), "sync": np.zeros(f.shape, np.float32)}


def svf_input(blocks: int) -> dict[str, np.ndarray]:
    x = np.random.default_rng(1).uniform(-1, 1, (blocks, 8, BLOCK)).astype(np.float32)
    return {"in_": x, "cutoff": np.full(x.shape, 1200.0, np.float32), "q": np.full(x.shape, 2.0, np.float32)}


CASES = {
    "P1 saw, 8 lanes": ("oscillators", "SawOsc", lambda n: saw_input(P1_FREQS, n, False)),
    "saw, 16 modulated lanes": ("oscillators", "SawOsc", lambda n: saw_input(np.full(16, 440.0), n, True)),
    "P1 lowpass, 8 lanes": ("filters", "Lowpass", svf_input),
    "P2 sine, 32 constant lanes": ("oscillators", "SineOsc", lambda n: saw_input(P2_FREQS, n, False)),
    "P2 sine, 32 FM carriers": ("oscillators", "SineOsc", fm_input),
    "P2 voices.sum, 32 lanes": ("midi", "VoiceSum", lambda n: {"in_": fm_input(n)["freq"] / 1000.0}),
}


class Case:
    """One version's node, prepared, with its kernel bound to input and output rows."""

    def __init__(self, module: ModuleType, cls_name: str, inputs: dict[str, np.ndarray]) -> None:
        lanes = next(iter(inputs.values())).shape[1]
        self.node = getattr(module, cls_name)()
        names = list(self.node.inputs())
        out_lanes = self.node.output_lanes(lanes)["out"]  # voices.sum: one
        self.node.prepare(
            PrepareContext(
                sample_rate=RATE,
                block_size=BLOCK,
                lanes=lanes,
                input_lanes={p: lanes for p in names},
                output_lanes={"out": out_lanes},
            )
        )
        self.inputs = inputs
        self.ins = {name: np.zeros((lanes, BLOCK), np.float32) for name in names}
        self.out = np.zeros((out_lanes, BLOCK), np.float32)
        self.kernel, self.args = self.node.kernel(Ports(self.ins), Ports({"out": self.out}))
        self.kernel = getattr(self.kernel, "realised", lambda: self.kernel)()

    def render(self) -> np.ndarray:
        blocks = next(iter(self.inputs.values())).shape[0]
        rendered = np.zeros((blocks, *self.out.shape), np.float32)
        for b in range(blocks):
            for name, rows in self.ins.items():
                rows[:] = self.inputs[name][b] if name in self.inputs else 0.0
            self.kernel(*self.args, BLOCK)
            rendered[b] = self.out
        return rendered


def compiled_loop():
    from numba import njit

    @njit
    def loop(calls, kernel, args):  # pragma: no cover - compiled
        for _ in range(calls):
            kernel(*args, BLOCK)

    return loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, type=Path, help="another checkout (its plugins/ folder)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=20000)
    opts = parser.parse_args()
    loop = compiled_loop()
    print("case | other µs/block | this µs/block | other / this | largest output difference")
    for label, (module_name, cls_name, make) in CASES.items():
        inputs = make(300)
        versions = {
            tag: Case(load(root, module_name, tag), cls_name, inputs)
            for tag, root in (("other", opts.against), ("this", HERE))
        }
        diff = float(np.abs(versions["other"].render().astype(np.float64) - versions["this"].render()).max())
        best = {tag: float("inf") for tag in versions}
        for _ in range(opts.rounds):
            for tag, case in versions.items():
                t0 = time.process_time()
                loop(opts.calls, case.kernel, case.args)
                best[tag] = min(best[tag], (time.process_time() - t0) / opts.calls * 1e6)
        print(f"{label} | {best['other']:.3f} | {best['this']:.3f} | {best['other'] / best['this']:.2f} | {diff:.2g}")


if __name__ == "__main__":
    main()
