"""What ``neuralgraph serve --backend none`` costs: CPU and memory of the whole process idle and
with one page streaming scope frames, and the audio callback's load in both phases.

    python benchmarks/bench_serve.py [PATCH] [--seconds 10]

Prints each phase's CPU use (share of one core), resident memory, and the callback's median
load, plus the ratios streaming/idle measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def phase(pid: int, base: str, headers: dict, seconds: float) -> dict:
    with httpx.Client(base_url=base, headers=headers) as c:
        before = c.get("/api/status").json()
        t0, cpu0 = time.monotonic(), cpu_seconds(pid)
        time.sleep(seconds)
        wall, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
        after = c.get("/api/status").json()
    return {
        "cpu": cpu / wall,
        "rss": rss_mb(pid),
        "load_p50": after["load_p50"],
        "blocks": after["callbacks"] - before["callbacks"],
        "xruns": after["xruns"] - before["xruns"],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("patch", nargs="?", default=str(ROOT / "graphs" / "saw_chord.toml"))
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    proc = subprocess.Popen(
        [sys.executable, "-m", "neuralgraph", "serve", args.patch, "--backend", "none"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        base, token = proc.stdout.readline().strip().split("/?token=")
        headers = {"Authorization": f"token {token}"}
        time.sleep(2.0)  # past start-up
        idle = phase(proc.pid, base, headers, args.seconds)
        frames = []
        stop = threading.Event()

        def page() -> None:
            with connect(base.replace("http", "ws") + "/ws", additional_headers=headers) as ws:
                while not stop.is_set():
                    frames.append(json.loads(ws.recv(timeout=5))["seq"])

        reader = threading.Thread(target=page)
        reader.start()
        time.sleep(1.0)
        n0 = len(frames)
        streaming = phase(proc.pid, base, headers, args.seconds)
        rate = (len(frames) - n0) / args.seconds
        stop.set()
        reader.join()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"patch {Path(args.patch).name}, {args.seconds:g} s per phase")
    for name, p in (("idle", idle), ("streaming", streaming)):
        print(
            f"{name:>10}: cpu {p['cpu'] * 100:5.1f}% of a core, rss {p['rss']:6.1f} MB, "
            f"callback load p50 {p['load_p50'] * 100:.2f}%, blocks {p['blocks']}, xruns {p['xruns']}"
        )
    print(f"streaming {rate:.1f} frames/s to one page")
    print(
        f"ratios streaming/idle: cpu {streaming['cpu'] / max(idle['cpu'], 1e-9):.2f}x, "
        f"rss {streaming['rss'] / idle['rss']:.2f}x, callback load p50 "
        f"{streaming['load_p50'] / max(idle['load_p50'], 1e-9):.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
