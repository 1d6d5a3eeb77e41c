"""What a live swap costs: compile time off the audio thread, and time inside the audio callback.

    python benchmarks/swap_cost.py [--sizes 50 1000] [--repeats 10] [--block 256]

For each size the patch is benchmarks/compile_scaling.py's chain (sines into ``math.mul`` links,
with fan-in, mix steps and buffer reuse). Two kinds of swap:

- values: no new plan at all: each change goes through ``Engine.set`` (ramps, smoothing);
- structure: one link is added at the end, then removed again (alternately): a new plan is
  compiled, the kept nodes' state is copied over in the callback, and both plans run during the
  fade.

Printed per size: ``Engine.swap`` on the calling thread (median; parse is not included: the patch
is loaded before), of which compiling the new engine; then the in-callback side as minimums over
``--repeats`` (the runs least disturbed by other processes): a plain block of the patch; the
switch itself, timed alone (the state transfer of the kept nodes and the plan handover, which the
audio thread does before it runs the switch block) and as a share of the period; the switch
block (the switch plus the first block of both plans) and a block during the fade (both plans
run), each also as a ratio to the plain block measured in the same run. The garbage collector
is held off for the switch block, as ``RealtimeGuard`` does when playing.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compile_scaling import patch_data  # noqa: E402

import neuralgraph as ng  # noqa: E402

SR = 48000


def variant(n: int, k: int, structural: bool) -> dict:
    data = patch_data(n)
    nodes = data["nodes"]
    if structural and k % 2 == 0:  # one more link before the output: a node added, connections changed
        last = nodes["out"]["in"]
        nodes["extra"] = {"type": "math.mul", "in": last, "gain": 0.5}
        nodes["out"]["in"] = "extra"
    elif not structural:
        nodes["m0"]["gain"] = 0.5 + 0.01 * (k + 1)  # only a value: state carried, no fade
    return data


def block_ns(engine: ng.Engine, blocks: int = 30) -> float:
    times = []
    for _ in range(blocks):
        t0 = time.perf_counter_ns()
        engine.process()
        times.append(time.perf_counter_ns() - t0)
    return min(times)


def measure(n: int, repeats: int, block: int, structural: bool) -> dict[str, float]:
    base = ng.load_patch(patch_data(n), max_nodes=n + 10)
    engine = ng.Engine(base, SR, block)
    patches = [ng.load_patch(variant(n, k, structural), max_nodes=n + 10) for k in range(repeats + 1)]
    swap_s, compile_s, switch_ns, block_ns_, plain_ns, fade_ns = [], [], [], [], [], []
    for k in range(repeats):
        plain_ns.append(block_ns(engine))
        t0 = time.perf_counter()
        report = engine.swap(patches[k] if structural or k % 2 else patches[k + 1], fade=0.02)
        swap_s.append(time.perf_counter() - t0)
        compile_s.append(report.compile_s)
        gc.collect()  # as RealtimeGuard does when playing: no collection of the swap's garbage lands here
        gc.disable()
        t0 = time.perf_counter_ns()
        switch = engine._swap
        if switch is not None:  # a new plan: the switch alone, as the switch block starts with it
            switch._switch(engine)
        t1 = time.perf_counter_ns()
        engine.process()  # the rest of the switch block
        t2 = time.perf_counter_ns()
        gc.enable()
        switch_ns.append(t1 - t0)
        block_ns_.append(t2 - t0)
        if structural:
            fade_ns.append(block_ns(engine, max(1, int(0.02 * SR) // block - 1)))
        block_ns(engine, 10)  # let the fade end
        engine.collect()
    period_ns = block / SR * 1e9
    plain = min(plain_ns)  # minimum: on a loaded machine, the run least disturbed by other processes
    return {
        "swap_ms": statistics.median(swap_s) * 1e3,
        "compile_ms": statistics.median(compile_s) * 1e3,
        "plain_us": plain / 1e3,
        "switch_us": min(switch_ns) / 1e3,
        "switch_share": min(switch_ns) / period_ns,
        "switch_block_us": min(block_ns_) / 1e3,
        "switch_block_ratio": min(block_ns_) / plain,
        "fade_block_us": min(fade_ns) / 1e3 if fade_ns else 0.0,
        "fade_ratio": min(fade_ns) / plain if fade_ns else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 1000])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--block", type=int, default=256)
    args = parser.parse_args()
    period_us = args.block / SR * 1e6
    print(f"block {args.block} at {SR} Hz: period {period_us:.0f} µs")
    print(
        f"{'nodes':>6} {'kind':<10} {'swap ms':>8} {'compile':>8} {'plain µs':>9} {'switch µs':>10} "
        f"{'of period':>9} {'switch block':>13} {'fade block':>13}"
    )
    for n in args.sizes:
        for structural in (False, True):
            r = measure(n, args.repeats, args.block, structural)
            fade = f"{r['fade_block_us']:7.0f} {r['fade_ratio']:4.1f}x" if structural else f"{'—':>13}"
            # a values-only swap has no switch: its block applies queued sets, as after Engine.set
            switch = f"{r['switch_us']:10.1f} {r['switch_share'] * 100:8.1f}%" if structural else f"{'—':>10} {'—':>9}"
            print(
                f"{n:>6} {'structure' if structural else 'values':<10} {r['swap_ms']:8.1f} {r['compile_ms']:8.1f} "
                f"{r['plain_us']:9.1f} {switch} "
                f"{r['switch_block_us']:7.0f} {r['switch_block_ratio']:4.1f}x {fade}"
            )


if __name__ == "__main__":
    main()
