"""The device provider's reads against local servers: an overall deadline per try, a cap on the answer's size,
no redirect followed; URLs that would send the key in clear text are refused; options have sane bounds."""

from __future__ import annotations

import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from provisioner import PluginContext, RemoteError
from provisioner_lambdatest.devices import LambdaTestDevices
from provisioner_lambdatest.http import url_problem

from lt_support import LT_KEY, LT_USER

MIB = 1024 * 1024
Handler = Callable[[socket.socket, "Server"], None]


class Server:
    """A local HTTP server in a thread: reads each request's head, then lets ``handler`` answer on the socket."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.stop = threading.Event()
        self.requests: list[bytes] = []
        self.sent = 0  # body bytes the handler managed to send
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, path: str = "/devices") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while True:
            conn, _ = self._sock.accept()
            if self.stop.is_set():
                conn.close()
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    data = conn.recv(4096)
                    if not data:
                        break
                    head += data
                self.requests.append(head)
                try:
                    self.handler(conn, self)
                except OSError:
                    pass  # the client went away

    def close(self) -> None:
        if self.stop.is_set():
            return
        self.stop.set()
        socket.create_connection(("127.0.0.1", self.port)).close()  # wakes accept()
        self._thread.join(10)
        self._sock.close()
        assert not self._thread.is_alive()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], Server]]:
    servers: list[Server] = []

    def start(handler: Handler) -> Server:
        servers.append(Server(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def drip(conn: socket.socket, server: Server, data: bytes) -> None:
    """One byte of ``data`` every 0.4 s, until the client goes away or the test ends."""
    for byte in data:
        conn.sendall(bytes([byte]))
        server.sent += 1
        if server.stop.wait(0.4):
            return


def drip_body(conn: socket.socket, server: Server) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    drip(conn, server, b" " * 1000)


def drip_headers(conn: socket.socket, server: Server) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    drip(conn, server, b"X-Slow: " + b"a" * 1000)


def flood(conn: socket.socket, server: Server, head: bytes, chunked: bool) -> None:
    """An 800 MB device list: as much of it as the client takes."""
    conn.sendall(head)
    block = b"0" * (64 * 1024)
    piece = b"%x\r\n%s\r\n" % (len(block), block) if chunked else block
    while server.sent < 800 * MIB and not server.stop.is_set():
        conn.sendall(piece)
        server.sent += len(block)


def provider(context: PluginContext, url: str, **options: Any) -> LambdaTestDevices:
    return LambdaTestDevices({"devices_url": url, "retries": 0, **options}, context)


@pytest.mark.parametrize("handler", [drip_body, drip_headers], ids=["body", "headers"])
def test_a_dripping_server_is_cut_off_at_the_deadline(
    context: PluginContext, serve: Callable[[Handler], Server], handler: Handler
) -> None:
    """One byte every 0.4 s never trips the 30 s read timeout: the overall deadline of the try does."""
    server = serve(handler)
    started = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        provider(context, server.url(), request_timeout=1).phones()
    elapsed = time.monotonic() - started
    assert str(caught.value) == f"GET {server.url()}: timed out (no complete answer within 1s) (1 tries)"
    assert 0.9 <= elapsed < 5 and 1 <= server.sent <= 10


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_800_mb_answer_is_refused_without_being_read(
    context: PluginContext, serve: Callable[[Handler], Server], chunked: bool
) -> None:
    length = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % (800 * MIB)
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + length + b"\r\n\r\n"
    server = serve(lambda conn, srv: flood(conn, srv, head, chunked))
    lt = provider(context, server.url(), max_body_bytes=MIB)
    tracemalloc.start()
    try:
        with pytest.raises(RemoteError) as caught:
            lt.phones()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value) == f"GET {server.url()}: answer larger than max_body_bytes ({MIB}); not read"
    assert peak < 16 * MIB  # streamed and dropped, never held whole
    server.close()
    assert server.sent < 100 * MIB  # the client hung up long before the end


def test_a_redirect_is_not_followed_and_names_only_scheme_and_host(
    context: PluginContext, serve: Callable[[Handler], Server]
) -> None:
    def redirect(conn: socket.socket, server: Server) -> None:
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: http://user:pw@other.example/devices?token=tok-123\r\n"
                     b"Content-Length: 0\r\n\r\n")

    server = serve(redirect)
    with pytest.raises(RemoteError) as caught:
        provider(context, server.url(), retries=2).phones()
    assert str(caught.value) == f"GET {server.url()}: HTTP 302 redirect to http://other.example not followed"
    assert len(server.requests) == 1  # not retried, not followed
    assert b"authorization: basic" in server.requests[0].lower()


@pytest.mark.parametrize("url", ["http://devices.example/list", "http://10.0.0.8:8080/list"])
def test_plain_http_off_loopback_is_refused_by_check_and_never_called(
    context: PluginContext, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    lt = LambdaTestDevices({"devices_url": url, "jobs_url": url}, context)
    host = url.split("/")[2].split(":")[0]
    line = (f"devices_url is plain http on {host}, which is not loopback: the access key would travel in clear "
            "text; use https (or set allow_http = true)")
    problems = lt.check([], network=True)
    assert problems[0] == f"lambdatest: {line}" and problems[1].startswith("lambdatest: jobs_url is plain http")

    def get(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("called")

    monkeypatch.setattr(lt._api.session, "get", get)
    with pytest.raises(RemoteError, match="^lambdatest: devices_url is plain http .*; not called$"):
        lt.phones()
    with pytest.raises(RemoteError, match="^lambdatest: jobs_url is plain http"):
        lt.jobs(0.0)


def test_allow_http_lets_plain_http_through(context: PluginContext, monkeypatch: pytest.MonkeyPatch) -> None:
    lt = LambdaTestDevices({"devices_url": "http://devices.example/list", "allow_http": True,
                            "old_tool_retired": True}, context)
    assert lt.check([], network=False) == []
    seen = []

    def get(url: str, **kwargs: Any) -> None:
        seen.append((url, kwargs["auth"]))
        raise RemoteError("stop here")

    monkeypatch.setattr(lt._api.session, "get", get)
    with pytest.raises(RemoteError, match="stop here"):
        lt.phones()
    assert seen == [("http://devices.example/list", (LT_USER, LT_KEY))]


@pytest.mark.parametrize(("url", "problem"), [
    ("https://mobile-api.lambdatest.com/x", ""),
    ("http://127.0.0.1:8080/x", ""),
    ("http://127.9.9.9/x", ""),
    ("http://[::1]:8080/x", ""),
    ("http://localhost/x", ""),
    ("https://user:s3cret@api.example/x", "devices_url must not carry user info: the credentials come from "
                                          "environment variables"),
    ("ftp://api.example/x", "devices_url is not an https URL"),
    ("api.example/x", "devices_url is not an https URL"),
    ("http://[::1/x", "devices_url is not a URL"),
])
def test_url_problems(url: str, problem: str) -> None:
    assert url_problem("devices_url", url, allow_http=False) == problem
    assert "s3cret" not in problem


@pytest.mark.parametrize(("options", "line"), [
    ({"request_timeout": 0.1}, "lambdatest: option request_timeout must be 0.5 to 600 seconds, not 0.1"),
    ({"request_timeout": 3600}, "lambdatest: option request_timeout must be 0.5 to 600 seconds, not 3600"),
    ({"max_body_bytes": 10}, "lambdatest: option max_body_bytes must be 1024 to 268435456 bytes, not 10"),
    ({"max_body_bytes": 800 * MIB}, f"lambdatest: option max_body_bytes must be 1024 to 268435456 bytes, not {800 * MIB}"),
    ({"retries": -1, "jobs_page_size": 0},
     "lambdatest: option retries must be 0 to 10 tries, not -1; "
     "lambdatest: option jobs_page_size must be 1 to 1000 jobs, not 0"),
])
def test_options_out_of_bounds_stop_the_provider_from_starting(
    context: PluginContext, options: dict[str, Any], line: str
) -> None:
    with pytest.raises(ValueError) as caught:
        LambdaTestDevices(options, context)
    assert str(caught.value) == line
