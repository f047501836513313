"""One overall deadline per HTTP request, across connect, headers and body together: for plugins' sessions.

Usage: mount ``DeadlineAdapter()`` on a ``requests.Session`` for ``https://`` and ``http://``, then make each
request inside ``with deadline(seconds):``; ``deadline_left()`` tells what remains (e.g. while streaming a body).
With it, what every careful read needs: ``read_capped`` (a body size cap, ``BodyTooLarge``), ``redirect_target``
(a redirect named without its path or query) and ``is_loopback`` (where plain http may be allowed).

``requests``' ``timeout=(connect, read)`` bounds each socket operation, not the request: a server that sends one
byte every 0.4 s never trips a 15 s read timeout and holds the loop for as long as it likes. So every socket our
sessions open is wrapped in a ``DeadlineSocket`` that, before each receive or send, lowers the socket's timeout
to what is left of the deadline of the request in progress on this thread (``with deadline(seconds):``), and
fails at once when none is left. urllib3 then raises its usual timeout, which requests turns into
``ReadTimeout`` (headers) or ``ConnectionError`` (body).

The deadline is measured on ``time.monotonic``: it bounds real socket waits, which an injected virtual clock
cannot shorten; the caller clamps ``seconds`` to the cycle's budget, which is on the injected clock.
Not covered: the DNS lookup (``getaddrinfo`` takes no timeout), the TLS handshake (bounded per read by the
connect timeout, itself clamped to the deadline: the socket is wrapped once TLS is up) and SOCKS proxies (their
own connection classes).
"""

from __future__ import annotations

import io
import ipaddress
import urllib.parse
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Socket operations on this thread inside the block fail once ``seconds`` have passed."""
    _current.at = time.monotonic() + seconds
    try:
        yield
    finally:
        _current.at = None


def deadline_left() -> float | None:
    """Seconds left before this thread's deadline; None outside ``deadline()``."""
    at = getattr(_current, "at", None)
    return None if at is None else at - time.monotonic()


class DeadlineSocket:
    """A socket (plain or TLS) whose every receive and send is bounded by this thread's request deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._timeout = sock.gettimeout()  # what urllib3 asked for: the per-operation read timeout

    def settimeout(self, value: float | None) -> None:
        self._timeout = value
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._timeout

    def _arm(self) -> None:
        remaining = deadline_left()
        if remaining is None:
            self._sock.settimeout(self._timeout)
            return
        if remaining <= 0:
            raise socket.timeout("the request's overall deadline has passed")
        self._sock.settimeout(remaining if self._timeout is None else min(self._timeout, remaining))

    def recv_into(self, buffer: Any, *args: Any) -> int:
        self._arm()
        return self._sock.recv_into(buffer, *args)

    def recv(self, size: int, *args: Any) -> bytes:
        self._arm()
        return self._sock.recv(size, *args)

    def sendall(self, data: Any, *args: Any) -> None:
        self._arm()
        self._sock.sendall(data, *args)

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        # http.client reads a response through sock.makefile("rb"): read through this wrapper, not the socket.
        # Counted as the socket's own makefile counts its readers: an answer ended by closing the connection
        # (no length, not chunked) makes http.client close the connection right after the headers, and the
        # socket must stay open until its body is read through this file (else: EBADF, the body unread).
        self._sock._io_refs += 1  # type: ignore[attr-defined]
        return io.BufferedReader(socket.SocketIO(self, "rb"))  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _DeadlineHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        if isinstance(self.sock, socket.socket):
            self.sock = DeadlineSocket(self.sock)  # type: ignore[assignment]


class _DeadlineHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        if isinstance(self.sock, socket.socket):
            self.sock = DeadlineSocket(self.sock)  # type: ignore[assignment]


class _HTTPPool(HTTPConnectionPool):
    @property  # type: ignore[override]
    def ConnectionCls(self) -> type:  # noqa: N802 - urllib3's name
        # Looked up at use: a test recorder that patched urllib3's class (vcrpy) keeps its own.
        base = HTTPConnectionPool.ConnectionCls
        return _DeadlineHTTPConnection if base is HTTPConnection else base


class _HTTPSPool(HTTPSConnectionPool):
    @property  # type: ignore[override]
    def ConnectionCls(self) -> type:  # noqa: N802
        base = HTTPSConnectionPool.ConnectionCls
        return _DeadlineHTTPSConnection if base is HTTPSConnection else base


POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """``requests`` transport adapter whose connections honour ``deadline()`` (directly or through a proxy)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = dict(POOLS)
        return manager


class BodyTooLarge(Exception):
    """An answer larger than the cap given to ``read_capped``."""


def read_capped(response: requests.Response, cap: int) -> bytes:
    """The (decoded) body of a streamed response (``stream=True``); ``BodyTooLarge`` past ``cap`` bytes, before
    reading them when ``Content-Length`` says so."""
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > cap:
        raise BodyTooLarge
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > cap:
            raise BodyTooLarge
        parts.append(chunk)
    return b"".join(parts)


def redirect_target(response: requests.Response) -> str:
    """`` to https://host`` of a redirect's Location: scheme and host only (a path or query may hold a token)."""
    try:
        parts = urllib.parse.urlsplit(urllib.parse.urljoin(response.url or "", response.headers.get("Location", "")))
        host = parts.hostname
    except ValueError:
        return ""
    return f" to {parts.scheme}://{host}" if parts.scheme and host else ""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine: ``localhost``, 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
