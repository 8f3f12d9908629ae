"""A direct socket between env hosts and the teacher service for the hot calls (the data plane).

Why: every Ray actor call costs ~0.6 ms of the service's CPU and ~0.5 ms of the caller's
on this project's 2-core machines, whatever it carries, and that, not the teacher, is
what bounded one service (a no-op Ray actor took ~1.2M rows/s at 1,024 a call and ~1,300
calls/s at batch 1). The three calls an env host makes in a loop (``sample_columns_wire``,
``report_wire``, ``exchange_wire``: bytes in, bytes out) can instead travel as
length-prefixed frames over one TCP connection per client, served by one thread in the
service actor. Ray stays the control plane: clients find the service, and learn the
socket's address and secret, through an ordinary (authenticated) actor call, and every
other method stays a Ray call. Measured: docs/benchmarks.md "A socket for the hot calls".

Protocol (both directions): a header ``<u32 body length><u8 code>``, then the body.
Requests name an operation (``code`` = op); replies carry ``OK`` or ``ERROR`` (the body
is then a pickled exception, raised by the caller). A connection's first request must be
``AUTH`` with the server's secret; anything else, or a wrong secret, closes it. Replies
come back in request order, so a client may pipeline requests and read replies later.

Trust: bodies are pickles, as Ray's own arguments are; the secret (32 random bytes per
service actor, handed out only over Ray) keeps anyone without Ray access out. The server
binds ``127.0.0.1`` unless told otherwise.

Contents:
    WireServer  -- the service side: selector loops on one or more threads, handlers by op code.
    WireChannel -- the client side: one connection, pipelined requests, FIFO replies.
    WireRef     -- a reply to come (what ``.remote()`` gives on the Ray path).
    WireClosed  -- the connection is gone (treated like a dead actor: resend, reconnect).
    hot_method  -- a service's hot method over a channel, its reply decoded as Ray would return it.
"""

from __future__ import annotations

import logging
import pickle
import secrets
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from openended.errors import ServiceError

__all__ = [
    "AUTH",
    "EXCHANGE",
    "REPORT",
    "SAMPLE",
    "WireChannel",
    "WireClosed",
    "WireMethod",
    "WireRef",
    "WireServer",
    "hot_method",
    "new_secret",
]

AUTH, SAMPLE, REPORT, EXCHANGE = 0, 1, 2, 3
OK, ERROR = 0, 1
_HEADER = struct.Struct("<IB")
MAX_FRAME = 1 << 30  # a body larger than 1 GiB is refused (a corrupt or hostile length)
_MAX_AUTH_FRAME = 1024  # before its secret is checked, a connection may not make the server buffer more
_RECV = 1 << 18

_log = logging.getLogger(__name__)


class WireClosed(ConnectionError):
    """The connection to the service's socket is gone: the request may or may not have run."""


def new_secret() -> bytes:
    """32 random bytes: what a client must send first."""
    return secrets.token_bytes(32)


def _pickled_error(e: BaseException) -> bytes:
    try:
        return pickle.dumps(e, protocol=5)
    except Exception:  # noqa: BLE001 - an exception that does not pickle still reaches the caller, as text
        return pickle.dumps(ServiceError(f"{type(e).__name__}: {e}"), protocol=5)


def _raise_open_files_limit() -> None:
    """Let this process hold a connection per env host: soft ``RLIMIT_NOFILE`` up to the hard one.

    Many Linux logins start processes at a soft limit of 1,024 open files, which a service
    with a connection per env actor would reach before 1,000 actors.
    """
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard))
    except (ImportError, ValueError, OSError):  # not POSIX, or not allowed: stay at the limit there is
        pass


class _Waker:
    """A socket pair that wakes a thread blocked in ``select`` (to stop, or to take new connections)."""

    def __init__(self) -> None:
        self.reader, self._writer = socket.socketpair()
        self.reader.setblocking(False)

    def wake(self) -> None:
        try:
            self._writer.send(b"x")
        except OSError:  # closed already: nobody is waiting
            pass

    def drain(self) -> None:
        try:
            self.reader.recv(4096)
        except (BlockingIOError, InterruptedError):
            pass

    def close(self) -> None:
        self.reader.close()
        self._writer.close()


def _keepalive(sock: socket.socket) -> None:
    """Notice a peer whose node vanished (no FIN) in ~25 s instead of hours."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


# --------------------------------------------------------------------------- server
class _Connection:
    __slots__ = ("sock", "inbox", "outbox", "authed", "requests")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.authed = False
        self.requests: deque[tuple[int, bytes]] = deque()  # read, not yet served: (op, body)


#: Serves a wave of requests from different connections at once: ``[(op, body), ...]`` in,
#: each request's reply body or the exception to send back, in the same order, out.
WaveHandler = Callable[[list[tuple[int, bytes]]], list["bytes | BaseException"]]


class WireServer:
    """Serves ``handlers[op](body) -> reply body`` on ``threads`` serving threads.

    Each connection is served by one thread, its requests one at a time and in order; a
    thread serves many connections back to back. A thread of its own accepts connections
    and hands them to the serving threads in turn, so with several threads several
    clients' calls run at once (as Ray calls do with ``max_concurrency`` > 1; the core's
    report queue then merges their reports). A handler's exception goes back to the caller
    (pickled); the connection stays open.

    Waves: what a thread reads from its ready connections in one pass is served in waves,
    one request per connection each (so each connection's requests still run in order).
    With ``wave_handler``, a wave of two or more requests for ``handlers``' ops goes to it
    as one call, which may serve them together (the service applies the reports among
    them as one update); a lone request always goes to ``handlers[op]``, so one client's
    calls are served the same whoever else is connected.
    """

    def __init__(
        self,
        handlers: Mapping[int, Callable[[bytes], bytes]],
        secret: bytes,
        host: str = "127.0.0.1",
        port: int = 0,
        threads: int = 1,
        wave_handler: WaveHandler | None = None,
    ) -> None:
        if not secret:
            raise ValueError("WireServer: an empty secret would let anyone in")
        if threads < 1:
            raise ValueError(f"WireServer: threads must be >= 1, got {threads}")
        self._handlers = dict(handlers)
        self._wave_handler = wave_handler
        self.waves = 0  # waves of two or more requests given to the wave handler, all threads
        self.wave_requests = 0  # the requests in them
        self._secret = bytes(secret)
        _raise_open_files_limit()
        self._listener = socket.create_server((host, port), backlog=1024)
        self._listener.setblocking(False)
        self._stop = False
        self._accepted = 0
        self._loops = [_ServingLoop(self, i) for i in range(threads)]
        self._waker = _Waker()
        self._acceptor = threading.Thread(target=self._accept_forever, name="openended-wire-accept", daemon=True)
        self._acceptor.start()

    def _accept_forever(self) -> None:
        """Hand each new connection to the next serving thread in turn (a slow request never delays a connect)."""
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._waker.reader, selectors.EVENT_READ)
            while not self._stop:
                for key, _ in selector.select():
                    if key.fileobj is self._waker.reader:
                        return
                    while True:
                        try:
                            sock, _addr = self._listener.accept()
                        except (BlockingIOError, InterruptedError):
                            break
                        except OSError as e:
                            if self._stop or self._listener.fileno() < 0:
                                return  # the listener was closed
                            # Out of file descriptors (EMFILE) or an aborted connect: the waiting
                            # client times out and makes Ray calls; keep accepting the others.
                            _log.warning("the service's socket could not accept a connection: %s", e)
                            time.sleep(0.1)
                            break
                        sock.setblocking(False)
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        _keepalive(sock)
                        self._loops[self._accepted % len(self._loops)].take(sock)
                        self._accepted += 1

    @property
    def port(self) -> int:
        """The port the server listens on (the OS picks one for ``port=0``)."""
        return int(self._listener.getsockname()[1])

    @property
    def requests(self) -> int:
        """Requests served (handlers run), all threads."""
        return sum(loop.requests for loop in self._loops)

    @property
    def connections(self) -> int:
        """Connections accepted, all threads."""
        return sum(loop.connections for loop in self._loops)

    @property
    def alive(self) -> bool:
        """Whether every thread runs (a serving thread that died has closed its connections)."""
        return self._acceptor.is_alive() and all(loop.thread.is_alive() for loop in self._loops)

    def close(self) -> None:
        """Stop the threads and close every connection (idempotent)."""
        if self._stop:
            return
        self._stop = True
        self._waker.wake()
        self._acceptor.join(timeout=5)
        for loop in self._loops:
            loop.waker.wake()
        for loop in self._loops:
            loop.close()
        self._listener.close()
        self._waker.close()


class _ServingLoop:
    """One serving thread: a selector over the connections handed to it, served one request at a time."""

    def __init__(self, server: WireServer, index: int) -> None:
        self.server = server
        self.requests = 0
        self.connections = 0
        self._incoming: deque[socket.socket] = deque()  # handed over by the accepting thread
        self.waker = _Waker()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.waker.reader, selectors.EVENT_READ, None)
        self.thread = threading.Thread(target=self._run, name=f"openended-wire-{index}", daemon=True)
        self.thread.start()

    def take(self, sock: socket.socket) -> None:
        """Serve ``sock`` from now on (the accepting thread calls this)."""
        if not self.thread.is_alive():
            sock.close()  # a dead thread serves nothing: the client sees WireClosed and falls back
            return
        self._incoming.append(sock)
        self.waker.wake()

    def close(self) -> None:
        self.thread.join(timeout=5)
        for key in list(self._selector.get_map().values()):
            if key.data is not None:
                key.data.sock.close()
        self._selector.close()
        self.waker.close()

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:  # noqa: BLE001 - logged; `wire_address` starts a new server
            _log.exception("the service's socket thread stopped")
        finally:
            # Clients blocked on a reply get EOF (WireClosed) and fall back, never a hang.
            for key in list(self._selector.get_map().values()):
                if key.data is not None:
                    key.data.sock.close()
            while self._incoming:
                self._incoming.popleft().close()

    def _loop(self) -> None:
        while not self.server._stop:
            readable: list[_Connection] = []
            for key, events in self._selector.select():
                if key.fileobj is self.waker.reader:
                    self.waker.drain()
                    if self.server._stop:
                        return
                    while self._incoming:
                        self._register(self._incoming.popleft())
                else:
                    conn: _Connection = key.data
                    try:
                        if events & selectors.EVENT_READ and self._read(conn):
                            readable.append(conn)
                        if events & selectors.EVENT_WRITE and conn.sock.fileno() >= 0:
                            self._write(conn)
                    except OSError:
                        self._drop(conn)
            if readable:
                self._serve_waves(readable)

    def _register(self, sock: socket.socket) -> None:
        self._selector.register(sock, selectors.EVENT_READ, _Connection(sock))
        self.connections += 1

    def _drop(self, conn: _Connection) -> None:
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def _read(self, conn: _Connection) -> bool:
        """Receive what ``conn`` sent and queue its complete requests; whether any wait to be served."""
        try:
            data = conn.sock.recv(_RECV)
        except (BlockingIOError, InterruptedError):
            return False
        if not data:
            self._drop(conn)
            return False
        conn.inbox += data
        return self._parse(conn)

    def _parse(self, conn: _Connection) -> bool:
        """Queue the complete requests in ``conn``'s inbox; whether any wait to be served.

        Before its secret a connection gets one request (its AUTH) queued, and what follows
        is parsed only once that has been served, against the limit that then applies.
        """
        inbox = conn.inbox
        start = 0
        while len(inbox) - start >= _HEADER.size and (conn.authed or not conn.requests):
            size, op = _HEADER.unpack_from(inbox, start)
            if size > (MAX_FRAME if conn.authed else _MAX_AUTH_FRAME):
                self._drop(conn)
                return False
            end = start + _HEADER.size + size
            if len(inbox) < end:
                break
            conn.requests.append((op, bytes(inbox[start + _HEADER.size : end])))
            start = end
        if start:
            del inbox[:start]
        return bool(conn.requests)

    def _serve_waves(self, conns: list[_Connection]) -> None:
        """Serve the requests just read, a wave at a time: each connection's next request."""
        together = self.server._wave_handler is not None
        while conns:
            wave: list[tuple[_Connection, int, bytes]] = []
            for conn in conns:
                op, body = conn.requests.popleft()
                if together and conn.authed and op in self.server._handlers:
                    wave.append((conn, op, body))
                elif not self._serve(conn, op, body):
                    conn.requests.clear()
                    self._flush_and_drop(conn)
            if len(wave) == 1:
                self._serve(*wave[0])
            elif wave:
                self._serve_together(wave)
            still: list[_Connection] = []
            for conn in conns:
                if conn.sock.fileno() >= 0 and (conn.requests or (conn.inbox and self._parse(conn))):
                    still.append(conn)
                elif conn.outbox and conn.sock.fileno() >= 0:
                    try:
                        self._write(conn)
                    except OSError:
                        self._drop(conn)
            conns = still

    def _serve_together(self, wave: list[tuple[_Connection, int, bytes]]) -> None:
        """Several connections' requests in one `WaveHandler` call (its error, if it fails, goes to each)."""
        handler = self.server._wave_handler
        assert handler is not None
        self.requests += len(wave)
        self.server.waves += 1
        self.server.wave_requests += len(wave)
        try:
            results: list[bytes | BaseException] = handler([(op, body) for _, op, body in wave])
            if len(results) != len(wave):
                raise ServiceError(f"wire: the wave handler gave {len(results)} replies for {len(wave)} requests")
        except Exception as e:  # noqa: BLE001 - each caller raises it, as from its own handler
            results = [e] * len(wave)
        for (conn, _op, _body), out in zip(wave, results):
            if isinstance(out, BaseException):
                self._reply(conn, ERROR, _pickled_error(out))
            else:
                self._reply(conn, OK, out)

    def _serve(self, conn: _Connection, op: int, body: bytes) -> bool:
        """Run one request and queue its reply; False: the connection must close."""
        if not conn.authed:
            if op == AUTH and secrets.compare_digest(body, self.server._secret):
                conn.authed = True
                self._reply(conn, OK, b"")
                return True
            self._reply(conn, ERROR, _pickled_error(ServiceError("wire: wrong or missing secret")))
            return False
        handler = self.server._handlers.get(op)
        if handler is None:
            self._reply(conn, ERROR, _pickled_error(ServiceError(f"wire: unknown operation {op}")))
            return True
        self.requests += 1
        try:
            out = handler(body)
        except Exception as e:  # noqa: BLE001 - the caller raises it, as ray.get would
            self._reply(conn, ERROR, _pickled_error(e))
        else:
            self._reply(conn, OK, out)
        return True

    @staticmethod
    def _reply(conn: _Connection, status: int, body: bytes) -> None:
        conn.outbox += _HEADER.pack(len(body), status)
        conn.outbox += body

    def _write(self, conn: _Connection) -> None:
        try:
            sent = conn.sock.send(conn.outbox)
        except (BlockingIOError, InterruptedError):
            sent = 0
        del conn.outbox[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbox else 0)
        self._selector.modify(conn.sock, events, conn)

    def _flush_and_drop(self, conn: _Connection) -> None:
        try:
            conn.sock.setblocking(True)
            conn.sock.settimeout(1.0)
            conn.sock.sendall(conn.outbox)
        except OSError:
            pass
        self._drop(conn)


# --------------------------------------------------------------------------- client
class _Reply:
    __slots__ = ("status", "body", "error")

    def __init__(self) -> None:
        self.status: int | None = None
        self.body = b""
        self.error: BaseException | None = None  # set when the connection failed first


class WireRef:
    """One result of a request: ``decode(reply body)``, or the error the service raised.

    What a Ray ``ObjectRef`` is on the Ray path; `TeacherClient` waits on either kind.
    """

    __slots__ = ("_channel", "_reply", "_decode")

    def __init__(self, channel: WireChannel, reply: _Reply, decode: Callable[[bytes], Any]) -> None:
        self._channel = channel
        self._reply = reply
        self._decode = decode

    def ready(self) -> bool:
        """Whether the reply has come (reads what has arrived, never blocks)."""
        if self._reply.status is None and self._reply.error is None:
            self._channel.poll()
        return self._reply.status is not None or self._reply.error is not None

    def wait(self) -> None:
        """Block until the reply has come (or the connection failed)."""
        self._channel.wait_for(self._reply)

    def result(self) -> Any:
        """The decoded reply; raises the service's exception, or `WireClosed`."""
        self.wait()
        reply = self._reply
        if reply.error is not None:
            raise reply.error
        if reply.status == ERROR:
            raise pickle.loads(reply.body)
        return self._decode(reply.body)


class WireChannel:
    """One authenticated connection to a `WireServer`; not thread-safe (one per client).

    ``call`` sends at once and returns a `WireRef`; replies are read, in order, when a
    caller asks for one (``ready``, ``result``). A failed connection fails every pending
    and later request with `WireClosed`.
    """

    def __init__(self, host: str, port: int, secret: bytes, connect_timeout_s: float = 10.0) -> None:
        try:
            sock = socket.create_connection((host, port), timeout=connect_timeout_s)
        except OSError as e:
            raise WireClosed(f"wire: cannot connect to {host}:{port}: {e}") from e
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _keepalive(sock)
        self.address = (host, port)
        self._sock = sock
        self._pending: deque[_Reply] = deque()
        self._inbox = bytearray()
        self._failed: WireClosed | None = None
        reply = self._send(AUTH, secret)  # within the connect timeout: a server that never accepts fails here
        self.wait_for(reply)
        if reply.error is not None:
            raise reply.error
        sock.settimeout(None)  # replies may take as long as the service's work (Ray's get waits too)
        if reply.status != OK:
            self.close()
            raise pickle.loads(reply.body)

    @property
    def closed(self) -> bool:
        """Whether the connection has failed or been closed."""
        return self._failed is not None

    def call(self, op: int, body: bytes, decode: Callable[[bytes], Any] = bytes) -> WireRef:
        """Send one request; its reply, decoded by ``decode``, is the returned ref's result."""
        return WireRef(self, self._send(op, body), decode)

    def call_shared(self, op: int, body: bytes, decoders: tuple[Callable[[bytes], Any], ...]) -> tuple[WireRef, ...]:
        """One request, several results read from the same reply (``num_returns`` on the Ray path)."""
        reply = self._send(op, body)
        return tuple(WireRef(self, reply, d) for d in decoders)

    def _send(self, op: int, body: bytes) -> _Reply:
        reply = _Reply()
        if self._failed is not None:
            reply.error = self._failed
            return reply
        self._pending.append(reply)
        try:
            self._sock.sendmsg([_HEADER.pack(len(body), op), body])
        except OSError as e:
            self._fail(e)
        return reply

    def poll(self) -> None:
        """Take in every reply that has arrived, without blocking."""
        while self._pending and self._failed is None:
            try:
                data = self._sock.recv(_RECV, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._fail(e)
                return
            if not self._take(data):
                return

    def wait_for(self, reply: _Reply) -> None:
        """Read replies (blocking) until ``reply`` has come or the connection failed."""
        while reply.status is None and reply.error is None:
            if self._failed is not None:  # defensive: _fail sets every pending reply's error
                reply.error = self._failed
                return
            try:
                data = self._sock.recv(_RECV)
            except OSError as e:
                self._fail(e)
                return
            self._take(data)

    def _take(self, data: bytes) -> bool:
        """Add received bytes and resolve the complete replies; False: the peer closed."""
        if not data:
            self._fail(EOFError("the service closed the connection"))
            return False
        inbox = self._inbox
        inbox += data
        start = 0
        while len(inbox) - start >= _HEADER.size:
            size, status = _HEADER.unpack_from(inbox, start)
            end = start + _HEADER.size + size
            if len(inbox) < end:
                break
            if not self._pending:
                self._fail(ServiceError("wire: a reply came for no request"))
                return False
            reply = self._pending.popleft()
            reply.body = bytes(inbox[start + _HEADER.size : end])
            reply.status = status
            start = end
        if start:
            del inbox[:start]
        return True

    def _fail(self, cause: BaseException) -> None:
        if self._failed is None:
            self._failed = WireClosed(f"wire: connection to {self.address[0]}:{self.address[1]} lost: {cause}")
        for reply in self._pending:
            reply.error = self._failed
        self._pending.clear()
        try:
            self._sock.close()
        except OSError:
            pass

    def close(self) -> None:
        """Close the connection; replies not read yet fail with `WireClosed`."""
        self._fail(WireClosed("closed by the client"))


class WireMethod:
    """A service method over a `WireChannel`, called like a Ray actor method (``.remote``, ``.options``)."""

    def __init__(self, channel: WireChannel, op: int, decoders: tuple[Callable[[bytes], Any], ...]) -> None:
        self.channel = channel
        self.op = op
        self.decoders = decoders

    def remote(self, body: bytes) -> Any:
        """Send ``body``: a `WireRef`, or a tuple of them when the method has several results."""
        if len(self.decoders) == 1:
            return self.channel.call(self.op, body, self.decoders[0])
        return self.channel.call_shared(self.op, body, self.decoders)


def _first(body: bytes) -> Any:
    return pickle.loads(body)[0]


def _second(body: bytes) -> Any:
    return pickle.loads(body)[1]


#: The service's hot methods by name: their op code and how to read their reply, one decoder
#: per result as Ray returns them (``exchange_wire`` has two: ``num_returns=2``).
#: `TeacherServiceActor.wire_address` serves the same three methods under these codes.
HOT_METHODS: dict[str, tuple[int, tuple[Callable[[bytes], Any], ...]]] = {
    "sample_columns_wire": (SAMPLE, (bytes,)),
    "report_wire": (REPORT, (pickle.loads,)),
    "exchange_wire": (EXCHANGE, (_first, _second)),
}


def hot_method(channel: WireChannel, name: str) -> WireMethod:
    """The service's hot method ``name`` over ``channel``: ``.remote(request bytes)`` as on Ray."""
    op, decoders = HOT_METHODS[name]
    return WireMethod(channel, op, decoders)
