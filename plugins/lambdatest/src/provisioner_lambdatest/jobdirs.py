"""Job directories after their launch: removing old ones, and recovering from a launcher killed mid-launch.

A launch records its CLI's process group in ``cli.pid`` while the CLI runs. A launcher killed uncleanly leaves
that record, the rendered ``hyperexecute.yaml`` (it holds the Taskcluster token) and CLI logs not yet redacted;
``recover()`` ends each orphaned CLI (SIGTERM then SIGKILL to its process group, only while the group's leader
is still that CLI: a recycled pid is never killed) and removes its job directory (secret files first, logs
redacted before: a directory that cannot be removed holds no secret). A directory without a record (its launch
ended) only has its secret files deleted and its logs redacted; it goes with the old ones.

Nothing here follows a symbolic link: the jobs root is opened with ``O_NOFOLLOW`` (a link there is refused, with
one warning), every job directory and file is reached through its parent's descriptor with ``O_NOFOLLOW``, a
link in place of a job directory or a file is left alone, and only real directories are removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import stat
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from loguru import logger

from provisioner import redact

from .payload import RENDERED

PID_FILE = "cli.pid"
LOG_NAME = "cli-output.log"  # the CLI's stdout and stderr
CLI_OWN_LOG = "hyperexecute-cli.log"  # the log the CLI writes itself
LOGS = (LOG_NAME, CLI_OWN_LOG)
SECRET_FILES = (RENDERED,)
KILL_GRACE = 2.0  # seconds an orphaned CLI gets after SIGTERM, and after SIGKILL, to end
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


# -- processes ------------------------------------------------------------------------------------
def process(pid: int) -> tuple[str, int, str] | None:
    """(state, process group, start time) of a live or zombie process, from /proc; None when there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[2]), fields[19]


def is_cli(pid: int, cli: str) -> bool:
    """Whether ``pid`` is alive, leads its process group and runs ``cli`` (its path or name in its command line)."""
    found = process(pid)
    if found is None or found[0] in "ZX" or found[1] != pid:
        return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    name = os.path.basename(cli).encode()
    return any(arg and (arg == cli.encode() or os.path.basename(arg) == name) for arg in args)


def record_cli(job_dir: Path, pid: int, cli: str, secret_env: Sequence[str]) -> None:
    """Write ``cli.pid`` (0600): the CLI's process group, its path, who launched it, and the NAMES of the
    variables holding the secrets it was given (their values are looked up again to redact its logs)."""
    me = process(os.getpid())
    record = {"pgid": pid, "cli": cli, "owner": os.getpid(), "owner_start": me[2] if me else "",
              "secret_env": list(secret_env)}
    fd = os.open(job_dir / PID_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(record, out)


def forget_cli(job_dir: Path) -> None:
    (job_dir / PID_FILE).unlink(missing_ok=True)


def end_cli(pgid: int, cli: str) -> str:
    """End the process group of an orphaned CLI: SIGTERM, then SIGKILL, each followed by at most KILL_GRACE s.

    Each signal is sent only while the group's leader is still ``cli``. Returns what happened, for the log.
    """
    pidfd = _pidfd(pgid)
    try:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not is_cli(pgid, cli):
                return "was not running" if sig == signal.SIGTERM else "ended"
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            _wait_gone(pidfd, pgid, cli)
        return "ended" if not is_cli(pgid, cli) else "still running after SIGKILL"
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)  # pins the process: readable once it has ended
    except (AttributeError, OSError):
        return None


def _wait_gone(pidfd: int | None, pid: int, cli: str) -> None:
    if pidfd is not None:
        select.select([pidfd], [], [], KILL_GRACE)
        return
    end = time.monotonic() + KILL_GRACE  # no pidfd (old kernel): look again every 50 ms
    while is_cli(pid, cli) and time.monotonic() < end:
        time.sleep(0.05)


def _owner_alive(record: Mapping[str, Any]) -> bool:
    """Whether the process that launched the CLI still runs (this one, or another launcher on the same state)."""
    owner = process(record["owner"])
    return owner is not None and owner[0] not in "ZX" and owner[2] == record["owner_start"]


# -- files ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def opened_dir(name: str | Path, dir_fd: int | None = None) -> Iterator[int]:
    """A descriptor of the directory ``name``, which must not be a symbolic link."""
    fd = os.open(name, _DIR, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def scrub(dir_fd: int, secrets: Sequence[str]) -> None:
    """Delete the job's secret files and redact its CLI logs (``secrets``, and every secret the host registered)."""
    for name in SECRET_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)  # a link is removed itself, never what it points to
    for name in LOGS:
        redact_file(dir_fd, name, secrets)


def redact_file(dir_fd: int | None, name: str | Path, secrets: Sequence[str]) -> None:
    """Replace ``secrets`` (and the host's) by ``***`` in the regular file ``name`` (of ``dir_fd``, when given);
    a link in its place is not followed."""
    try:
        fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:  # missing, or a symbolic link (ELOOP): nothing to redact through
        return
    with os.fdopen(fd, "r+b") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        text = file.read().decode("utf-8", errors="replace")
        clean = redact(redact(text), secrets)
        if clean != text:
            file.seek(0)
            file.write(clean.encode("utf-8"))
            file.truncate()


def _read_record(dir_fd: int) -> dict[str, Any] | None:
    try:
        fd = os.open(PID_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        try:
            record = json.loads(file.read(64 * 1024)) if stat.S_ISREG(os.fstat(fd).st_mode) else None
        except ValueError:
            record = None
    valid = (
        isinstance(record, dict)
        and type(record.get("pgid")) is int and record["pgid"] > 1 and record["pgid"] != os.getpgrp()
        and isinstance(record.get("cli"), str) and record["cli"]
        and type(record.get("owner")) is int and isinstance(record.get("owner_start"), str)
        and isinstance(record.get("secret_env"), list) and all(isinstance(n, str) for n in record["secret_env"])
    )
    return record if valid else None


def _remove_tree(name: str, dir_fd: int) -> None:
    """Remove directory ``name`` of ``dir_fd`` and everything in it; links are removed, never followed."""
    with opened_dir(name, dir_fd) as fd:
        with os.scandir(fd) as entries:
            children = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
        for child, is_dir in children:
            if is_dir:
                _remove_tree(child, fd)
            else:
                os.unlink(child, dir_fd=fd)
    os.rmdir(name, dir_fd=dir_fd)


class JobDirs:
    """The job directories under ``root`` (``<state_dir>/jobs``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._warned: set[str] = set()

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning("hyperexecute: {}", message)

    @contextlib.contextmanager
    def _opened_root(self) -> Iterator[int | None]:
        """The root's descriptor; None when it does not exist or cannot be used (a link: warned once)."""
        fd: int | None = None
        try:
            fd = os.open(self.root, _DIR)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if self.root.is_symlink():
                self._warn_once("", f"{self.root} is a symbolic link: refused, job directories are not swept")
            else:
                self._warn_once("", f"{self.root}: {exc.strerror or type(exc).__name__}; job directories not swept")
        try:
            yield fd
        finally:
            if fd is not None:
                os.close(fd)

    def _entries(self, root_fd: int) -> list[tuple[str, os.stat_result]]:
        """The real directories in the root (a symbolic link is warned about once and left alone)."""
        found = []
        with os.scandir(root_fd) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISLNK(info.st_mode):
                    self._warn_once(entry.name, f"{self.root}/{entry.name!r} is a symbolic link: left alone")
                elif stat.S_ISDIR(info.st_mode):
                    found.append((entry.name, info))
        return found

    def remove_old(self, now: float, max_age: float) -> None:
        """Remove the job directories last changed more than ``max_age`` seconds before ``now``."""
        with self._opened_root() as root_fd:
            if root_fd is None:
                return
            for name, info in self._entries(root_fd):
                if now - info.st_mtime > max_age:
                    logger.debug("hyperexecute: removing old job directory {}", name)
                    with contextlib.suppress(OSError):
                        _remove_tree(name, root_fd)

    def recover(self, known: Sequence[str], environ: Mapping[str, str]) -> None:
        """After a killed launcher: end its orphaned CLIs, delete secret files, redact logs (``known`` secrets,
        those named in each ``cli.pid``, and the host's). Jobs of a launcher still running are left alone."""
        with self._opened_root() as root_fd:
            if root_fd is None:
                return
            for name, _ in self._entries(root_fd):
                try:
                    with opened_dir(name, root_fd) as fd:
                        orphaned = self._recover_one(name, fd, known, environ)
                    if orphaned:
                        _remove_tree(name, root_fd)
                except OSError as exc:
                    logger.warning("hyperexecute: job directory {!r}: {}", name, exc.strerror or type(exc).__name__)

    def _recover_one(self, name: str, fd: int, known: Sequence[str], environ: Mapping[str, str]) -> bool:
        """Clean one job directory; True when a killed launcher left it mid-launch (to be removed)."""
        record = _read_record(fd)
        secrets = list(known)
        if record is not None:
            if _owner_alive(record):
                return False
            secrets += [environ.get(variable, "") for variable in record["secret_env"]]
            outcome = end_cli(record["pgid"], record["cli"])
            logger.info("hyperexecute: job directory {!r}: the CLI a killed launcher left (process group {}) {}; "
                        "directory removed", name, record["pgid"], outcome)
        scrub(fd, secrets)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(PID_FILE, dir_fd=fd)
        return record is not None
