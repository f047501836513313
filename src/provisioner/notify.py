"""Tells systemd how the service is doing (the sd_notify protocol), with no dependency.

systemd hands a ``Type=notify`` service the path of a unix datagram socket in ``$NOTIFY_SOCKET``; each
datagram is newline-separated ``KEY=VALUE`` lines. We send ``READY=1`` once the loop is about to start,
``WATCHDOG=1`` after every cycle (so ``WatchdogSec=`` restarts a hung loop) and ``STOPPING=1`` on a stop signal.
Outside systemd (no ``$NOTIFY_SOCKET``) every call does nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from loguru import logger

_failed_once = False


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send one datagram to systemd; return whether it was sent. Never raises."""
    global _failed_once
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket: the name starts with a NUL byte
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
        return True
    except OSError as exc:
        if not _failed_once:  # say it once, not every cycle
            _failed_once = True
            logger.warning("cannot notify systemd through $NOTIFY_SOCKET: {}", exc)
        return False


def ready(status: str = "", environ: Mapping[str, str] | None = None) -> bool:
    return notify("READY=1" + (f"\nSTATUS={status}" if status else ""), environ)


def watchdog(status: str = "", environ: Mapping[str, str] | None = None) -> bool:
    return notify("WATCHDOG=1" + (f"\nSTATUS={status}" if status else ""), environ)


def stopping(environ: Mapping[str, str] | None = None) -> bool:
    return notify("STOPPING=1", environ)


def watchdog_seconds(environ: Mapping[str, str] | None = None) -> float | None:
    """The watchdog period systemd asks for (``$WATCHDOG_USEC``), if it is meant for this process."""
    env = os.environ if environ is None else environ
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1e6
