"""Running the HyperExecute CLI: a private environment, a timeout that kills the whole process group,
a file lock so that the CLI's update never races a launch, and reading what it printed, up to a cap.

The CLI's output (stdout and stderr) is read from a pipe as it comes; only its first ``HEAD`` bytes and its
last ``TAIL`` bytes are kept, in memory and in the log file written when it ends, with one line saying how many
bytes between were not kept. A CLI that prints without end costs the daemon at most that, per launch: the
job's id and link come early, the reason of a failure comes last."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path


from .environment import base_env

LOCK_NAME = "hyperexecute-cli.lock"
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
HEAD = 64 * 1024  # bytes of the CLI's output kept from its start
TAIL = 256 * 1024  # bytes of the CLI's output kept from its end
CHUNK = 64 * 1024  # bytes read from its pipe at once
POLL = 0.5  # seconds between two looks at whether the CLI ended while a child of its keeps the pipe open
# The CLI prints the job's dashboard link (the form third-party wrappers parse the id from); a separate
# "Job ID: <id>" line is not confirmed by any independent source. Either gives the id.
JOB_ID = re.compile(r"Job ID:\s*([0-9A-Za-z-]+)")
JOB_LINK = re.compile(r"https://hyperexecute\.lambdatest\.com/hyperexecute/task\?jobId=([0-9A-Za-z-]+)")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
JOB_URL = "https://hyperexecute.lambdatest.com/hyperexecute/task?jobId={}"


@dataclass(frozen=True)
class CliRun:
    """How one run of the CLI ended: ``returncode`` is None when it was killed after the timeout."""

    returncode: int | None
    output: str

    @property
    def job_id(self) -> str:
        """The job's id from a ``Job ID:`` line, else from the dashboard link; "" when the output has neither."""
        match = JOB_ID.search(self.output) or JOB_LINK.search(self.output)
        return match.group(1) if match else ""

    @property
    def job_url(self) -> str:
        return JOB_URL.format(self.job_id) if self.job_id else ""

    def tail(self, lines: int = 8, chars: int = 600) -> str:
        kept = [line.strip() for line in self.output.splitlines() if line.strip()][-lines:]
        return " | ".join(kept)[-chars:] or "no output"


def cli_env(environ: Mapping[str, str], username: str, access_key: str) -> dict[str, str]:
    """The CLI's environment: ``base_env`` and its credentials; nothing else of ours reaches it."""
    env = base_env(environ)
    env["LT_USERNAME"] = username
    env["LT_ACCESS_KEY"] = access_key
    return env


@contextlib.contextmanager
def cli_lock(state_dir: Path, exclusive: bool) -> Iterator[None]:
    """Shared while a launch runs the CLI, exclusive while the CLI updates itself."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


class Kept:
    """What is kept of the CLI's output: its first ``HEAD`` bytes, its last ``TAIL`` and the count in between."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()  # at most 2 * TAIL: trimmed to TAIL when it grows past that
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = HEAD - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        if len(self.tail) > 2 * TAIL:
            cut = len(self.tail) - TAIL
            self.dropped += cut
            del self.tail[:cut]

    def text(self) -> bytes:
        cut = max(0, len(self.tail) - TAIL)
        dropped = self.dropped + cut
        marker = f"\n[... {dropped} bytes of the CLI's output not kept ...]\n".encode() if dropped else b""
        return bytes(self.head) + marker + bytes(self.tail[cut:])


def run(argv: list[str], cwd: Path, env: Mapping[str, str], timeout: float, log: Path,
        on_start: Callable[[int], None] | None = None) -> CliRun:
    """Run ``argv``, its stdout and stderr kept up to the cap (see ``Kept``) and written to ``log`` (0600) when
    it ends; kill its process group after ``timeout`` s.

    ``on_start(pid)`` is called once it runs (its pid is its process group's id); if that raises, the CLI is
    killed. Raises ``OSError`` when the program cannot be started.
    """
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    kept = Kept()
    with os.fdopen(fd, "wb") as out:
        process = subprocess.Popen(
            argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, umask=0o077,  # what the CLI writes stays private too
        )
        assert process.stdout is not None
        try:
            if on_start is not None:
                on_start(process.pid)
            returncode = _read(process, kept, time.monotonic() + timeout)
        except BaseException:
            _kill(process)
            raise
        finally:
            process.stdout.close()
            text = kept.text()
            out.write(text)
    return CliRun(returncode, ANSI.sub("", text.decode("utf-8", errors="replace")))


def _read(process: subprocess.Popen[bytes], kept: Kept, deadline: float) -> int | None:
    """Read the CLI's output into ``kept`` until it ends; its exit status, or None when killed at ``deadline``."""
    assert process.stdout is not None
    pipe = process.stdout.fileno()
    os.set_blocking(pipe, False)
    poller = select.poll()
    poller.register(pipe, select.POLLIN)
    while (left := deadline - time.monotonic()) > 0:
        if poller.poll(min(left, POLL) * 1000):
            try:
                chunk = os.read(pipe, CHUNK)
            except BlockingIOError:
                continue
            if not chunk:  # every writer closed the pipe: the CLI ended
                break
            kept.add(chunk)
        elif process.poll() is not None:  # it ended; a child of its own still holds the pipe, silent
            break
    try:
        return process.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _kill(process)
        return None


def _kill(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
