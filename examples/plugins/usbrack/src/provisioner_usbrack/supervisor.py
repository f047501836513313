"""The plugin's own supervisor: starts worker processes, reaps each on a thread of its own and records how it
exited, and stops them all on ``stop()``."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Worker:
    """One worker process: ``returncode`` and ``ended_at`` are set by its reaper when it exits."""

    process: subprocess.Popen
    started_at: float
    ended_at: float | None = None
    returncode: int | None = None
    reaper: threading.Thread | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._workers: list[Worker] = []
        self.stopped = False

    def start(self, argv: Sequence[str], env: Mapping[str, str], log: Path) -> Worker:
        """Start ``argv`` (output to ``log``, 0600) in a session of its own; raises ``OSError`` if it cannot."""
        with self._lock:
            if self.stopped:
                raise OSError("the supervisor is stopped")
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, env=dict(env),
                                           start_new_session=True)
            finally:
                os.close(fd)
            worker = Worker(process, self._now())
            worker.reaper = threading.Thread(target=self._reap, args=(worker,), name=f"reap-{process.pid}", daemon=True)
            self._workers.append(worker)
            worker.reaper.start()
            return worker

    def _reap(self, worker: Worker) -> None:
        returncode = worker.process.wait()
        with self._lock:
            worker.returncode, worker.ended_at = returncode, self._now()

    def stop(self, timeout: float) -> None:
        """Start no more; ask every live worker to stop (SIGTERM), kill those still running after ``timeout``
        seconds, and wait until each has been reaped."""
        with self._lock:
            self.stopped = True
            workers = list(self._workers)
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.terminate()
        for worker in workers:
            try:
                worker.process.wait(timeout)
            except subprocess.TimeoutExpired:
                worker.process.kill()
            assert worker.reaper is not None
            worker.reaper.join()
