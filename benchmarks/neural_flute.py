"""The 8-voice neural flute's real-time factor, beside another checkout's, in one run.

    python benchmarks/neural_flute.py [--baseline TREE] [--seconds 10] [--repeats 3] [--blocks 128 256]

``graphs/neural_flute.toml`` with ``keys.count = 8`` and 8 notes held (as in bench_patches.py)
is rendered offline for ``--seconds`` at every block size, best of ``--repeats`` by process
time. With ``--baseline TREE`` (a source tree of another commit, e.g. ``git worktree add`` or
``git archive`` of main) the same patch is rendered by that tree's code too, and the two trees
alternate render by render, so both see the same machine load: the ratio is the figure to read.
Each render runs in a fresh process whose ``neuralgraph`` and ``neuralgraph_plugins`` packages
come from the tree (through a temporary folder of links placed first on ``sys.path``); only
the render is timed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATCH = "graphs/neural_flute.toml"
VOICES = 8


def render_cpu(tree: Path, block: int, seconds: float) -> float:
    """Process seconds one render takes with ``tree``'s code (in this process: the worker side)."""
    import time

    import neuralgraph as ng
    from neuralgraph._tools.profiling import hold_notes

    patch = ng.load_patch(tree / PATCH, overrides={"keys.count": VOICES})
    engine = ng.Engine(patch, sample_rate=48000, block_size=block)
    hold_notes(engine, VOICES)
    engine.render(0.5)  # untimed: first blocks, caches
    t0 = time.process_time()
    engine.render(seconds)
    return time.process_time() - t0


def run_worker(tree: Path, block: int, seconds: float) -> float:
    with tempfile.TemporaryDirectory() as links:
        (Path(links) / "neuralgraph").symlink_to(tree / "neuralgraph")
        (Path(links) / "neuralgraph_plugins").symlink_to(tree / "plugins")
        code = (
            f"import sys; sys.path.insert(0, {links!r}); sys.path.insert(1, {str(ROOT / 'benchmarks')!r}); "
            f"import neural_flute; from pathlib import Path; "
            f"print(neural_flute.render_cpu(Path({str(tree)!r}), {block}, {seconds}))"
        )
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=links)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, help="another source tree to render beside this one")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--blocks", type=int, nargs="+", default=[128, 256])
    args = ap.parse_args()
    trees = [("this tree", ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    print(f"{PATCH}, {VOICES} voices, {VOICES} notes held, {args.seconds:g} s per render, best of {args.repeats}")
    print(f"{'block':>5} " + " ".join(f"{name + ' RT':>14}" for name, _ in trees) + (" ratio" if args.baseline else ""))
    for block in args.blocks:
        best = {name: float("inf") for name, _ in trees}
        for _ in range(args.repeats):
            for name, tree in trees:  # alternate: both trees see the same load
                best[name] = min(best[name], run_worker(tree, block, args.seconds))
        rts = [args.seconds / best[name] for name, _ in trees]
        ratio = f" {rts[0] / rts[1]:5.2f}x" if args.baseline else ""
        print(f"{block:>5} " + " ".join(f"{rt:>14.1f}" for rt in rts) + ratio, flush=True)


if __name__ == "__main__":
    main()
