"""The dashboard's web app: a read-only JSON API, server-sent events and static pages.

Routes (GET/HEAD only; anything else is 405):
    /                 the single-page app (static/index.html + app.js; Plotly.js is the
                      ``plotly`` package's bundled ``plotly.min.js``, served from here)
    /login            how to pass the token (the only page served without it)
    /static/<name>    the app's files, by a fixed list of names
    /api/runs         the runs table (small files only)
    /api/latest       the id of the run whose files changed last
    /api/summary      ?run=ID -- the run's header (config, status, totals, curricula)
    /api/sampling     ?run=ID&cur=C&x=0&y=1&lo=&hi=&top=40 -- where tasks were sampled
    /api/teacher      ?run=ID&cur=C&student=S&index=N -- a recorded teacher view
    /api/learning     ?run=ID&grid=N -- training curves, held-out curve and heatmap
    /api/system       ?run=ID -- throughput, in-flight tasks, latencies
    /api/stream       ?run=ID (or none: the runs table) -- ``event: update`` whenever the
                      run's files change (checked every ``poll_s``), so pages refetch

Security (see `Guard`): with a token, every request but /login must carry it (header
``Authorization: Bearer``, the ``oe_token`` cookie, or ``?token=`` once, which sets the
cookie); else 401. Served on loopback without a token, the Host header must be a loopback
name (DNS rebinding). Every response carries a strict Content-Security-Policy (scripts from
this origin only, no inline script) and nosniff / no-frame headers. Run ids resolve only to
listed runs (`openended.dashboard.runs`); nothing here writes to a run directory.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import hmac
import importlib.resources
import json
import pathlib
from collections.abc import AsyncIterator, Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

from openended.dashboard.runs import RunsRoot
from openended.dashboard.tail import clean_json
from openended.errors import ConfigError, DependencyNotInstalled, UnknownName

try:
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.middleware.gzip import GZipMiddleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
    from starlette.routing import Route
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as err:  # pragma: no cover - depends on the install
    raise DependencyNotInstalled(
        f"openended dashboard needs starlette and uvicorn ({err}); pip install 'openended[dashboard]'"
    ) from None

__all__ = ["create_app", "Guard", "TOKEN_COOKIE", "plotly_js_path"]

TOKEN_COOKIE = "oe_token"
STATIC = pathlib.Path(__file__).parent / "static"
#: Files served under /static/ (nothing else is).
STATIC_FILES = {
    "app.js": "text/javascript",
    "api.js": "text/javascript",
    "charts.js": "text/javascript",
    "pages.js": "text/javascript",
    "views.js": "text/javascript",
    "style.css": "text/css",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def plotly_js_path() -> pathlib.Path:
    """The ``plotly`` package's own ``plotly.min.js`` (no CDN: the dashboard works offline)."""
    try:
        path = pathlib.Path(str(importlib.resources.files("plotly") / "package_data" / "plotly.min.js"))
    except ModuleNotFoundError:
        raise DependencyNotInstalled(
            "the dashboard serves plotly.min.js from the plotly package; pip install 'openended[dashboard]'"
        ) from None
    if not path.is_file():
        raise DependencyNotInstalled(f"plotly is installed but has no bundled {path}; reinstall plotly")
    return path


class JSONResponse(Response):
    """JSON without NaN/Infinity (browsers reject them): such values become ``null``."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialise compactly; non-finite floats become null."""
        try:
            return json.dumps(content, allow_nan=False, separators=(",", ":")).encode()
        except ValueError:
            return json.dumps(clean_json(content), allow_nan=False, separators=(",", ":")).encode()


class Guard:
    """ASGI middleware: read-only methods, the token, the Host check and security headers."""

    def __init__(self, app: ASGIApp, token: str | None, allowed_hosts: tuple[str, ...] | None) -> None:
        self.app = app
        self.token = token
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check one request, then pass it on with the security headers added."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        early = self._check(scope)
        await (early or self.app)(scope, receive, send_secured)

    def _check(self, scope: Scope) -> Response | None:
        """A response that ends the request (405, 400, 401, 303), or None to serve it."""
        if scope["method"] not in ("GET", "HEAD"):
            return PlainTextResponse("the dashboard is read-only: GET and HEAD only", 405, {"allow": "GET, HEAD"})
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if self.allowed_hosts is not None:
            host = headers.get("host", "")
            name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
            if name not in self.allowed_hosts:
                return PlainTextResponse(f"unexpected Host header {host!r}; open the URL the dashboard printed", 400)
        if self.token is None or scope["path"] == "/login":
            return None
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = dict(query).get("token")
        if given is not None and self._ok(given) and not scope["path"].startswith("/api/"):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope["path"] + (f"?{rest}" if rest else "")
            resp = Response(status_code=303, headers={"location": location, "cache-control": "no-store"})
            resp.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict", path="/")
            return resp
        if self._ok(given) or self._ok(_bearer(headers)) or self._ok(_cookie(headers)):
            return None
        if scope["path"].startswith("/api/"):
            return JSONResponse({"error": "token required: see /login"}, 401)
        return PlainTextResponse("401: this dashboard needs its token; see /login", 401)

    def _ok(self, given: str | None) -> bool:
        return given is not None and self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())


def _bearer(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def _cookie(headers: dict[str, str]) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed cookie header is just no token
        return None
    morsel = jar.get(TOKEN_COOKIE)
    return None if morsel is None else morsel.value


def _int(request: Request, name: str, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"query parameter {name}: expected an integer, got {raw[:40]!r}") from None


@functools.lru_cache(maxsize=2)
def _gzipped(path: pathlib.Path) -> bytes:
    return gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)


def create_app(
    root: RunsRoot | str | pathlib.Path,
    *,
    token: str | None = None,
    allowed_hosts: tuple[str, ...] | None = None,
    poll_s: float = 0.25,
    stream_max_s: float | None = None,
) -> Starlette:
    """The dashboard app over ``root`` (see the module docstring).

    Args:
        root: a `RunsRoot`, or a run directory / folder of runs.
        token: required on every request but /login when set.
        allowed_hosts: accepted Host names (``None``: any; the server passes the loopback
            names when it binds loopback without a token).
        poll_s: how often an open event stream checks the files.
        stream_max_s: close event streams after this long (tests; browsers reconnect).
    """
    runs = root if isinstance(root, RunsRoot) else RunsRoot(root)
    plotly_js = plotly_js_path()

    async def api(fn: Callable[[], Any]) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(fn))
        except UnknownName as e:
            return JSONResponse({"error": str(e)}, 404)
        except ConfigError as e:
            return JSONResponse({"error": str(e)}, 400)

    def monitor(request: Request) -> Any:
        mon = runs.monitor(request.query_params.get("run", ""))
        mon.refresh()
        return mon

    def current_cur(request: Request, mon: Any) -> str:
        names = mon.curriculum_names()
        cur = request.query_params.get("cur") or (names[0] if names else "")
        if names and cur not in names:
            raise ConfigError(f"query parameter cur: unknown curriculum {cur[:60]!r}; this run has {names}")
        return cur

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers={"cache-control": "no-cache"})

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    async def login(request: Request) -> Response:
        return FileResponse(STATIC / "login.html", media_type="text/html")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            headers = {"cache-control": "max-age=86400", "vary": "Accept-Encoding"}
            if "gzip" in request.headers.get("accept-encoding", ""):
                # SPEEDUP: compressed once, not per request (4.8 MB -> 1.4 MB; ~0.5 s of CPU)
                body = await run_in_threadpool(_gzipped, plotly_js)
                return Response(body, media_type="text/javascript", headers={**headers, "content-encoding": "gzip"})
            return FileResponse(plotly_js, media_type="text/javascript", headers=headers)
        media = STATIC_FILES.get(name)
        if media is None:
            return PlainTextResponse("not found", 404)
        return FileResponse(STATIC / name, media_type=media, headers={"cache-control": "no-cache"})

    async def api_runs(request: Request) -> Response:
        return await api(lambda: {"root": runs.root.name, "single": runs.single, "runs": runs.summaries()})

    async def api_latest(request: Request) -> Response:
        return await api(lambda: {"id": runs.latest()})

    async def api_summary(request: Request) -> Response:
        return await api(lambda: {"id": request.query_params.get("run"), **monitor(request).summary()})

    async def api_sampling(request: Request) -> Response:
        def page() -> Any:
            mon = monitor(request)
            return mon.sampling(
                current_cur(request, mon),
                _int(request, "x", 0) or 0,
                _int(request, "y", 1) or 0,
                _int(request, "lo"),
                _int(request, "hi"),
                _int(request, "top", 40) or 40,
            )

        return await api(page)

    async def api_teacher(request: Request) -> Response:
        def page() -> Any:
            mon = monitor(request)
            return mon.teacher(current_cur(request, mon), request.query_params.get("student"), _int(request, "index"))

        return await api(page)

    async def api_learning(request: Request) -> Response:
        return await api(lambda: monitor(request).learning(_int(request, "grid")))

    async def api_system(request: Request) -> Response:
        return await api(lambda: monitor(request).system())

    async def api_stream(request: Request) -> Response:
        run_id = request.query_params.get("run")
        if run_id:
            try:
                mon = runs.monitor(run_id)
            except UnknownName as e:
                return JSONResponse({"error": str(e)}, 404)
            fingerprint: Callable[[], Any] = mon.fingerprint

            def refresh() -> int:
                mon.refresh()
                return mon.version

        else:
            fingerprint = runs.fingerprint
            counter = iter(range(1, 1 << 62))

            def refresh() -> int:
                return next(counter)

        return StreamingResponse(
            _updates(request, fingerprint, refresh, poll_s, stream_max_s),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    routes = [
        Route("/", index),
        Route("/login", login),
        Route("/favicon.ico", favicon),
        Route("/static/{name}", static),
        Route("/api/runs", api_runs),
        Route("/api/latest", api_latest),
        Route("/api/summary", api_summary),
        Route("/api/sampling", api_sampling),
        Route("/api/teacher", api_teacher),
        Route("/api/learning", api_learning),
        Route("/api/system", api_system),
        Route("/api/stream", api_stream),
    ]
    middleware = [
        Middleware(Guard, token=token, allowed_hosts=allowed_hosts),
        Middleware(GZipMiddleware, minimum_size=2048),  # skips text/event-stream
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.runs = runs
    return app


async def _updates(
    request: Request,
    fingerprint: Callable[[], Any],
    refresh: Callable[[], int],
    poll_s: float,
    max_s: float | None,
) -> AsyncIterator[str]:
    """Server-sent events: ``event: update`` whenever ``fingerprint()`` changes.

    ``refresh()`` runs first (its version is the event's data); a comment goes out every
    15 s otherwise; the stream ends when the client goes away (or ``max_s`` passes).
    """
    loop = asyncio.get_running_loop()
    start = last_sent = loop.time()
    seen: Any = object()
    yield "retry: 1000\n\n"
    while max_s is None or loop.time() - start < max_s:
        if await request.is_disconnected():
            return
        key = await run_in_threadpool(fingerprint)
        if key != seen:
            seen = key
            version = await run_in_threadpool(refresh)
            last_sent = loop.time()
            yield f"event: update\ndata: {json.dumps({'version': version})}\n\n"
        elif loop.time() - last_sent > 15:
            last_sent = loop.time()
            yield ": keep-alive\n\n"
        await asyncio.sleep(poll_s)
