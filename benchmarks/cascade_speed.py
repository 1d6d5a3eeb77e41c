"""Series chains run as one cascade call beside the same fused run calling its members one by one.

    python benchmarks/cascade_speed.py [PATCH ...] [--block 64] [--blocks 5000] [--rounds 7]

For each patch (default: both forms of P3, ``graphs/bench/p3_peq.toml`` and its per-voice copy),
two engines are built in one process: one with the fused runs' chains (``_compile/chains.py``:
the 20 biquads of P3 in one skewed cascade call), one with the same fused runs calling every
member's kernel in turn. The fused functions alone are timed (process time) in interleaved rounds,
and the median µs per block of each and their ratio are printed: on a shared machine the ratio is
the figure to quote. The two engines' outputs are compared too (they must be equal, bit for bit).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import neuralgraph as ng
import neuralgraph._compile.fusion as fusion

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = [ROOT / "graphs" / "bench" / "p3_peq.toml", ROOT / "graphs" / "bench" / "per_voice" / "p3_peq.toml"]


def engine(patch: ng.Patch, block: int, chains: bool) -> ng.Engine:
    saved = fusion.chained
    if not chains:
        fusion.chained = list  # the members' kernels, one call each
    try:
        return ng.Engine(patch, sample_rate=48000, block_size=block)
    finally:
        fusion.chained = saved


def fused_steps(e: ng.Engine) -> list[fusion.FusedStep]:
    found = [getattr(p, "__self__", None) for p, _, _ in e.plan.steps]
    return [s for s in found if isinstance(s, fusion.FusedStep)]


def timed(steps: list[fusion.FusedStep], block: int, blocks: int) -> float:
    t = time.process_time()
    for _ in range(blocks):
        for s in steps:
            s.kernel(s.addresses, block)
    return (time.process_time() - t) / blocks * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("patches", nargs="*", type=Path, default=DEFAULT)
    ap.add_argument("--block", type=int, default=64)
    ap.add_argument("--blocks", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    for path in a.patches:
        patch = ng.load_patch(path)
        both = {"cascade": engine(patch, a.block, True), "separate": engine(patch, a.block, False)}
        same = np.array_equal(*(e.render(0.5) for e in both.values()))
        steps = {k: fused_steps(e) for k, e in both.items()}
        times: dict[str, list[float]] = {k: [] for k in both}
        for _ in range(a.rounds):
            for k in both:
                times[k].append(timed(steps[k], a.block, a.blocks))
        cascade, separate = (float(np.median(times[k])) for k in ("cascade", "separate"))
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: fused functions alone, "
            f"µs per block at block {a.block}: separate calls {separate:.2f}, cascade {cascade:.2f} "
            f"({separate / cascade:.2f}x); outputs equal: {same}"
        )


if __name__ == "__main__":
    main()
