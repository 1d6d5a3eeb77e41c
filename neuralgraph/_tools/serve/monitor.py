"""Meters, scope and spectrum for the page: computed from taps on a thread of the server's own.

The audio thread's only part is writing the taps (a block copy each). An output tap is
attached when the server starts and stays, so the callback does the same work with or without
a page open; a port the page picks for its scope gets a tap of its own while some page watches
it. The :class:`Monitor` thread wakes :data:`FPS` times a second while at least one page is
connected, reads the newest frames of each tap without consuming them (``Tap.latest``) and
publishes one frame dict; each websocket sends the newest frame when it is ready for one, so a
slow page skips frames and nothing waits on it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

#: Frames per second pushed to each page (the issue's bound is 30).
FPS = 30
#: Samples shown by the scope, and the spectrum's FFT size.
SCOPE = 1024
FFT = 4096
#: Spectrum points sent: log-spaced between 20 Hz and Nyquist.
BANDS = 160
TAP_SECONDS = 0.5
FLOOR_DB = -120.0


def db(x: float) -> float:
    return round(20.0 * math.log10(x), 2) if x > 1e-6 else FLOOR_DB


def trigger(x: np.ndarray, length: int) -> np.ndarray:
    """``length`` samples of ``x`` starting at a rising zero crossing (a steady scope picture)."""
    room = len(x) - length
    if room <= 0:
        return x[-length:]
    head = x[: room + 1]
    rising = np.flatnonzero((head[:-1] < 0.0) & (head[1:] >= 0.0))
    start = int(rising[-1]) + 1 if len(rising) else room
    return x[start : start + length]


class Spectrum:
    """A Hann-windowed magnitude spectrum reduced to :data:`BANDS` log-spaced bands (dB)."""

    def __init__(self, sample_rate: float, size: int = FFT, bands: int = BANDS) -> None:
        self.sample_rate = sample_rate
        self.size = size
        self.window = np.hanning(size).astype(np.float64)
        self.norm = 2.0 / self.window.sum()
        freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
        edges = np.geomspace(20.0, sample_rate / 2.0, bands + 1)
        self.index = np.clip(np.searchsorted(freqs, edges), 1, len(freqs) - 1)
        self.bin_hz = sample_rate / size

    def __call__(self, x: np.ndarray) -> tuple[list[float], float]:
        """Band levels in dB, and the peak's frequency refined by parabolic interpolation."""
        mags = np.abs(np.fft.rfft(x[-self.size :] * self.window)) * self.norm
        ends = np.maximum(self.index[1:], self.index[:-1] + 1)
        bands = np.maximum.reduceat(mags, self.index[:-1])[: len(ends)]
        levels = np.round(20.0 * np.log10(np.maximum(bands, 1e-6)), 1).tolist()
        k = int(np.argmax(mags[1:-1])) + 1
        a, b, c = np.log(mags[k - 1 : k + 2] + 1e-20)
        den = a - 2 * b + c
        shift = 0.5 * (a - c) / den if den else 0.0
        peak = (k + shift) * self.bin_hz if mags[k] > 1e-4 else 0.0
        return levels, round(float(peak), 2)


class Monitor:
    """Publishes meter/scope/spectrum frames from taps of ``engine_of()`` while pages watch."""

    def __init__(self, engine_of: Callable[[], Any], status: Callable[[], dict[str, Any]], fps: float = FPS) -> None:
        self.engine_of = engine_of
        self.status = status
        self.period = 1.0 / fps
        self.output = engine_of().tap(None, seconds=TAP_SECONDS)
        self.taps: dict[str, Any] = {}  # scope port -> tap
        self.watchers: dict[str, int] = {}  # scope port -> pages watching it
        self.clients = 0
        self.frame: dict[str, Any] = {"seq": 0}
        self.ticks = 0  #: frames computed (tests: it does not run without a page)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._spectra: dict[float, Spectrum] = {}
        self._thread = threading.Thread(target=self._run, name="neuralgraph-monitor", daemon=True)
        self._thread.start()

    # ---- pages (server threads) -----------------------------------------------------------------
    def join(self, port: str = "") -> str:
        """A page connects, watching ``port`` ("" or the output node's name: the output)."""
        port = self._attach(port)
        with self._lock:
            self.clients += 1
            self.watchers[port] = self.watchers.get(port, 0) + 1
        self._wake.set()
        return port

    def leave(self, port: str) -> None:
        with self._lock:
            self.clients -= 1
            self._release(port)

    def rewatch(self, old: str, port: str) -> str:
        """A page picks another port for its scope; raises ParameterError naming what is valid."""
        port = self._attach(port)
        with self._lock:
            self.watchers[port] = self.watchers.get(port, 0) + 1
            self._release(old)
        return port

    def _attach(self, port: str) -> str:
        engine = self.engine_of()
        if not port or port.partition(".")[0] == engine.patch.topology.output_node:
            return ""
        if "." not in port:
            node = engine.plan.nodes.get(port)
            port = f"{port}.{node.main_output}" if node is not None else port
        with self._lock:
            tap = self.taps.get(port)
            if tap is not None and not tap.port_gone:
                return port
        tap = engine.tap(port, seconds=TAP_SECONDS)  # raises ParameterError for a port the patch lacks
        with self._lock:
            old, self.taps[port] = self.taps.get(port), tap
        if old is not None:
            old.close()
        return port

    def _release(self, port: str) -> None:
        left = self.watchers.get(port, 0) - 1
        if left > 0:
            self.watchers[port] = left
            return
        self.watchers.pop(port, None)
        tap = self.taps.pop(port, None)
        if tap is not None:
            tap.close()

    # ---- the monitor thread ---------------------------------------------------------------------
    def _spectrum(self, rate: float) -> Spectrum:
        spectrum = self._spectra.get(rate)
        if spectrum is None:
            spectrum = self._spectra[rate] = Spectrum(rate)
        return spectrum

    def _scope(self, tap: Any) -> dict[str, Any]:
        if tap.port_gone:
            return {"gone": True}
        data = tap.latest(max(FFT, 2 * SCOPE) * tap.frames_per_column)
        if data.shape[1] == 0:
            return {"lanes": 0, "scope": [], "rms_db": FLOOR_DB}
        x = data[0].astype(np.float64)
        out: dict[str, Any] = {
            "lanes": int(data.shape[0]),
            "rms_db": db(float(np.sqrt(np.mean(x * x)))),
            "peak_db": db(float(np.max(np.abs(x)))),
        }
        if tap.frames_per_column == 1:
            out["scope"] = np.round(trigger(x, SCOPE)[::2], 4).tolist()  # 512 points fill the canvas
            if len(x) >= FFT:
                out["spectrum"], out["peak_hz"] = self._spectrum(tap.sample_rate)(x)
        else:  # a control-rate port: one value per block, shown as it moves
            out["scope"] = np.round(x[-256:], 4).tolist()
            out["control"] = True
        return out

    def compute(self) -> dict[str, Any]:
        """One frame: output meters per channel, a scope/spectrum per watched port, the status."""
        with self._lock:
            taps = {"": self.output, **self.taps}
            watched = list(self.watchers)
        out = self.output.latest(int(self.output.sample_rate * self.period * 2))
        meters = [
            {
                "peak_db": db(float(np.max(np.abs(ch)))) if ch.size else FLOOR_DB,
                "rms_db": db(float(np.sqrt(np.mean(ch.astype(np.float64) ** 2)))) if ch.size else FLOOR_DB,
            }
            for ch in out
        ]
        ports = {p: self._scope(taps[p]) for p in watched if p in taps}
        return {
            "seq": self.frame["seq"] + 1,
            "time": round(time.time(), 3),
            "meters": meters,
            "ports": ports,
            "status": self.status(),
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.clients <= 0:
                self._wake.clear()
                self._wake.wait(1.0)
                continue
            t0 = time.perf_counter()
            try:
                self.frame = self.compute()
                self.ticks += 1
            except Exception as exc:  # noqa: BLE001 - a bad frame must not end the meters
                self.frame = {**self.frame, "seq": self.frame["seq"] + 1, "error": f"{type(exc).__name__}: {exc}"}
            self._stop.wait(max(0.0, self.period - (time.perf_counter() - t0)))

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5.0)
        for tap in [self.output, *self.taps.values()]:
            tap.close()
