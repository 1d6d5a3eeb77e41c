"""Start-up: from launching ``neuralgraph render`` to the first block, cold and warm numba cache.

    python benchmarks/startup.py [PATCH ...] [--runs 3]

Each run is a fresh interpreter that does what ``neuralgraph render`` does before rendering:
import the CLI, ``load_patch`` (plugin loading, parsing, analysis), ``Engine`` (compile,
prepare, and the warm-up block, where numba kernels are compiled or loaded from the cache).
The phases are stamped with ``time.perf_counter`` (CLOCK_MONOTONIC, shared by parent and
child), from the moment the parent launches the child. "cold" points ``NUMBA_CACHE_DIR`` and
``NEURALGRAPH_CACHE_DIR`` (fused kernels) at an empty directory (every kernel compiles); "warm" runs again with the same directory (every
kernel loads from disk). Prints the median of ``--runs`` runs per phase.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
stamps = {}
import neuralgraph._tools.cli
stamps["import"] = time.perf_counter()
from neuralgraph import load_patch
from neuralgraph import Engine
patch = load_patch(sys.argv[1])
stamps["load_patch"] = time.perf_counter()
engine = Engine(patch)  # compiles, prepares and runs the first (warm-up) block
stamps["first block"] = time.perf_counter()
print(json.dumps(stamps))
"""

PHASES = ("import", "load_patch", "first block")


def run_once(patch: Path, cache_dir: str) -> dict[str, float]:
    # the generated fused kernels (neuralgraph/_compile/fusion.py) are cached beside numba's
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, NEURALGRAPH_CACHE_DIR=cache_dir)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(patch)], capture_output=True, text=True, env=env,
                          check=True)
    stamps = json.loads(proc.stdout.strip().splitlines()[-1])
    return {k: v - t0 for k, v in stamps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patches", nargs="*", type=Path,
                        default=[ROOT / "graphs" / "bench" / "p1_saw_filter.toml",
                                 ROOT / "graphs" / "subtractive.toml"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print("seconds from launch to the end of each phase (median of runs)")
    print(f"{'patch':<22} {'cache':<5} " + " ".join(f"{p:>12}" for p in PHASES))
    for patch in args.patches:
        for label in ("cold", "warm"):
            results = []
            for _ in range(args.runs):
                with tempfile.TemporaryDirectory() as fresh:
                    if label == "cold":
                        results.append(run_once(patch, fresh))
                    else:
                        run_once(patch, fresh)  # fill the cache
                        results.append(run_once(patch, fresh))
            medians = [statistics.median(r[p] for r in results) for p in PHASES]
            print(f"{patch.name:<22} {label:<5} " + " ".join(f"{m:>12.3f}" for m in medians), flush=True)


if __name__ == "__main__":
    main()
