"""The timbre-transfer patch live on a real JACK server, run in its own process by
tests/test_timbre_transfer.py (a JACK client can deadlock Python at exit; the parent kills it on a timeout).

    python tests/transfer_checks.py transfer '{"seconds": 3.0}'

A player client sings a 220 Hz harmonic tone with vibrato into the engine's input, a recorder
client records its output, and a do-nothing client counts the machine's own xruns meanwhile.
Prints one JSON line with the measurements; the test asserts on them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("JACK_NO_START_SERVER", "1")

from audio_checks import IdleClient, Recorder  # noqa: E402
from melody import VIBRATO_CENTS, VIBRATO_HZ, autocorrelation_f0, level_db  # noqa: E402

import neuralgraph as ng  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def check_transfer(args: dict[str, Any]) -> dict[str, Any]:
    """graphs/transfer_violin.toml played by the jack backend at block 256, fed 220 Hz."""
    import jack

    engine = ng.Engine(ng.load_patch(ROOT / "graphs" / "transfer_violin.toml"), block_size=256)
    player = jack.Client("ng_singer", no_start_server=True)
    port = player.outports.register("out")
    rate = player.samplerate
    phase = [0.0, 0]  # oscillator phase (cycles), samples played

    def sing(frames: int) -> None:
        t = (phase[1] + np.arange(frames)) / rate
        inst = 220.0 * 2.0 ** (VIBRATO_CENTS / 1200.0 * np.sin(2 * np.pi * VIBRATO_HZ * t))
        cycles = phase[0] + np.cumsum(inst) / rate
        p = 2 * np.pi * cycles
        port.get_array()[:] = 0.2 * (np.sin(p) + 0.5 * np.sin(2 * p) + 0.3 * np.sin(3 * p))
        phase[0] = float(cycles[-1] % 1.0)
        phase[1] += frames

    player.set_process_callback(sing)
    backend = ng.open_backend("jack", engine, client_name="ng_transfer", connect=False)
    seconds = args.get("seconds", 3.0)
    rec = Recorder(jack, "ng_transfer_rec", 1, seconds + 1.0)
    backend.start()
    player.activate()
    rec.client.activate()
    player.connect(port, "ng_transfer:in_1")
    rec.client.connect("ng_transfer:out_1", rec.ports[0].name)
    idle = IdleClient(jack, "ng_transfer_idle")
    idle_xruns, engine_xruns = idle.xruns, backend.status().xruns
    rec.record(seconds)
    rec.recording = False
    idle_xruns = idle.xruns - idle_xruns
    status = backend.status()
    engine_xruns = status.xruns - engine_xruns
    backend.stop()
    player.deactivate()
    player.close()
    rec.close()
    idle.close()
    data, _ = rec.take()
    tail = data[0, -int(2.0 * rate) :].astype(np.float64)  # past the gate's fade-in
    f0s = [autocorrelation_f0(tail[a : a + 4096], rate) for a in range(0, tail.size - 4096, 2048)]
    return {
        "frames": int(data.shape[1]),
        "freq": float(np.median(f0s)),
        "level_db": level_db(tail),
        "xruns": engine_xruns,
        "idle_xruns": idle_xruns,
        "faults": status.faults,
        "callbacks": status.callbacks,
    }


CHECKS = {"transfer": check_transfer}

if __name__ == "__main__":
    result = CHECKS[sys.argv[1]](json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
    print(json.dumps(result), flush=True)
    os._exit(0)  # skip interpreter teardown: JACK atexit handlers are where hangs live
