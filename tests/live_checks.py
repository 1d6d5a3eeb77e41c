"""Live checks against a real JACK server: ``neuralgraph play --watch`` / ``--record`` recorded by an
independent JACK client. Run in a subprocess by tests/test_live_jack.py (tests/audio_server.py).

    python tests/live_checks.py CHECK '{"dir": "/tmp/x"}'

Prints one JSON line with the measurements; the test asserts on them. Every wait polls with a
deadline; nothing sleeps for synchronisation.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("JACK_NO_START_SERVER", "1")

from analysis import peak_frequency  # noqa: E402
from audio_checks import Recorder  # noqa: E402

#: graphs/live_saw.toml with its frequency as a format field
SAW = (
    (Path(__file__).resolve().parent.parent / "graphs" / "live_saw.toml")
    .read_text(encoding="utf-8")
    .replace("freq = 220.0", "freq = {freq}")
)
NOISE = """schema = 1
[nodes.noise]
type = "noise.white"
[nodes.amp]
type = "math.mul"
in = "noise"
gain = 0.3
[nodes.out]
type = "io.output"
channels = 1
in = "amp"
"""


SETTLE = 1024  # frames of the client's recording left out: they may predate the connection


def wait_for(what: str, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g} s for {what}")
        time.sleep(0.01)


class Player:
    """``neuralgraph play`` in a subprocess, its stderr collected line by line."""

    def __init__(self, *args: str) -> None:
        self.name = f"ng_live_{os.getpid()}"  # its own name: other jobs may play on the same server
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "neuralgraph",
                "play",
                *args,
                "--backend",
                "jack",
                "--no-connect",
                "--client-name",
                self.name,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.err: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.err.append(line.rstrip("\n"))

    def said(self, text: str) -> int:
        return sum(text in line for line in self.err)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out = self.proc.stdout.read()
        self.proc.wait(timeout=30)
        self._reader.join(timeout=5)
        return out


def player_port(rec: Recorder, name: str) -> str | None:
    """The output port of the player's client."""
    for port in rec.client.get_ports(is_audio=True, is_output=True):
        if port.name == f"{name}:out_1":
            return port.name
    return None


def start(rec: Recorder, *args: str) -> tuple[Player, str]:
    player = Player(*args)
    found: list[str] = []

    def ready() -> bool:
        if player.proc.poll() is not None:
            raise RuntimeError("play exited early:\n" + "\n".join(player.err))
        port = player_port(rec, player.name)
        if port:
            found.append(port)
        return bool(found)

    wait_for("the player's JACK port", ready, 60)

    def connected() -> bool:  # the port exists before its client is activated: retry until it is
        try:
            rec.client.connect(found[0], rec.ports[0].name)
        except jack_module().JackError:
            return False
        return True

    wait_for("a connection to the player", connected, 30)
    rec.recording = True
    return player, found[0]


def jack_module() -> Any:
    import jack

    return jack


def steps(x: np.ndarray, frames: np.ndarray | None = None) -> float:
    """The largest sample-to-sample step, leaving out the seams where the recording client lost
    periods to an xrun (``frames``: each sample's absolute JACK frame)."""
    d = np.abs(np.diff(x.astype(np.float64)))
    if frames is not None:
        d = d[np.diff(frames) == 1]
    return float(d.max())


def longest_silence(x: np.ndarray) -> tuple[int, int]:
    """The longest run of silent samples, and where it starts."""
    quiet = np.concatenate([[False], np.abs(x) < 1e-6, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    if len(edges) == 0:
        return 0, -1
    lengths = edges[1::2] - edges[::2]
    k = int(np.argmax(lengths))
    return int(lengths[k]), int(edges[2 * k])


def align(reference: np.ndarray, other: np.ndarray, at: int | None = None) -> int:
    """The offset of ``reference`` inside ``other``: cross-correlation of an 8192-frame excerpt
    (from ``at``, default the middle); of the 20 best lags, the one where the two match best
    (a periodic signal correlates at every period)."""
    from scipy.signal import correlate

    start = len(reference) // 2 if at is None else at
    excerpt = reference[start : start + 8192].astype(np.float64)
    c = correlate(other.astype(np.float64), excerpt, mode="valid", method="fft")
    best = np.argsort(c)[-20:]
    errors = [np.abs(other[k : k + len(excerpt)] - excerpt).max() for k in best]
    return int(best[int(np.argmin(errors))]) - start


def _find(segment: np.ndarray, written: np.ndarray, near: int, reach: int = 16384) -> int | None:
    """Where ``segment`` occurs exactly in ``written`` within ``reach`` frames of ``near``, if it does."""
    lo, hi = max(0, near - reach), min(len(written), near + reach + len(segment))
    window = written[lo:hi]
    if len(window) < len(segment):
        return None
    hits = np.flatnonzero(window[: len(window) - len(segment) + 1] == segment[0])
    for h in sorted(hits, key=lambda h: abs(lo + h - near)):  # a periodic signal matches every period
        if np.array_equal(window[h : h + len(segment)], segment):
            return int(lo + h)
    return None


def compare(recorded: np.ndarray, written: np.ndarray, at: int | None = None, period: int = 256) -> dict[str, Any]:
    """Is every period the client heard in the file, exactly and in order? Aligned by
    cross-correlation first; after a period the client or the player lost to an xrun, the next
    one is found again nearby (a lost period shifts everything after it)."""
    offset = align(recorded, written, at)
    missing = realigned = 0
    worst = 0.0
    for start in range(0, len(recorded) - period + 1, period):
        segment = recorded[start : start + period]
        k = start + offset
        if 0 <= k <= len(written) - period:
            worst = max(worst, float(np.abs(written[k : k + period].astype(np.float64) - segment).max()))
            if np.array_equal(written[k : k + period], segment):
                continue
        found = _find(segment, written, k)
        if found is None:
            missing += period
        else:
            offset, realigned = found - start, realigned + 1
    return {
        "offset": offset,
        "recorded": int(len(recorded)),
        "periods": len(recorded) // period,
        "mismatched_frames": missing,
        "realigned": realigned,
        "max_diff_in_place": worst,
    }


def check_watch(args: dict[str, Any]) -> dict[str, Any]:
    import jack
    import soundfile

    folder = Path(args["dir"])
    patch = folder / "saw.toml"
    patch.write_text(SAW.format(freq="220.0"), encoding="utf-8")
    record = folder / "played.wav"
    rec = Recorder(jack, "ng_live_rec", 1, 12.0)
    rec.client.activate()
    rate = rec.client.samplerate
    player, port = start(rec, str(patch), "--watch", "--record", str(record), "--osc-port", "0")
    try:
        wait_for("'watching'", lambda: player.said("watching ") > 0, 30)
        wait_for("0.6 s of 220 Hz", lambda: rec.pos >= int(0.6 * rate), 20)
        edit_at = rec.pos
        patch.write_text(SAW.format(freq="330.0"), encoding="utf-8")
        wait_for("the reload", lambda: player.said("reloaded ") > 0, 20)
        reload_seen_at = rec.pos
        wait_for("0.6 s of 330 Hz", lambda: rec.pos >= reload_seen_at + int(0.6 * rate), 20)
        osc_at = rec.pos  # live control after the swap: OSC reaches the patch playing now
        from pythonosc.udp_client import SimpleUDPClient

        osc_port = int(next(line for line in player.err if line.startswith("OSC: ")).rsplit(":", 1)[1])
        SimpleUDPClient("127.0.0.1", osc_port).send_message("/amp/gain", 0.25)
        wait_for("0.5 s after the OSC message", lambda: rec.pos >= osc_at + int(0.5 * rate), 20)
        broken_at = rec.pos
        patch.write_text(SAW.format(freq="330.0") + '[nodes.osc2]\ntype = "osc.sawz"\n', encoding="utf-8")
        wait_for("the error", lambda: player.said("problem found") > 0, 20)
        error_seen_at = rec.pos
        wait_for("0.5 s after the error", lambda: rec.pos >= error_seen_at + int(0.5 * rate), 20)
        rec.recording = False
    finally:
        out = player.stop()
        rec.close()
    data, frame_at = rec.take()
    x = data[0][SETTLE:]  # the first periods may predate the connection
    frame_at = frame_at[SETTLE:]
    edit_at, broken_at, osc_at = edit_at - SETTLE, broken_at - SETTLE, osc_at - SETTLE
    check = subprocess.run([sys.executable, "-m", "neuralgraph", "check", str(patch)], capture_output=True, text=True)
    written, file_rate = soundfile.read(str(record), dtype="float32")

    def clean(lo: int, hi: int) -> np.ndarray:
        """The longest stretch of x[lo:hi] in which the client lost no period."""
        seams = np.flatnonzero(np.diff(frame_at[lo:hi]) != 1) + 1
        edges = np.concatenate([[0], seams, [hi - lo]])
        k = int(np.argmax(np.diff(edges)))
        return x[lo + edges[k] : lo + edges[k + 1]]

    steady_220, steady_330 = clean(edit_at - int(0.5 * rate), edit_at), clean(osc_at - int(0.4 * rate), osc_at)
    quieter = clean(broken_at - int(0.3 * rate), broken_at)
    tail = clean(len(x) - int(0.4 * rate), len(x))
    return {
        "freq_before": peak_frequency(steady_220, rate),
        "freq_after": peak_frequency(steady_330, rate),
        "freq_after_broken": peak_frequency(tail, rate),
        "peak_330": float(np.abs(steady_330).max()),
        "peak_after_osc": float(np.abs(quieter).max()),
        "peak_after_broken": float(np.abs(tail).max()),
        "own_step": max(steps(steady_220), steps(steady_330), steps(quieter)),
        "max_step": steps(x, frame_at),
        "longest_silence": longest_silence(x),
        "client_lost_periods": int(np.count_nonzero(np.diff(frame_at) != 1)),
        "xruns_reported": [line for line in out.splitlines() if "xruns" in line],
        "reload_latency_s": (reload_seen_at - edit_at - SETTLE) / rate,
        "error_latency_s": (error_seen_at - broken_at - SETTLE) / rate,
        "stderr": player.err,
        "stdout": out,
        "returncode": player.proc.returncode,
        "check_stderr": check.stderr.splitlines(),
        "file_rate": file_rate,
        "file_vs_client": compare(x, written, at=edit_at),
        "file_frames": int(len(written)),
    }


def check_record(args: dict[str, Any]) -> dict[str, Any]:
    import jack
    import soundfile

    folder = Path(args["dir"])
    patch = folder / "noise.toml"
    patch.write_text(NOISE, encoding="utf-8")
    record = folder / "noise.flac" if args.get("flac") else folder / "noise.wav"
    rec = Recorder(jack, "ng_rec_rec", 1, 6.0)
    rec.client.activate()
    rate = rec.client.samplerate
    player, _ = start(rec, str(patch), "--record", str(record), "--seconds", "2.5")
    try:
        wait_for("the player to finish", lambda: player.proc.poll() is not None, 40)
        rec.recording = False
    finally:
        out = player.stop()
        rec.close()
    data, _ = rec.take()
    x = data[0][SETTLE : np.flatnonzero(np.abs(data[0]) > 0)[-1] + 1]  # the port is silent once the client stops
    info = soundfile.info(str(record))
    written, _ = soundfile.read(str(record), dtype="float32")
    return {
        "stdout": out,
        "returncode": player.proc.returncode,
        "stderr": player.err,
        "subtype": info.subtype,
        "file_seconds": len(written) / rate,
        "file_vs_client": compare(x, written),
    }


def check_session(args: dict[str, Any]) -> dict[str, Any]:
    """ng.play from a string, then set, tap, swap and stop on the live handle; and xruns over a
    hundred swaps against the same time unswapped (both measured here, in this run)."""
    import neuralgraph as ng

    text = SAW.format(freq="220.0")
    player = ng.play(text, backend="jack", connect=False, client_name="ng_session")
    try:
        rate = player.engine.sample_rate
        osc = player.tap("osc", seconds=2.0)
        out = player.tap(seconds=2.0)

        def collect(tap: Any, frames: int) -> np.ndarray:
            got: list[np.ndarray] = []
            wait_for(
                f"{frames} frames from {tap.port or 'the output'}",
                lambda: (
                    bool(got.append(c.data) if (c := tap.read()) is not None else None)
                    or sum(g.shape[1] for g in got) >= frames
                ),
                20,
            )
            return np.concatenate(got, axis=1)

        first = collect(out, int(0.5 * rate))
        player.set("amp.gain", 0.25)
        collect(out, int(0.1 * rate))  # the change lands and its ramp ends
        quieter = collect(out, int(0.3 * rate))
        raw = collect(osc, int(0.2 * rate))
        report = player.swap(text.replace("220.0", "330.0"))
        collect(out, int(0.1 * rate))
        after = collect(out, int(0.5 * rate))
        window = 2.0
        xruns0 = player.status().xruns
        deadline = time.monotonic() + window
        while time.monotonic() < deadline:
            time.sleep(0.02)
        unswapped = player.status().xruns - xruns0
        xruns1 = player.status().xruns
        t0 = time.monotonic()
        for k in range(100):
            player.swap(text.replace("220.0", f"{330.0 + (k % 2):.1f}"))
        swap_s = time.monotonic() - t0
        deadline = t0 + max(window, swap_s)
        while time.monotonic() < deadline:
            time.sleep(0.02)
        swapped = player.status().xruns - xruns1
        status = player.status()
    finally:
        player.stop()
    return {
        "freq_first": peak_frequency(first[0], rate),
        "peak_first": float(np.abs(first).max()),
        "peak_quieter": float(np.abs(quieter).max()),
        "osc_peak": float(np.abs(raw).max()),
        "freq_after": peak_frequency(after[0], rate),
        "changed": list(report.changed),
        "overruns": out.overruns,
        "xruns_unswapped": unswapped,
        "xruns_100_swaps": swapped,
        "swaps_s": swap_s,
        "faults": status.faults,
        "silent": status.silent,
    }


#: The saw of graphs/live_saw.toml with a lowpass after ``amp``: a node added and the wiring changed
SAW_FILTERED = (
    SAW.replace('in = "amp"', 'in = "lpf"') + '\n[nodes.lpf]\ntype = "filter.lowpass"\nin = "amp"\ncutoff = {cutoff}\n'
)


def swap_sources(count: int) -> list[str]:
    """``count`` patch texts cycling through four edits of a playing saw: the lowpass added
    (structural: a crossfade), its cutoff changed (values only), the lowpass removed
    (structural), the saw's frequency changed (values only)."""
    sources = []
    for k in range(count):
        step, lap = k % 4, k // 4
        if step == 0:
            sources.append(SAW_FILTERED.format(freq="220.0", cutoff=f"{2000.0 + lap:.1f}"))
        elif step == 1:
            sources.append(SAW_FILTERED.format(freq="220.0", cutoff=f"{3000.0 + lap:.1f}"))
        elif step == 2:
            sources.append(SAW.format(freq="220.0"))
        else:
            sources.append(SAW.format(freq=f"{220.0 + 1.0 + lap % 2:.1f}"))
    return sources


def hold(seconds: float) -> None:
    """Let the audio play for ``seconds`` with this thread asleep (no work for the control thread)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)


def quiet_xruns(server: str, seconds: float) -> int:
    """Xruns the server reports in ``seconds`` with only a do-nothing client attached (its process
    callback returns at once): what this machine costs any client, whatever it does."""
    import jack

    client = jack.Client("ng_do_nothing", servername=server, no_start_server=True)
    count = [0]
    client.set_xrun_callback(lambda delayed_usecs: count.__setitem__(0, count[0] + 1))
    client.set_process_callback(lambda frames: None)
    client.activate()
    try:
        hold(0.5)  # activation settles
        before = count[0]
        hold(seconds)
        return count[0] - before
    finally:
        client.deactivate()
        client.close()


def check_swap_xruns(args: dict[str, Any]) -> dict[str, Any]:
    """A hundred swaps in a row on a playing patch against the same time unswapped, on a server of
    this check's own (``args["server"]``: no other client's xruns are counted), and the xruns of a
    do-nothing client alone for as long. ``args["cache"]``: an empty folder for every kernel
    cache (ours and numba's), so the first structural swap compiles its kernels while audio plays."""
    cache = Path(args["cache"])
    os.environ["NEURALGRAPH_CACHE_DIR"] = str(cache / "neuralgraph")
    os.environ["NUMBA_CACHE_DIR"] = str(cache / "numba")
    import neuralgraph as ng

    server = args["server"]
    sources = swap_sources(args.get("swaps", 100))
    player = ng.play(sources[-1], backend="jack", connect=False, client_name="ng_swapper", server=server)
    modules_before = len(list(cache.glob("neuralgraph/aot/*/ng_*")))
    try:
        rate = player.engine.sample_rate
        out = player.tap(seconds=2.0)
        hold(0.5)  # the first periods after activation are not part of either run
        xruns0, t0 = player.status().xruns, time.monotonic()
        reports, late = [], {}  # late: swap index -> xruns that appeared during it (reported)
        for k, text in enumerate(sources):
            before = player.status().xruns
            reports.append(player.swap(text))
            if player.status().xruns > before:
                late[k] = player.status().xruns - before
        wait_for("the last crossfade", lambda: player.engine._swap is None, 10)
        swap_s = time.monotonic() - t0
        xruns1 = player.status().xruns
        hold(swap_s)
        xruns2 = player.status().xruns
        out.read()  # drop what the tap holds: the next read starts after the run
        hold(0.3)
        tail = out.read()
        status = player.status()
    finally:
        player.stop()
    return {
        "swaps": len(reports),
        "structural": sum(1 for r in reports if r.added or r.removed),
        "values_only": sum(1 for r in reports if r.changed and not (r.added or r.removed)),
        "swap_s": swap_s,
        "xruns_swapped": xruns1 - xruns0,
        "xruns_unswapped": xruns2 - xruns1,
        "xruns_do_nothing": quiet_xruns(server, swap_s),
        "tail_freq": peak_frequency(tail.data[0], rate),
        "tail_peak": float(np.abs(tail.data).max()),
        "faults": status.faults,
        "silent": status.silent,
        "load_max": status.load_max,
        "xruns_at_swap": late,
        "compile_s": [round(r.compile_s, 3) for r in reports[:3]],
        "modules_built_while_playing": len(list(cache.glob("neuralgraph/aot/*/ng_*"))) - modules_before,
        "numba_imported": "numba" in sys.modules,
    }


CHECKS = {"watch": check_watch, "record": check_record, "session": check_session, "swap_xruns": check_swap_xruns}

if __name__ == "__main__":
    result = CHECKS[sys.argv[1]](json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
    print(json.dumps(result), flush=True)
    os._exit(0)  # skip interpreter teardown: JACK atexit handlers are where hangs live
