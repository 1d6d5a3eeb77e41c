"""What the Python around a plan costs per block, offline: each path beside the compiled work alone.

    python benchmarks/offline_paths.py [PATCH ...] [--blocks 20000] [--repeats 3]

For each patch (default: the per-voice P1-P3 of ``graphs/bench/per_voice``) at block 64, process
time per block, best of ``--repeats``, of: the fused runs' compiled functions called directly
(the work itself: the baseline), ``Plan.run_block`` (adds the step loop and the output guard),
``Engine.process``, ``Engine.stream`` (one block per iteration), ``Engine.stream_chunks`` (many
blocks per compiled call, ``_compile/driver.py``) and ``render_to_file`` into a WAV file. Each
figure is printed with its ratio to the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import neuralgraph as ng
from neuralgraph._tools.render_file import check_target, render_to_file

ROOT = Path(__file__).resolve().parent.parent
RATE, BLOCK = 48000, 64


def per_block(run: Callable[[], None], blocks: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        run()
        best = min(best, time.process_time() - t0)
    return 1e6 * best / blocks


def paths(engine: ng.Engine, blocks: int, wav: Path) -> dict[str, Callable[[], None]]:
    runs = [r.state for r in engine.plan.records if r.kind == "fused"]
    seconds = blocks * BLOCK / RATE

    def kernels() -> None:
        for _ in range(blocks):
            for run in runs:
                run.kernel(run.addresses, BLOCK)

    def loop(step: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(blocks):
                step()

        return run

    def drain(items: object) -> None:
        for _ in items:  # type: ignore[attr-defined]
            pass

    return {
        "fused functions alone": kernels,
        "Plan.run_block": loop(engine.plan.run_block),
        "Engine.process": loop(engine.process),
        "Engine.stream": lambda: drain(engine.stream(seconds)),
        "Engine.stream_chunks": lambda: drain(engine.stream_chunks(seconds)),
        "render_to_file (WAV)": lambda: render_to_file(engine, check_target(wav), seconds) and None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "patches", nargs="*", type=Path, default=sorted((ROOT / "graphs" / "bench" / "per_voice").glob("p*.toml"))
    )
    ap.add_argument("--blocks", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for patch in a.patches:
            engine = ng.Engine(ng.load_patch(patch), sample_rate=RATE, block_size=BLOCK)
            engine.render(1.0)  # compile or load every function first
            print(f"{patch.name}: µs per block (ratio to the fused functions alone)")
            base = None
            for name, run in paths(engine, a.blocks, Path(tmp) / "out.wav").items():
                us = per_block(run, a.blocks, a.repeats)
                base = base or us
                print(f"  {name:<22} {us:7.2f}  ({us / base:.2f}x)")


if __name__ == "__main__":
    main()
