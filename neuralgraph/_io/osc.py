"""Parameter control over OSC (python-osc): ``/node/param value`` calls ``engine.set("node.param", value)``.

The server runs on its own thread (a control thread): values reach the audio thread through the
engine's ring like any other ``engine.set``. It binds to 127.0.0.1 unless told otherwise, so a
patch is not controllable from the network by accident.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

from neuralgraph._errors import BackendError, NeuralgraphError


class OscControl:
    """An OSC server setting parameters of the engine returned by ``engine_getter``.

    ``engine_getter`` is called per message, so a backend that rebuilt its engine (a new buffer
    size) is followed. ``port = 0`` picks a free port (read :attr:`port`). Rejected messages
    are kept in :attr:`errors` (the newest 32) for the status line.
    """

    def __init__(self, engine_getter: Callable[[], Any], port: int = 9000, host: str = "127.0.0.1") -> None:
        try:
            from pythonosc import dispatcher, osc_server
        except ImportError:
            raise BackendError("OSC control needs python-osc: pip install python-osc") from None
        self._engine = engine_getter
        self.errors: collections.deque[str] = collections.deque(maxlen=32)
        self.received = 0
        table = dispatcher.Dispatcher()
        table.set_default_handler(self._handle)
        try:
            self._server = osc_server.ThreadingOSCUDPServer((host, port), table)
        except OSError as exc:
            raise BackendError(f"cannot listen for OSC on {host}:{port}: {exc}") from None
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, name="neuralgraph-osc", daemon=True)
        self._thread.start()

    def _handle(self, address: str, *args: Any) -> None:
        self.received += 1
        parts = [p for p in address.split("/") if p]
        if len(parts) != 2 or len(args) != 1:
            self.errors.append(f"{address}: expected /node/param with one value")
            return
        value = args[0]
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # OSC senders often send ints; parameters coerce them back
        try:
            self._engine().set(f"{parts[0]}.{parts[1]}", value)
        except NeuralgraphError as exc:
            self.errors.append(str(exc))

    def close(self) -> None:
        """Stop the server and free its port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=1.0)
