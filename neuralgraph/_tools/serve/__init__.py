"""``neuralgraph serve``: a local web page that is a playing patch's control surface.

Needs the ``serve`` extra (``pip install neuralgraph[serve]``: Starlette and uvicorn), imported
only here. :func:`start` builds everything and returns a running :class:`Server`; the command
line (:func:`run`) prints its URL and serves until Ctrl-C. See docs/serve.md.
"""

from __future__ import annotations

import secrets
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neuralgraph._errors import NeuralgraphError

LOOPBACK = "127.0.0.1"


def _require() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise NeuralgraphError(
            f"neuralgraph serve needs the 'serve' extra: pip install 'neuralgraph[serve]' ({exc})"
        ) from None


def open_engine_backend(name: str, engine: Any, **options: Any) -> Any:
    """``none``: the real-time clock thread; anything else: the backend plugin of that name."""
    if name == "none":
        from neuralgraph._tools.serve.clock import ClockBackend

        return ClockBackend(engine)
    from neuralgraph._io.backend import open_backend

    return open_backend(name, engine, **options)


class Server:
    """A running control surface: the backend playing, the uvicorn server in a thread."""

    def __init__(self, surface: Any, host: str, port: int, token: str, hosts: set[str] | None = None) -> None:
        import uvicorn

        from neuralgraph._tools.serve.app import build_app

        _require()
        self.surface = surface
        self.token = token
        self.socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
        except OSError as exc:
            self.socket.close()
            raise NeuralgraphError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                + ("; pick another --port, or 0 for any free one" if port else "")
            ) from None
        self.socket.listen(128)  # connections wait in the backlog until uvicorn accepts: the URL works once printed
        self.host, self.port = host, self.socket.getsockname()[1]
        if hosts is None and host == LOOPBACK:
            hosts = {f"{LOOPBACK}:{self.port}", f"localhost:{self.port}"}
        self.app = build_app(surface, token, self.port, hosts)
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", access_log=False)
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def monitor(self) -> Any:
        return self.app.app.state.monitor

    @property
    def url(self) -> str:
        """The page's address with the token: what the user opens."""
        host = "127.0.0.1" if self.host == LOOPBACK else self.host
        return f"http://{host}:{self.port}/?token={self.token}"

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK if self.host in (LOOPBACK, '0.0.0.0') else self.host}:{self.port}"

    def serve_forever(self) -> None:
        """Serve in this thread until Ctrl-C or SIGTERM (uvicorn handles both)."""
        self.server.run(sockets=[self.socket])

    def start(self) -> Server:
        """Serve from a thread of its own; returns once the server accepts connections."""
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name="neuralgraph-serve", daemon=True
        )
        self._thread.start()
        import time

        deadline = time.monotonic() + 20.0
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise NeuralgraphError("the web server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None
        self.socket.close()
        self.surface.backend.stop()


def run(args: Any, load: Callable[[Any], Any], engine: Any) -> int:
    """The command line: play, serve, print the URL, wait for Ctrl-C or SIGTERM, stop."""
    from neuralgraph._patch.config import load_settings
    from neuralgraph._tools.serve.surface import Surface

    _require()
    name = args.backend or load_settings().get("backend") or "sounddevice"
    options: dict[str, Any] = {}
    if args.device:
        options["device"] = args.device
    if args.no_connect:
        options["connect"] = False
    host = args.host or LOOPBACK
    if host != LOOPBACK:
        warn_host(host)
    playing = open_engine_backend(name, engine, **options)
    server = Server(Surface(args.patch, playing, load, fade=args.fade), host, args.port, secrets.token_urlsafe(24))
    try:
        playing.start()
        print(f"neuralgraph: {Path(args.patch).name} playing ({name}); control surface at:", file=sys.stderr)
        print(server.url, flush=True)
        # uvicorn stops on Ctrl-C/SIGTERM and then raises the signal again: let that land here,
        # so the audio stops cleanly and the summary is printed
        previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            server.serve_forever()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        server.socket.close()
        playing.stop()
    status = playing.status()
    print(f"played: {status.line()}", file=sys.stderr)
    return 0


def warn_host(host: str) -> None:
    print(
        f"neuralgraph: warning: serving on {host}, not only on this machine's loopback: anyone who can reach "
        "it and learns the token can change what plays",
        file=sys.stderr,
    )
