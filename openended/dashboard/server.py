"""Start the dashboard: in the foreground (``openended dashboard``) or in a thread beside a run.

Binding: 127.0.0.1 by default. Any other address needs a token: the one in
``$OPENENDED_DASHBOARD_TOKEN``, or a fresh random one, printed in the URL. On loopback the
token is optional (set the variable to require one). The port is taken before uvicorn
starts, so the printed URL is the real one; with the default port busy, a free one is used.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import threading
import time
from typing import Any
from urllib.parse import quote

from openended.dashboard.app import LOOPBACK_HOSTS, create_app
from openended.dashboard.runs import RunsRoot
from openended.errors import ConfigError, DependencyNotInstalled

__all__ = ["DashboardServer", "TOKEN_ENV", "DEFAULT_PORT", "is_loopback", "resolve_token"]

TOKEN_ENV = "OPENENDED_DASHBOARD_TOKEN"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, env: dict[str, str] | None = None) -> str | None:
    """The token the server requires, or ``None``.

    ``$OPENENDED_DASHBOARD_TOKEN`` if set; else a new random one when ``host`` is not
    loopback; else none.
    """
    environ = os.environ if env is None else env
    given = environ.get(TOKEN_ENV, "").strip()
    if given:
        if len(given) < 16:
            raise ConfigError(
                f"${TOKEN_ENV}: use at least 16 characters "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe())')"
            )
        return given
    return None if is_loopback(host) else secrets.token_urlsafe(24)


class DashboardServer:
    """One dashboard over a runs root: `serve_forever` (foreground) or `start` (a daemon thread).

    Args:
        root: a run directory or a folder of runs.
        host / port: where to listen (``port=0``: any free port).
        token: ``None`` resolves it with `resolve_token`; ``""`` forces none (loopback only).
    """

    def __init__(
        self, root: str | os.PathLike, host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None
    ) -> None:
        try:
            import uvicorn
        except ImportError:
            raise DependencyNotInstalled(
                "openended dashboard needs uvicorn; pip install 'openended[dashboard]'"
            ) from None
        self.runs = RunsRoot(root)
        self.host = host
        self.token = resolve_token(host) if token is None else (token or None)
        if self.token is None and not is_loopback(host):
            raise ConfigError(f"dashboard --host {host}: binding beyond loopback needs a token (set ${TOKEN_ENV})")
        self.sock = _bind(host, port)
        self.port = int(self.sock.getsockname()[1])
        allowed = None if self.token is not None else LOOPBACK_HOSTS
        app = create_app(self.runs, token=self.token, allowed_hosts=allowed)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def url(self, fragment: str = "/") -> str:
        """The address to open (with ``?token=`` when a token is set; ``fragment`` after ``#``)."""
        host = self.host if ":" not in self.host else f"[{self.host}]"
        if self.host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        query = f"?token={quote(self.token)}" if self.token else ""
        return f"http://{host}:{self.port}/{query}#{fragment}"

    def preload(self) -> None:
        """Read a single-run root's files in the background now, so the first page is quick."""
        if self.runs.single:
            run_id = next(iter(self.runs.runs()))
            threading.Thread(target=lambda: self.runs.monitor(run_id).refresh(), daemon=True).start()

    def serve_forever(self) -> None:
        """Serve until interrupted (Ctrl-C)."""
        self.preload()
        self.server.run(sockets=[self.sock])

    def start(self) -> DashboardServer:
        """Serve from a daemon thread (beside ``openended run``); returns once it listens."""
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True, name="openended-dashboard"
        )
        self._thread.start()
        while not self.server.started and self._thread.is_alive():
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the server to exit and wait for its thread."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.sock.close()

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; the default port falls back to a free one when taken."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as err:
        if port != DEFAULT_PORT:
            sock.close()
            raise ConfigError(
                f"dashboard --port {port}: cannot listen on {host}:{port} ({err}); pick another port"
            ) from None
        sock.bind((host.strip("[]"), 0))
    sock.listen(128)
    return sock
