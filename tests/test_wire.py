"""The socket for the service's hot calls (`openended.runtime.wire`), without Ray: framing,
the secret, errors, pipelining, many connections, and a server that goes away."""

from __future__ import annotations

import pickle
import socket
import struct
import threading
import time

import pytest

from openended.errors import ConfigError, ServiceError
from openended.runtime.wire import (
    AUTH,
    EXCHANGE,
    REPORT,
    SAMPLE,
    WireChannel,
    WireClosed,
    WireMethod,
    WireServer,
    new_secret,
)


def _fail(body: bytes) -> bytes:
    raise ConfigError(f"report: bad batch {body!r}")


class _Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("no")


def _unpicklable(body: bytes) -> bytes:
    raise _Unpicklable("held a lock")


@pytest.fixture
def server():
    calls: list[tuple[int, bytes]] = []

    def echo(op: int):
        def handler(body: bytes) -> bytes:
            calls.append((op, body))
            return body[::-1]

        return handler

    secret = new_secret()
    srv = WireServer({SAMPLE: echo(SAMPLE), REPORT: _fail, EXCHANGE: _unpicklable}, secret)
    srv.calls = calls  # type: ignore[attr-defined]
    srv.secret = secret  # type: ignore[attr-defined]
    yield srv
    srv.close()


def _channel(server) -> WireChannel:
    return WireChannel("127.0.0.1", server.port, server.secret)


def test_pipelined_requests_come_back_in_order_with_their_own_replies(server):
    chan = _channel(server)
    bodies = [bytes([i % 256]) * (i * 997 % 200_000) for i in range(40)]  # empty up to ~200 kB
    refs = [chan.call(SAMPLE, b) for b in bodies]
    assert [r.result() for r in reversed(refs)] == [b[::-1] for b in reversed(bodies)]
    assert [body for _, body in server.calls] == bodies  # run in the order sent
    assert server.requests == 40
    chan.close()


def _gated_server(reply: bytes) -> tuple[WireServer, threading.Event, bytes]:
    """A server whose SAMPLE handler waits for the returned gate, then answers ``reply``."""
    gate = threading.Event()

    def slow(body: bytes) -> bytes:
        gate.wait(10)
        return reply

    secret = new_secret()
    return WireServer({SAMPLE: slow}, secret), gate, secret


def test_a_reply_is_ready_once_it_has_arrived_and_never_blocks_before():
    srv, gate, secret = _gated_server(b"done")
    try:
        chan = WireChannel("127.0.0.1", srv.port, secret)
        ref = chan.call(SAMPLE, b"")
        assert not ref.ready()
        gate.set()
        assert ref.result() == b"done" and ref.ready()
    finally:
        srv.close()


def test_the_service_error_is_raised_by_the_caller_and_the_connection_stays_up(server):
    chan = _channel(server)
    with pytest.raises(ConfigError, match="bad batch"):
        chan.call(REPORT, b"x").result()
    with pytest.raises(ServiceError, match="_Unpicklable: held a lock"):  # sent as text when it does not pickle
        chan.call(EXCHANGE, b"").result()
    with pytest.raises(ServiceError, match="unknown operation 9"):
        chan.call(9, b"").result()
    assert chan.call(SAMPLE, b"ab").result() == b"ba"


def test_a_wrong_or_missing_secret_is_refused_before_any_handler_runs(server):
    with pytest.raises(ServiceError, match="wrong or missing secret"):
        WireChannel("127.0.0.1", server.port, b"not the secret")
    raw = socket.create_connection(("127.0.0.1", server.port))
    raw.sendall(struct.pack("<IB", 3, SAMPLE) + b"abc")  # no AUTH first
    reply = raw.recv(1 << 16)
    status = struct.unpack_from("<IB", reply)[1]
    assert status == 1 and b"wrong or missing secret" in reply
    assert raw.recv(1 << 16) == b""  # closed by the server
    assert server.calls == []


def test_an_empty_secret_is_refused():
    with pytest.raises(ValueError, match="empty secret"):
        WireServer({}, b"")


def test_a_refused_frame_length_closes_that_connection_only(server):
    good = _channel(server)
    raw = socket.create_connection(("127.0.0.1", server.port))
    raw.sendall(struct.pack("<IB", len(server.secret), AUTH) + server.secret)
    assert struct.unpack("<IB", raw.recv(5))[1] == 0
    raw.sendall(struct.pack("<IB", 0xFFFFFFFF, SAMPLE))  # 4 GiB announced
    assert raw.recv(1 << 16) == b""
    assert good.call(SAMPLE, b"still").result() == b"llits"


def test_many_channels_from_many_threads_each_get_their_own_replies(server):
    errors: list[BaseException] = []

    def client(k: int) -> None:
        try:
            chan = _channel(server)
            refs = [(chan.call(SAMPLE, f"{k}-{i}".encode()), f"{k}-{i}".encode()[::-1]) for i in range(50)]
            for ref, want in refs:
                assert ref.result() == want
            chan.close()
        except BaseException as e:  # noqa: BLE001 - collected for the main thread
            errors.append(e)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert server.requests == 16 * 50 and server.connections == 16


def test_a_server_that_goes_away_fails_pending_and_later_calls_with_wire_closed():
    srv, gate, secret = _gated_server(b"")
    chan = WireChannel("127.0.0.1", srv.port, secret)
    pending = chan.call(SAMPLE, b"")
    closer = threading.Thread(target=srv.close)
    closer.start()
    gate.set()
    closer.join(10)
    with pytest.raises(WireClosed):
        pending.result()
        chan.call(SAMPLE, b"").result()  # the reply may have come before the close: the next one cannot
    assert chan.closed
    with pytest.raises(WireClosed):
        chan.call(SAMPLE, b"").result()


def test_connecting_to_nothing_is_wire_closed():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(WireClosed, match="cannot connect"):
        WireChannel("127.0.0.1", port, new_secret(), connect_timeout_s=2)


def test_a_method_with_two_results_reads_both_from_one_reply():
    secret = new_secret()
    srv = WireServer({EXCHANGE: lambda body: pickle.dumps((len(body), body))}, secret)
    try:
        chan = WireChannel("127.0.0.1", srv.port, secret)
        first, second = WireMethod(chan, EXCHANGE, (lambda b: pickle.loads(b)[0], lambda b: pickle.loads(b)[1])).remote(
            b"four"
        )
        assert (second.result(), first.result()) == (b"four", 4)
        assert srv.requests == 1
        single = WireMethod(chan, EXCHANGE, (pickle.loads,)).remote(b"x")
        assert single.result() == (1, b"x")
    finally:
        srv.close()


def test_the_server_binds_loopback_by_default(server):
    assert server._listener.getsockname()[0] == "127.0.0.1"


def test_before_its_secret_a_connection_cannot_make_the_server_buffer_much(server):
    raw = socket.create_connection(("127.0.0.1", server.port))
    raw.sendall(struct.pack("<IB", 64 << 20, AUTH))  # announces a 64 MiB "secret"
    assert raw.recv(1 << 16) == b""  # dropped at once, nothing buffered
    assert _channel(server).call(SAMPLE, b"ok").result() == b"ko"


def test_a_serving_thread_that_dies_closes_its_connections_instead_of_leaving_callers_hanging(caplog):
    def fatal(body: bytes) -> bytes:
        raise SystemExit("a handler must never do this")

    secret = new_secret()
    srv = WireServer({SAMPLE: fatal}, secret)
    try:
        chan = WireChannel("127.0.0.1", srv.port, secret)
        with pytest.raises(WireClosed):
            chan.call(SAMPLE, b"").result()
        srv._loops[0].thread.join(5)
        assert not srv.alive
        assert "socket thread stopped" in caplog.text
    finally:
        srv.close()


def test_with_several_threads_one_clients_slow_call_does_not_hold_up_anothers():
    gate = threading.Event()
    names: set[str] = set()

    def handler(body: bytes) -> bytes:
        names.add(threading.current_thread().name)
        if body == b"slow":
            assert gate.wait(10)
        return body

    secret = new_secret()
    srv = WireServer({SAMPLE: handler}, secret, threads=2)
    try:
        slow = WireChannel("127.0.0.1", srv.port, secret)
        blocked = slow.call(SAMPLE, b"slow")
        deadline = time.monotonic() + 10
        while not names and time.monotonic() < deadline:  # the slow call is running
            time.sleep(0.01)
        other = None
        for _ in range(20):  # a connection accepted by the free thread answers while the slow call runs
            chan = WireChannel("127.0.0.1", srv.port, secret)
            ref = chan.call(SAMPLE, b"fast")
            time.sleep(0.05)
            if ref.ready():
                other = ref
                break
        assert other is not None and other.result() == b"fast" and not blocked.ready()
        gate.set()
        assert blocked.result() == b"slow"
        assert len(names) == 2 and srv.alive
    finally:
        gate.set()
        srv.close()
    with pytest.raises(ValueError, match="threads must be >= 1"):
        WireServer({}, secret, threads=0)


def test_a_server_that_never_answers_the_handshake_fails_within_the_connect_timeout():
    """A listener that never accepts (a service out of file descriptors): the client gives up, never hangs."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as silent:
        t0 = time.monotonic()
        with pytest.raises(WireClosed, match="lost"):
            WireChannel("127.0.0.1", silent.getsockname()[1], new_secret(), connect_timeout_s=0.5)
        assert time.monotonic() - t0 < 5


def _waves_server(wave_handler) -> tuple[WireServer, threading.Event, threading.Event, bytes]:
    """One serving thread; SAMPLE b"block" holds it until the gate opens; REPORT echoes reversed."""
    gate, entered = threading.Event(), threading.Event()

    def sample(body: bytes) -> bytes:
        if body == b"block":
            entered.set()
            assert gate.wait(10)
        return b"slow"

    secret = new_secret()
    srv = WireServer({SAMPLE: sample, REPORT: lambda body: body[::-1]}, secret, wave_handler=wave_handler)
    return srv, gate, entered, secret


def _hold_then_queue(srv, gate, entered, secret, per_channel: list[list[bytes]]) -> tuple[list, list]:
    """Block the thread, queue ``per_channel``'s REPORTs on channels of their own, release; (channels, refs)."""
    blocker = WireChannel("127.0.0.1", srv.port, secret)
    chans = [WireChannel("127.0.0.1", srv.port, secret) for _ in per_channel]  # authenticated first
    held = blocker.call(SAMPLE, b"block")
    assert entered.wait(10)
    refs = [[chan.call(REPORT, body) for body in bodies] for chan, bodies in zip(chans, per_channel)]
    time.sleep(0.3)  # every request is in the server's socket buffers before the thread is free
    gate.set()
    assert held.result() == b"slow"
    return [blocker, *chans], refs


def test_requests_waiting_on_several_connections_are_served_as_one_wave_each_in_its_connections_order():
    waves: list[list[tuple[int, bytes]]] = []

    def wave(requests: list[tuple[int, bytes]]) -> list[bytes | BaseException]:
        waves.append(list(requests))
        return [ServiceError("refused") if body == b"bad" else body.upper() for _, body in requests]

    srv, gate, entered, secret = _waves_server(wave)
    try:
        chans, refs = _hold_then_queue(srv, gate, entered, secret, [[b"b1", b"b2"], [b"c1"], [b"bad"]])
        assert [r.result() for r in refs[0]] == [b"B1", b"2b"]  # first in the wave, then alone: its own handler
        assert refs[1][0].result() == b"C1"
        with pytest.raises(ServiceError, match="refused"):
            refs[2][0].result()
        assert len(waves) == 1 and sorted(waves[0]) == [(REPORT, b"b1"), (REPORT, b"bad"), (REPORT, b"c1")]
        assert (srv.waves, srv.wave_requests) == (1, 3) and srv.requests == 5
        assert chans[2].call(REPORT, b"ok").result() == b"ko"  # the connection stays up after an error
    finally:
        gate.set()
        srv.close()


def test_a_wave_handler_that_fails_gives_each_caller_its_error_and_the_server_goes_on():
    def broken(requests: list[tuple[int, bytes]]) -> list[bytes | BaseException]:
        raise ConfigError("the wave could not be served")

    srv, gate, entered, secret = _waves_server(broken)
    try:
        chans, refs = _hold_then_queue(srv, gate, entered, secret, [[b"x"], [b"y"]])
        for ref in (refs[0][0], refs[1][0]):
            with pytest.raises(ConfigError, match="could not be served"):
                ref.result()
        assert srv.alive and chans[1].call(REPORT, b"z").result() == b"z"
    finally:
        gate.set()
        srv.close()


def test_requests_sent_with_the_secret_in_one_write_are_all_served(server):
    raw = socket.create_connection(("127.0.0.1", server.port))
    frames = [(AUTH, server.secret), (SAMPLE, b"abc"), (SAMPLE, b"de")]
    raw.sendall(b"".join(struct.pack("<IB", len(body), op) + body for op, body in frames))
    data = b""
    while data.count(b"\x00") < 3 or len(data) < 3 * 5 + 5:  # three OK headers and 5 body bytes
        chunk = raw.recv(1 << 16)
        assert chunk, "the server closed the connection"
        data += chunk
    assert data == struct.pack("<IB", 0, 0) + struct.pack("<IB", 3, 0) + b"cba" + struct.pack("<IB", 2, 0) + b"ed"
    raw.close()


def test_many_pipelining_connections_through_waves_each_get_their_own_replies_in_order():
    """Requests of many connections mixed into waves: every reply reaches its caller, in its order."""
    seen_waves: list[int] = []

    def reply(op: int, body: bytes) -> bytes:
        return body[::-1] if op == SAMPLE else body.upper()

    def wave(requests: list[tuple[int, bytes]]) -> list[bytes | BaseException]:
        seen_waves.append(len(requests))
        return [reply(op, body) for op, body in requests]

    secret = new_secret()
    srv = WireServer(
        {SAMPLE: lambda b: reply(SAMPLE, b), REPORT: lambda b: reply(REPORT, b)}, secret, wave_handler=wave
    )
    errors: list[BaseException] = []

    def client(k: int) -> None:
        try:
            chan = WireChannel("127.0.0.1", srv.port, secret)
            sent = [(SAMPLE if i % 3 else REPORT, f"c{k}-r{i}".encode()) for i in range(150)]
            refs = [chan.call(op, body) for op, body in sent]
            assert [r.result() for r in refs] == [reply(op, body) for op, body in sent]
            chan.close()
        except BaseException as e:  # noqa: BLE001 - reported by the test thread
            errors.append(e)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(12)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors[0]
        assert srv.requests == 12 * 150 and srv.alive
        assert srv.waves > 0 and srv.wave_requests == sum(seen_waves) and all(n >= 2 for n in seen_waves)
    finally:
        srv.close()
