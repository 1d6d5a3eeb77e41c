"""``--backend none``: the engine played by a real-time clock thread, with no sound device.

The thread runs one engine block per period at the pace of the wall clock, through the same
:class:`~neuralgraph.plugin.CallbackAdapter` every device backend uses, into a preallocated
buffer that nobody plays. Taps, meters, the CPU load and the fault counters behave exactly as
with a sound card; a block that starts more than one period late is counted as an xrun (the
clock then skips ahead instead of running a burst of blocks to catch up).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from neuralgraph._io.backend import CallbackAdapter, RealtimeGuard, Status, warm_up


class ClockBackend:
    """Plays ``engine`` against the wall clock; ``start``/``stop``/``status`` as any backend."""

    name = "none"

    def __init__(self, engine: Any, **_: Any) -> None:
        self.adapter = CallbackAdapter(engine)
        self.guard = RealtimeGuard()
        self.out = np.zeros((engine.block_size, engine.channels), np.float32)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def engine(self) -> Any:
        return self.adapter.engine

    def _run(self) -> None:
        adapter, out, stop = self.adapter, self.out, self._stop
        frames = out.shape[0]
        period = frames / adapter.engine.sample_rate
        clock = time.perf_counter
        due = clock()
        while not stop.is_set():
            adapter.process_interleaved(out, frames)
            due += period
            wait = due - clock()
            if wait > 0:
                time.sleep(wait)
            elif wait < -period:  # more than a whole period late: a dropout on a real device
                adapter.xruns += 1
                due = clock()

    def start(self) -> None:
        if self._thread is not None:
            return
        warm_up(self.adapter.engine)
        self.guard.enter()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="neuralgraph-clock", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._thread = None
        self.guard.exit()

    def status(self) -> Status:
        return self.adapter.status(backend="none", running=self._thread is not None, device="clock")
