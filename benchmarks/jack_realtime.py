"""Real-time runs on a JACK server: the callback's share of the period and xruns, per period.

For each period the server's buffer size is set (as jack_bufsize does), then:

1. a do-nothing JACK client runs alone for SECONDS: its xrun count is the machine's floor;
2. neuralgraph plays the patch for SECONDS through the jack backend with ``--voices`` notes held
   (MIDI note-ons through the engine's ring), and reports the callback's median and 99th
   percentile CPU share of the period, its maximum, and the xruns.

    .ci/start-audio-servers.sh
    python benchmarks/jack_realtime.py graphs/poly_saw.toml graphs/neural_flute.toml --set keys.count=8 \\
        --seconds 60 --periods 64,128,256,1024

Xruns are clustered as in the backend (notifications within 1 ms are one incident).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JACK_NO_START_SERVER", "1")

import jack  # noqa: E402

import neuralgraph as ng  # noqa: E402
from neuralgraph import (
    open_backend,  # noqa: E402
    parse_override,  # noqa: E402
)


class Idle:
    """A JACK client that does nothing but count xruns."""

    def __init__(self) -> None:
        self.client = jack.Client("ng_idle", no_start_server=True)
        self.xruns = 0
        self._last = 0.0
        self.client.set_process_callback(lambda frames: None)
        self.client.set_xrun_callback(self._xrun)

    def _xrun(self, delayed: float) -> None:
        now = time.monotonic()
        if now - self._last > 0.001:
            self.xruns += 1
        self._last = now

    def run(self, seconds: float) -> int:
        self.client.activate()
        time.sleep(seconds)
        self.client.deactivate()
        self.client.close()
        return self.xruns


def set_period(frames: int) -> None:
    client = jack.Client("ng_bufsize", no_start_server=True)
    if client.blocksize != frames:
        client.blocksize = frames
    client.close()
    time.sleep(0.5)


def play(patch_path: str, overrides: dict, period: int, seconds: float, voices: int) -> dict:
    patch = ng.load_patch(patch_path, overrides=overrides)
    engine = ng.Engine(patch, block_size=period)
    backend = open_backend("jack", engine, client_name="ng_bench", connect=True)
    backend.start()
    for k in range(voices):  # a chord spread over two octaves, held for the whole run
        backend.engine.note_on(48 + 3 * k, 100)
    time.sleep(seconds)
    status = backend.status()
    backend.stop()
    return {
        "p50": status.load_p50,
        "p99": status.load_p99,
        "max": status.load_max,
        "xruns": status.xruns,
        "voices": status.active_voices,
        "callbacks": status.callbacks,
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("patches", nargs="+")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--periods", default="64,128,256,1024")
    ap.add_argument("--voices", type=int, default=8)
    ap.add_argument("--set", action="append", default=[], help="override applied to every patch (node.param=VALUE)")
    args = ap.parse_args(argv)
    overrides = dict(parse_override(item) for item in args.set)
    periods = [int(p) for p in args.periods.split(",")]
    probe = jack.Client("ng_probe", no_start_server=True)
    rate, original = probe.samplerate, probe.blocksize
    probe.close()
    print(f"JACK {rate} Hz, {args.seconds:g} s per run, {args.voices} notes held, overrides {args.set or 'none'}")
    print("| patch | period | callback p50 | p99 | max | xruns | idle-client xruns (floor) | voices |")
    print("|---|---|---|---|---|---|---|---|")
    try:
        for period in periods:
            set_period(period)
            floor = Idle().run(args.seconds)
            for path in args.patches:
                keys = {k: v for k, v in overrides.items() if k.split(".")[0] in _node_names(path)}
                r = play(path, keys, period, args.seconds, args.voices)
                print(
                    f"| {Path(path).name} | {period} ({1000 * period / rate:.2f} ms) | {r['p50'] * 100:.1f} % "
                    f"| {r['p99'] * 100:.1f} % | {r['max'] * 100:.0f} % | {r['xruns']} | {floor} | {r['voices']} |",
                    flush=True,
                )
    finally:
        set_period(original)
    return 0


def _node_names(path: str) -> set[str]:
    import tomllib

    return set(tomllib.loads(Path(path).read_text(encoding="utf-8")).get("nodes", {}))


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)  # skip interpreter teardown (JACK clients can hang there)
