"""A patch's whole fused functions with this checkout's node kernels beside another checkout's.

    python benchmarks/fused_ab.py --against OTHER_CHECKOUT PATCH [PATCH ...] [--rounds 9] [--calls 20000]

Builds each patch at 48 kHz, block 64, with this checkout, generates the source of every fused
run (``_compile/fusion.py``), and compiles it twice in this process: as it is, and with each
``neuralgraph_plugins.X`` import taken from ``OTHER_CHECKOUT/plugins/X.py`` instead. Both
versions run on the same arrays, called from a compiled loop in interleaved rounds (process
time, minimum per round), and the figure printed is µs per block of each and their ratio (other
/ this: above 1 is faster here). The plan (fusion, grouping, buffers) is this checkout's in both:
only the kernels differ (the other version's source goes into the kernel cache under its own
digest, like any generated run). On a loaded machine this resolves a few percent where separate
processes (``benchmarks/peers.py``, ``neuralgraph bench``) move by tens of percent.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Modules loaded from a path cannot reload numba's on-disk cache: compile into a fresh folder.
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="fused_ab_")

import numpy as np  # noqa: E402

import neuralgraph as ng  # noqa: E402
from neuralgraph._compile.fusion import SIGNATURE, FusedStep, generate, grouped, table  # noqa: E402
from neuralgraph._nodes import aot  # noqa: E402

IMPORT = re.compile(r"^from neuralgraph_plugins\.(\w+) import", re.MULTILINE)


def other_source(text: str, plugins: Path) -> str:
    """``text`` importing every plugin kernel from ``plugins/`` (loaded as ``fused_ab_other_X``)."""

    def swap(match: re.Match[str]) -> str:
        name = f"fused_ab_other_{match.group(1)}"
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(name, plugins / f"{match.group(1)}.py")
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        return f"from {name} import"

    return IMPORT.sub(swap, text)


def runs(patch: Path, plugins: Path) -> list[tuple[Any, Any, np.ndarray, list[np.ndarray]]]:
    """Per fused run of the patch: this version, the other, their address array, the arrays."""
    engine = ng.Engine(ng.load_patch(patch), sample_rate=48000, block_size=64)
    found = []
    for step, _, _ in engine.plan.steps:
        fused = getattr(step, "__self__", None)
        if isinstance(fused, FusedStep):
            text, arrays, sizes = generate(grouped(fused._kernels), fused.progress)
            addresses = table(arrays, sizes)
            other = aot.jit(other_source(text, plugins), SIGNATURE)
            found.append((aot.jit(text, SIGNATURE), other, addresses, arrays))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, type=Path, help="another checkout (its plugins/ folder)")
    parser.add_argument("patches", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=20000)
    opts = parser.parse_args()
    from numba import njit

    @njit
    def loop(function, addresses, calls):  # pragma: no cover - compiled
        for _ in range(calls):
            function(addresses, 64)

    print("patch | other µs/block | this µs/block | other / this | fused runs")
    for patch in opts.patches:
        found = runs(patch, opts.against / "plugins")
        best = {"other": float("inf"), "this": float("inf")}
        for this, other, addresses, _ in found:
            loop(this, addresses, 10)
            loop(other, addresses, 10)
        for _ in range(opts.rounds):
            for tag in best:
                t0 = time.process_time()
                for this, other, addresses, _ in found:
                    loop(other if tag == "other" else this, addresses, opts.calls)
                best[tag] = min(best[tag], (time.process_time() - t0) / opts.calls * 1e6)
        ratio = best["other"] / best["this"]
        print(f"{patch} | {best['other']:.3f} | {best['this']:.3f} | {ratio:.3f} | {len(found)}")


if __name__ == "__main__":
    main()
