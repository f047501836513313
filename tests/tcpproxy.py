"""A TCP proxy on 127.0.0.1 in front of one server port, for partition tests: ``freeze()`` stops forwarding and
keeps every socket open (a black hole: what is sent is neither delivered nor refused, as across a network that
dropped the link); ``cut()`` closes every connection and refuses new ones; ``mend()`` forwards again. ``freeze(in_transaction=True)``
freezes once a PostgreSQL server tells a client it is ready for the second statement of a transaction (after
BEGIN and one statement: a fenced write holds the leadership row then), right after forwarding that.

One thread accepts; each connection has a thread per direction. Bytes read while frozen are held, and dropped if
the link is then cut (delivered if it is mended: packets that arrive late)."""

from __future__ import annotations

import socket
import threading
import time

OPEN, FROZEN, CUT = "open", "frozen", "cut"


class Proxy:
    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.state = OPEN
        self.frozen = threading.Event()  # set when the link froze (``frozen_at``: then, on the monotonic clock)
        self.frozen_at = 0.0
        self._armed = False  # freeze in the middle of the next transaction
        self._cond = threading.Condition()
        self._sockets: set[socket.socket] = set()
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def url(self, url: str, port: int) -> str:
        """``url`` (a server's connection URL on ``port``) through this proxy."""
        return url.replace(f":{port}/", f":{self.port}/")

    def freeze(self, in_transaction: bool = False) -> None:
        """Freeze now, or in the middle of the next transaction of any connection."""
        if in_transaction:
            with self._cond:
                self._armed = True
        else:
            self._set(FROZEN)

    def cut(self) -> None:
        self._set(CUT)

    def mend(self) -> None:
        self._set(OPEN)

    def close(self) -> None:
        self._set(CUT)
        self.listener.close()

    def _set(self, state: str) -> None:
        with self._cond:
            self.state, self._armed = state, False
            if state == FROZEN:
                self.frozen_at = time.monotonic()
                self.frozen.set()
            else:
                self.frozen.clear()
            if state == CUT:
                for s in list(self._sockets):
                    self._close(s)
            self._cond.notify_all()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), name="proxy-conn", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with self._cond:
            self._sockets.add(client)
            while self.state == FROZEN:  # a connection made across a frozen link hangs
                self._cond.wait()
            if self.state == CUT:
                self._close(client)
                return
        try:
            server = socket.create_connection(self.target)
        except OSError:
            self._close(client)
            return
        with self._cond:
            self._sockets.add(server)
        for src, dst, up in ((client, server, True), (server, client, False)):
            threading.Thread(target=self._pump, args=(src, dst, up), name="proxy-pump", daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        status = b"I"  # the connection's last transaction status the server reported (I: idle, T: in one)
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            with self._cond:
                while self.state == FROZEN:  # held, not forwarded, not refused
                    self._cond.wait()
                if self.state == CUT or not data:
                    self._close(src)
                    self._close(dst)
                    return
                freeze = False
                if not up:  # ReadyForQuery messages: 'Z', length 5, the transaction status
                    for at in _ready(data):
                        freeze = freeze or (self._armed and status == b"T" and data[at:at + 1] == b"T")
                        status = data[at:at + 1]
                try:
                    dst.sendall(data)  # under the lock: a freeze lets no byte through after it
                except OSError:
                    self._close(src)
                    self._close(dst)
                    return
                if freeze:
                    self._set(FROZEN)

    def _close(self, s: socket.socket) -> None:
        self._sockets.discard(s)
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


READY = b"Z\x00\x00\x00\x05"


def _ready(data: bytes) -> list[int]:
    """Where the status byte of each ReadyForQuery message in ``data`` is."""
    found, at = [], data.find(READY)
    while at >= 0:
        found.append(at + len(READY))
        at = data.find(READY, at + 1)
    return found
