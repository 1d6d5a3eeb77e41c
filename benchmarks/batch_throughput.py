"""Renders per second of a 1-second patch: a shell loop of ``neuralgraph render`` against ``neuralgraph batch``.

    python benchmarks/batch_throughput.py [--renders 200] [--loop 6] [--ray]

Renders graphs/saw_chord.toml for 1 s at 48 kHz over a grid of ``root.freq`` values, each way
end to end (a fresh command, as a user runs it, start-up included):

- ``loop``: one ``neuralgraph render --set root.freq=...`` per render (``--loop`` of them), which
  pays interpreter start-up, plugin loading and compilation every time;
- ``batch --workers 1`` and ``--workers 2``: the same renders from one job file (``--renders``);
- ``--ray``: the job on a 2-CPU Ray head started by tools/ray_loopback.sh (loopback-only
  namespaces; needs root), the driver connecting by address.

Every run shares one warm numba cache (filled first, not timed), so the loop is not charged for
compiling kernels. The ratios are against the loop, measured in the same run; "once started" is
the rate after the first renders (from the times the driver wrote the files), without start-up.
The per-worker figure (one started worker's renders/s, from the renders' own times in the
metadata) gives the estimate for a 100-node Ray cluster printed at the end, with its assumptions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATCH = ROOT / "graphs" / "saw_chord.toml"
NODES, CORES_PER_NODE, DRIVER_MB_S = 100, 16, 100.0  # the cluster estimate's assumptions


def neuralgraph(*args: str, env: dict[str, str]) -> float:
    """Run the command; its wall-clock seconds."""
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "neuralgraph", *args], env=env, capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"neuralgraph {' '.join(args)}:\n{run.stderr}")
    return time.perf_counter() - t0


def freqs(count: int) -> list[float]:
    return [110.0 + 2.0 * i for i in range(count)]


def write_job(folder: Path, count: int) -> Path:
    job = folder / f"job{count}.toml"
    job.write_text(
        f'patch = "{PATCH.as_posix()}"\nseconds = 1.0\nseed = 1\n[params]\n"root.freq" = {freqs(count)}\n'
        '[outputs]\naudio = "wav"\n'
    )
    return job


def steady(folder: Path, skip: int) -> float:
    """Renders/s once started: from the driver's file times, leaving out the first ``skip`` renders."""
    times = sorted(p.stat().st_mtime for p in folder.glob("*.wav"))[skip:]
    return (len(times) - 1) / (times[-1] - times[0])


def rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=200, help="renders per batch run (200)")
    parser.add_argument("--loop", type=int, default=6, help="renders of the shell loop (6)")
    parser.add_argument("--ray", action="store_true", help="also run on a private Ray head (tools/ray_loopback.sh)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ng-batch-bench"))
    env = dict(
        os.environ,
        NUMBA_CACHE_DIR=str(work / "cache"),
        NEURALGRAPH_CACHE_DIR=str(work / "cache"),
        RAY_USAGE_STATS_ENABLED="0",
    )
    try:
        job = write_job(work, args.renders)
        neuralgraph("render", str(PATCH), "--seconds", "1", "-o", str(work / "warm.wav"), env=env)  # fill the cache
        results: dict[str, float] = {}
        started: dict[str, float] = {}  # renders/s once the workers are started
        t = sum(
            neuralgraph(
                "render",
                str(PATCH),
                "--seconds",
                "1",
                "--set",
                f"root.freq={f}",
                "-o",
                str(work / f"loop{i}.wav"),
                env=env,
            )
            for i, f in enumerate(freqs(args.loop))
        )
        results["shell loop of neuralgraph render"] = args.loop / t
        per_render: list[float] = []
        for workers in (1, 2):
            out = work / f"w{workers}"
            t = neuralgraph("batch", str(job), "-o", str(out), "--workers", str(workers), env=env)
            results[f"batch --workers {workers}"] = args.renders / t
            started[f"batch --workers {workers}"] = steady(out, 2 * workers)
            if workers == 1:
                per_render = [r["render_s"] for r in sorted(rows(out), key=lambda r: r["index"])[1:]]
        if args.ray:
            out = work / "ray"
            script = (
                f'start=$(date +%s.%N); "{sys.executable}" -m neuralgraph batch "{job}" -o "{out}" --ray auto '
                f'--workers 2 >/dev/null; end=$(date +%s.%N); echo "$start $end"'
            )
            run = subprocess.run(
                ["bash", str(ROOT / "tools" / "ray_loopback.sh"), "--cpus", "2", "--", "bash", "-c", script],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            start, end = map(float, run.stdout.split()[-2:])
            results["batch --ray (2 actors, local head)"] = args.renders / (end - start)
            started["batch --ray (2 actors, local head)"] = steady(out, 4)
            same = all((out / r["path"]).read_bytes() == (work / "w1" / r["path"]).read_bytes() for r in rows(out))
            print(f"ray output identical to --workers 1: {same}")
        base = results["shell loop of neuralgraph render"]
        print(
            f"{PATCH.name}, 1 s at 48 kHz; {args.renders} renders per batch, {args.loop} in the loop; "
            f"{os.cpu_count()} CPUs (warm numba cache)"
        )
        print(f"  {'':<38} {'end to end':>18} {'vs the loop':>12} {'once started':>18}")
        for name, rate in results.items():
            once = f"{started[name]:7.2f} renders/s" if name in started else ""
            print(f"  {name:<38} {rate:7.2f} renders/s {rate / base:11.1f}x {once:>18}")
        worker = 1.0 / statistics.median(per_render)
        size = statistics.mean(r["files"][0]["bytes"] for r in rows(work / "w1"))
        compute = worker * NODES * CORES_PER_NODE
        driver = DRIVER_MB_S * 1e6 / size
        print(f"one worker, started: {worker:.1f} renders/s (median of the renders' own times)")
        print(
            f"estimate, {NODES}-node Ray cluster: {min(compute, driver):.0f} renders/s = min(compute "
            f"{compute:.0f}: {NODES} nodes x {CORES_PER_NODE} cores x one actor per core x {worker:.1f}/s, "
            f"assuming cores as fast as this one and no sharing; driver {driver:.0f}: {DRIVER_MB_S:.0f} MB/s "
            f"into the driver's disk / {size / 1e3:.0f} kB per render). Start-up is paid once per actor."
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
