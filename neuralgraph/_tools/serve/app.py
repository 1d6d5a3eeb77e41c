"""The web server: a Starlette app over a :class:`Surface`, guarded by a token and the Origin.

Every request and websocket must carry the server's token: an ``Authorization: token T`` (or
``Bearer T``) header, an ``X-Neuralgraph-Token`` header, a ``?token=`` query parameter, or the
cookie the page gets when its URL (which carries the token) is opened. Missing or wrong: 401.
A request whose ``Origin`` is not the page's own, or whose ``Host`` is not the loopback address
the server bound, is refused with 403 before the token is looked at: the API changes what
plays, and another web page open in the same browser must not reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from http.cookies import SimpleCookie
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from neuralgraph._errors import NeuralgraphError
from neuralgraph._tools.serve.monitor import Monitor
from neuralgraph._tools.serve.surface import RequestError, Surface

STATIC = Path(str(resources.files("neuralgraph._tools.serve") / "static"))


def cookie_name(port: int) -> str:
    """Cookies are shared between ports of one host; each server keeps its own."""
    return f"neuralgraph_token_{port}"


class Guard:
    """ASGI middleware: the Host and Origin checks (403), then the token (401)."""

    def __init__(self, app: Any, token: str, port: int, hosts: set[str] | None) -> None:
        self.app = app
        self.token = token
        self.port = port
        self.hosts = hosts  # None: any Host (the user asked for --host)

    def _token(self, scope: dict, headers: Headers) -> str:
        auth = headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() in ("token", "bearer") and value:
            return value.strip()
        if headers.get("x-neuralgraph-token"):
            return headers["x-neuralgraph-token"]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        if query:
            return query[0]
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is just no token
            return ""
        morsel = cookie.get(cookie_name(self.port))
        return morsel.value if morsel is not None else ""

    def refusal(self, scope: dict) -> tuple[int, str] | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self.hosts is not None and host not in self.hosts:
            return 403, f"refused: Host {host!r} is not this server's address ({', '.join(sorted(self.hosts))})"
        origin = headers.get("origin")
        if origin is not None and origin != f"http://{host}":
            return 403, (
                f"refused: a request from the page {origin!r}; only the control surface's own page "
                f"(http://{host}) may use this server"
            )
        token = self._token(scope, headers)
        if not token or not secrets.compare_digest(token.encode(), self.token.encode()):
            return 401, (
                "missing or wrong token: open the URL neuralgraph serve printed, or send the header "
                "'Authorization: token <token>'"
            )
        return None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope)
        if refused is not None:
            status, message = refused
            body = json.dumps({"message": message}).encode()
            if scope["type"] == "http":
                await JSONResponse({"message": message}, status)(scope, receive, send)
                return
            await receive()  # websocket.connect
            if "websocket.http.response" in scope.get("extensions", {}):
                await send(
                    {
                        "type": "websocket.http.response.start",
                        "status": status,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "websocket.http.response.body", "body": body})
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)


def _error(exc: Exception) -> JSONResponse:
    if isinstance(exc, RequestError):
        return JSONResponse({"message": str(exc), "problems": exc.problems}, exc.status)
    return JSONResponse({"message": str(exc)}, 400)


async def _json(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(f"{request.method} {request.url.path}: the body is not JSON: {exc}") from None


def build_app(
    surface: Surface, token: str, port: int, hosts: set[str] | None = None, monitor: Monitor | None = None
) -> Any:
    """The ASGI app: page, API and websocket, wrapped in the :class:`Guard`."""
    monitor = monitor or Monitor(lambda: surface.engine, surface.status)
    endpoints = _Endpoints(surface, monitor, token, port)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        monitor.close()

    app = Starlette(routes=endpoints.routes(), lifespan=lifespan)
    app.state.monitor = monitor
    return Guard(app, token, port, hosts)


def _handler(fn: Any, body: bool = False) -> Any:
    """An endpoint calling ``fn`` (with the JSON body first when ``body``, then the path's
    parameters) off the event loop and answering its result as JSON, or the error."""

    async def endpoint(request: Request) -> Response:
        try:
            args = [await _json(request)] if body else []
            args += list(request.path_params.values())
            # off the event loop: a refused value re-reads the patch file for --set's words
            return JSONResponse(await asyncio.to_thread(fn, *args))
        except (RequestError, NeuralgraphError) as exc:
            return _error(exc)

    return endpoint


class _Endpoints:
    """The page, the patch's source and drawing, and the two websockets, over one surface."""

    def __init__(self, surface: Surface, monitor: Monitor, token: str, port: int) -> None:
        self.surface, self.monitor, self.token, self.port = surface, monitor, token, port

    def routes(self) -> list[Any]:
        surface = self.surface
        return [
            Route("/", self.index),
            Route("/api/patch", _handler(surface.describe)),
            Route("/api/patch/source", self.source, methods=["GET"]),
            Route("/api/patch/source", self.put_source, methods=["PUT"]),
            Route("/api/params", _handler(surface.values), methods=["GET"]),
            Route("/api/params", _handler(surface.set_params, body=True), methods=["POST"]),
            Route("/api/notes", _handler(surface.note, body=True), methods=["POST"]),
            Route("/api/status", _handler(surface.status)),
            Route("/api/graph.svg", self.graph),
            Route("/api/presets", _handler(lambda: {"presets": surface.presets()}), methods=["GET"]),
            Route(
                "/api/presets",
                _handler(
                    lambda body: surface.save_preset(body.get("name") if isinstance(body, dict) else body), body=True
                ),
                methods=["POST"],
            ),
            Route("/api/presets/{name}/recall", _handler(surface.recall_preset), methods=["POST"]),
            Route("/api/presets/{name}", _handler(surface.delete_preset), methods=["DELETE"]),
            WebSocketRoute("/ws", self.ws),
            WebSocketRoute("/ws/audio", self.audio),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]

    async def index(self, request: Request) -> Response:
        response = FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})
        response.set_cookie(cookie_name(self.port), self.token, httponly=True, samesite="strict", path="/")
        return response

    async def put_source(self, request: Request) -> Response:
        raw = await request.body()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return _error(RequestError(f"the patch text is not UTF-8: {exc}"))
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                text = json.loads(text)["source"]
            except (json.JSONDecodeError, KeyError, TypeError):
                return _error(RequestError('expected the patch text, or JSON {"source": "..."}'))
        try:
            result = await asyncio.to_thread(self.surface.put_source, str(text))  # compiling takes a while
        except (RequestError, NeuralgraphError) as exc:
            return _error(exc)
        return JSONResponse(result)

    async def source(self, request: Request) -> Response:
        return Response(self.surface.source(), media_type="text/plain; charset=utf-8")

    async def graph(self, request: Request) -> Response:
        from neuralgraph._tools.drawing import dot_program, patch_to_dot, render_dot

        if dot_program() is None:
            return JSONResponse({"message": "the graph needs Graphviz's dot program (apt-get install graphviz)"}, 503)
        svg = await asyncio.to_thread(render_dot, patch_to_dot(self.surface.patch), "svg")
        return Response(svg, media_type="image/svg+xml")

    async def ws(self, socket: WebSocket) -> None:
        """The page's control channel: frames (meters, status, the watched port's scope) out,
        control messages in."""
        await socket.accept()
        monitor = self.monitor
        state = {"port": monitor.join("")}
        pusher = asyncio.create_task(_push_frames(socket, monitor, state))
        try:
            while True:
                try:
                    message = await socket.receive_json()
                except (json.JSONDecodeError, KeyError) as exc:
                    await socket.send_json({"type": "error", "message": f"not a JSON message: {exc}"})
                    continue
                reply = await asyncio.to_thread(_control, message, self.surface, monitor, state)
                if reply is not None:
                    await socket.send_json(reply)
        except WebSocketDisconnect:
            pass
        finally:
            pusher.cancel()
            monitor.leave(state["port"])

    async def audio(self, socket: WebSocket) -> None:
        """The output as played, for the page's Listen button: a JSON header, then float32
        blocks (channel after channel) every 20 ms. Its own tap, attached while it listens."""
        await socket.accept()
        engine = self.surface.engine
        tap = engine.tap(None, seconds=2.0)

        async def drain() -> None:
            await socket.send_json({"type": "audio", "sample_rate": engine.sample_rate, "channels": tap.ring.shape[0]})
            while True:
                await asyncio.sleep(0.02)
                chunk = tap.read()
                if chunk is not None:
                    await socket.send_bytes(chunk.data.astype("<f4").tobytes())

        sender = asyncio.create_task(drain())
        try:
            while True:
                await socket.receive_text()  # the page sends nothing; this notices it leaving
        except WebSocketDisconnect:
            pass
        finally:
            sender.cancel()
            tap.close()


async def _push_frames(socket: WebSocket, monitor: Monitor, state: dict[str, str]) -> None:
    """Send each new monitor frame, with the scope of the port this page watches."""
    seq = 0
    while True:
        await asyncio.sleep(monitor.period)
        frame = monitor.frame
        if frame["seq"] == seq:
            continue
        seq = frame["seq"]
        message = {
            "type": "frame",
            "seq": seq,
            "meters": frame.get("meters"),
            "status": frame.get("status"),
            "port": state["port"],
            "scope": frame.get("ports", {}).get(state["port"]),
        }
        await socket.send_text(json.dumps(message))


def _control(message: Any, surface: Surface, monitor: Monitor, state: dict[str, str]) -> dict[str, Any] | None:
    """A page's control message over the websocket: ``set``, ``note`` or ``watch``."""
    if not isinstance(message, dict):
        return {"type": "error", "message": "expected a JSON object with a 'type'"}
    kind = message.get("type")
    try:
        if kind == "set":
            surface.set_params(message.get("values"))
            return None
        if kind == "note":
            surface.note(message)
            return None
        if kind == "watch":
            port = message.get("port") or ""
            state["port"] = monitor.rewatch(state["port"], str(port))
            return {"type": "watching", "port": state["port"]}
    except (RequestError, NeuralgraphError) as exc:
        return {"type": "error", "message": str(exc), "request": kind}
    return {"type": "error", "message": f"unknown message type {kind!r} (set, note, watch)"}
