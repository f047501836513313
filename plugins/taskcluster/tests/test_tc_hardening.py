"""Issue 11 for this plugin's reads: one deadline per request, a body size cap, no redirects followed."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tc_helpers import Q1, make_response, unknown

PING = "/api/queue/v1/ping"


class CannedServer:
    """A raw HTTP server on 127.0.0.1 that answers every request with ``head`` then ``body``, ``step`` bytes
    every ``pause`` seconds (``pause`` 0: all at once). Stops dripping as soon as the client hangs up."""

    def __init__(self, head: bytes, body: bytes = b"", step: int = 0, pause: float = 0.0, drip_head: bool = False):
        self.head, self.body, self.step, self.pause, self.drip_head = head, body, step, pause, drip_head
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.root_url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                if self.stop.is_set():
                    return
                conn.recv(65536)
                try:
                    self._send(conn)
                except OSError:  # the client gave up: what the test wants
                    pass

    def _send(self, conn: socket.socket) -> None:
        steady, dripped = (b"", self.head + self.body) if self.drip_head else (self.head, self.body)
        conn.sendall(steady)
        if not self.pause:
            conn.sendall(dripped)
            return
        for start in range(0, len(dripped), self.step):
            conn.sendall(dripped[start:start + self.step])
            if self.stop.wait(self.pause):
                return

    def __enter__(self) -> CannedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        socket.create_connection(("127.0.0.1", self.port)).close()  # wakes the accept()
        self.thread.join(timeout=5)
        self.listener.close()


def head(status: str = "200 OK", length: int | None = None, extra: str = "") -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json"]
    lines += [f"Content-Length: {length}"] if length is not None else ["Transfer-Encoding: chunked"]
    return ("\r\n".join(lines) + extra + "\r\n\r\n").encode()


@pytest.fixture
def real_source(make_source) -> Iterator:
    """A source on a real session (our deadline adapter) with one attempt per call."""
    yield lambda server, **options: make_source(**{"root_url": server.root_url, "max_attempts": 1, **options})


@pytest.mark.parametrize("drip_head", [True, False], ids=["headers", "body"])
def test_tc_a_dripping_server_is_cut_off_at_the_request_deadline(real_source, tc_log, drip_head):
    body = b'{"alive": true, "uptime": 1.0}' + b" " * 200
    # one byte every 0.4 s: each socket read is quick, so the 15 s read timeout alone never fires
    with CannedServer(head(length=len(body)), body, step=1, pause=0.4, drip_head=drip_head) as server:
        source = real_source(server, request_timeout=0.5, read_timeout=15)
        started = time.monotonic()
        problems = source.check([], network=True)
        elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 2.0
    assert problems == [f"taskcluster ping GET {server.root_url}{PING}: timed out (no complete answer within 0.5 s); "
                        "gave up after 1 attempt"]


def test_tc_a_deadline_is_retried_like_a_timeout(real_source, clock):
    with CannedServer(head(length=100), b"x" * 100, step=1, pause=0.4) as server:
        problems = real_source(server, request_timeout=0.5, backoff=0.1, max_attempts=2).check([], network=True)
    assert problems[0].endswith("timed out (no complete answer within 0.5 s); gave up after 2 attempts")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_tc_an_oversized_answer_is_refused(real_source, tc_log, chunked):
    payload = b'{"workers": [' + b'{"workerId": "R5CW0000000"},' * 100 + b'{"workerId": "X"}]}'
    if chunked:
        data, status_head = f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n", head()
    else:
        data, status_head = payload, head(length=len(payload))
    with CannedServer(status_head, data) as server:
        line = unknown(lambda: real_source(server, max_body_bytes=1024).workers([Q1]))
    assert line.endswith(": answer larger than max_body_bytes (1024); not read")
    assert tc_log[-1].endswith(line)


def test_tc_an_answer_under_the_cap_is_read(real_source):
    payload = b'{"workers": [{"workerId": "R5CW0000000"}]}'
    with CannedServer(head(length=len(payload)), payload) as server:
        answer = real_source(server, max_body_bytes=1024).workers([Q1])
    assert [w.worker_id for w in answer[Q1]] == ["R5CW0000000"]


@pytest.mark.parametrize("location", [
    "http://tc.example.com/api/queue/v1/ping",  # plain http
    "https://elsewhere.example.net/ping?bewit=s3cr3t",  # another host; its query (a token?) is never echoed
    "/api/queue/v2/ping",  # same host: not followed either (the plugin follows no redirect)
])
def test_tc_redirects_are_not_followed(make_source, stub_session, tc_log, location):
    session, adapter = stub_session(lambda request: make_response(request, 302, "", {"Location": location}))
    unknown(lambda: make_source(session=session, root_url="https://tc.example.com").workers([Q1]))
    assert len(adapter.calls) == 1  # the session did not follow it either
    (line,) = tc_log
    assert "HTTP 302 redirect to " in line and line.endswith(" not followed") and "s3cr3t" not in line
