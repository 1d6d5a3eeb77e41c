"""Xruns and callback lengths during structural swaps of a large patch playing on a JACK server.

    JACK_DEFAULT_SERVER=bench bash .ci/start-audio-servers.sh   # a server of your own, named bench
    python benchmarks/swap_xruns.py --server bench [--nodes 1000] [--swaps 10] [--unprioritized]

Plays benchmarks/compile_scaling.py's chain of ``--nodes`` nodes through the jack backend (use a
server of your own: on a shared one, other clients' xruns are counted too) and swaps in
``--swaps`` structural edits in a row (one link added at the end, then removed again: each
compiles a new plan, copies the kept nodes' state and crossfades over 50 ms). Then it plays
unswapped for as long. Printed: xruns in each run, and the callback's longest and 99th
percentile length as a share of the period over both runs. ``--unprioritized`` does the swaps
without :func:`~neuralgraph._io.backend.control_priority` (at the caller's normal priority, on
any CPU; the audio thread is pinned either way), for comparison in the same session.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("JACK_NO_START_SERVER", "1")

from compile_scaling import patch_data  # noqa: E402
from swap_cost import variant  # noqa: E402

import neuralgraph as ng  # noqa: E402


def hold(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="the JACK server's name")
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--swaps", type=int, default=10)
    parser.add_argument("--unprioritized", action="store_true", help="swap at normal priority, on any CPU")
    args = parser.parse_args()
    if args.unprioritized:
        import neuralgraph._runtime.swap as swap_module

        swap_module.control_priority = contextlib.nullcontext  # type: ignore[assignment]
    n = args.nodes
    patches = [ng.load_patch(variant(n, k, True), max_nodes=n + 10) for k in range(args.swaps)]
    base = ng.load_patch(patch_data(n), max_nodes=n + 10)
    player = ng.play(base, backend="jack", connect=False, client_name="ng_swap_bench", server=args.server)
    try:
        hold(1.0)  # activation settles; the audio thread is pinned by then
        xruns0, t0 = player.status().xruns, time.monotonic()
        for patch in patches:
            player.engine.swap(patch, fade=0.05)
        while player.engine._swap is not None:
            time.sleep(0.002)
        swap_s = time.monotonic() - t0
        xruns1 = player.status().xruns
        hold(swap_s)
        status = player.status()
    finally:
        player.stop()
    print(
        f"{n} nodes, {args.swaps} structural swaps in {swap_s:.2f} s"
        f" ({'normal priority' if args.unprioritized else 'control_priority'}): "
        f"{xruns1 - xruns0} xruns; unswapped as long: {status.xruns - xruns1} xruns; "
        f"callback max {status.load_max:.2f} p99 {status.load_p99:.2f} of the period"
    )


if __name__ == "__main__":
    main()
