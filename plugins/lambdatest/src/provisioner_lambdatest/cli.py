"""Running the HyperExecute CLI: a private environment, a timeout that kills the whole process group,
a file lock so that the CLI's update never races a launch, and reading what it printed."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path


from .environment import base_env

LOCK_NAME = "hyperexecute-cli.lock"
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
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


def run(argv: list[str], cwd: Path, env: Mapping[str, str], timeout: float, log: Path,
        on_start: Callable[[int], None] | None = None) -> CliRun:
    """Run ``argv`` with stdout and stderr into ``log`` (0600); kill its process group after ``timeout`` s.

    ``on_start(pid)`` is called once it runs (its pid is its process group's id); if that raises, the CLI is
    killed. Raises ``OSError`` when the program cannot be started.
    """
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        process = subprocess.Popen(
            argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, umask=0o077,  # what the CLI writes stays private too
        )
        try:
            if on_start is not None:
                on_start(process.pid)
            returncode: int | None = process.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            returncode = None
        except BaseException:
            _kill(process)
            raise
    output = ANSI.sub("", log.read_text(encoding="utf-8", errors="replace"))
    return CliRun(returncode, output)


def _kill(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
