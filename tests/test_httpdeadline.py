"""Answers ended by closing the connection (no Content-Length, not chunked) go through the request-deadline
adapter like any other: read whole when small, cut off at the deadline when dripped, refused past the size cap."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from provisioner import BodyTooLarge, DeadlineAdapter, deadline, read_capped

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"  # no length, not chunked


class CloseDelimited:
    """One answer on 127.0.0.1: ``HEAD``, then ``body`` in ``step``-byte pieces ``pause`` s apart, then close."""

    def __init__(self, body: bytes, step: int, pause: float = 0.0) -> None:
        self.body, self.step, self.pause = body, step, pause
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/api/queue/v1/ping"
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(HEAD)
                for start in range(0, len(self.body), self.step):
                    conn.sendall(self.body[start:start + self.step])
                    if self.pause and self.stop.wait(self.pause):
                        return
            except OSError:  # the client hung up: what a cut-off wants
                pass

    def __enter__(self) -> CloseDelimited:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.mount("http://", DeadlineAdapter())
        yield s


def get(session: requests.Session, url: str, seconds: float, cap: int) -> bytes:
    with deadline(seconds):
        with session.get(url, timeout=(5, 15), stream=True) as response:
            assert "Content-Length" not in response.headers and "Transfer-Encoding" not in response.headers
            return read_capped(response, cap)


def test_a_close_delimited_answer_is_read_whole(session):
    body = b'{"alive": true, "uptime": 1.0}' + b" " * 100_000  # more than one read
    with CloseDelimited(body, step=8192) as server:
        assert get(session, server.url, 5.0, 1 << 20) == body


def test_a_dripped_close_delimited_answer_is_cut_off_at_the_deadline(session):
    # one byte every 0.2 s: each read is quick, so the 15 s read timeout alone would never fire
    with CloseDelimited(b'{"alive": true}' + b" " * 100, step=1, pause=0.2) as server:
        started = time.monotonic()
        with pytest.raises(requests.ConnectionError):
            get(session, server.url, 0.5, 1 << 20)
        elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 2.0


def test_a_huge_close_delimited_answer_is_refused_at_the_cap(session):
    with CloseDelimited(b"x" * (64 << 20), step=1 << 20) as server:  # 64 MiB offered, 1 MiB accepted
        started = time.monotonic()
        with pytest.raises(BodyTooLarge):
            get(session, server.url, 10.0, 1 << 20)
        assert time.monotonic() - started < 5.0
