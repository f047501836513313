"""``UsbRack``: the rack's device provider and job launcher in one object.

Launch -> the pool's ``worker`` command is started for the phone (``ANDROID_SERIAL`` set) under the plugin's
supervisor; its job is ``usbrack-<launch id>``, carrying the request's labels. ``jobs()`` reports those jobs back
(running while the process lives, then ended: ``completed`` on exit status 0, else ``failed``), and ``phones()``
lists a phone that runs one of them as busy.
"""

from __future__ import annotations

import shlex
import shutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provisioner import (
    JobState, LaunchRequest, LaunchResult, Phone, PhoneState, PluginContext, Pool, RemoteError, RemoteJob, redact,
)

from .adb import list_devices
from .supervisor import Supervisor, Worker

KEEP_ENDED = 86400.0  # seconds an ended job stays listed


@dataclass
class Job:
    job_id: str
    labels: tuple[str, str, str]  # (job_tag, pool, udid) as the request gave them
    udid: str  # the phone it runs on (picked here when the request named none)
    worker: Worker


class UsbRack:
    def __init__(self, options: Mapping[str, Any], context: PluginContext) -> None:
        self._context = context
        self._adb = str(options.get("adb", "adb"))
        self._timeout = float(options.get("adb_timeout", 10.0))
        self._worker = [str(a) for a in options.get("worker") or ()]
        self._stop_timeout = float(options.get("stop_timeout", 10.0))
        phones_file = options.get("phones_file") or ""
        self._phones_file = context.resolve(phones_file) if phones_file else None
        self._logs = context.state_dir / "usbrack"
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._supervisor = Supervisor(context.clock.now)

    # -- device provider ----------------------------------------------------------------------------
    def phones(self) -> list[Phone]:
        phones = list_devices(self._adb, self._timeout, self._env())
        if self._phones_file is not None:
            allowed = set(self._allowed())
            phones = [p for p in phones if p.udid in allowed]
        with self._lock:
            held = self._held()
        return [Phone(p.udid, p.model, p.os_version, PhoneState.BUSY, p.raw_state)
                if p.udid in held and p.state is PhoneState.IDLE else p for p in phones]

    def jobs(self, since: float) -> list[RemoteJob]:
        now = self._context.clock.now()
        out = []
        with self._lock:
            for job_id, job in list(self._jobs.items()):
                w = job.worker
                if w.ended_at is not None and now - w.ended_at > KEEP_ENDED:
                    del self._jobs[job_id]
                    continue
                if w.started_at < since or job.labels[0] != self._context.job_tag:
                    continue
                ended = w.ended_at is not None
                out.append(RemoteJob(
                    job_id, pool=job.labels[1], udid=job.labels[2] or job.udid,
                    state=JobState.ENDED if ended else JobState.RUNNING, created_at=w.started_at, ended_at=w.ended_at,
                    outcome=("completed" if w.returncode == 0 else "failed") if ended else "",
                ))
        return out

    # -- job launcher -------------------------------------------------------------------------------
    def launch(self, request: LaunchRequest) -> LaunchResult:
        try:
            udid = request.udid or self._pick(request.pool)
            with self._lock:
                if udid in self._held():
                    return LaunchResult(False, detail=f"phone {udid} already runs a job of ours")
                job_id = f"usbrack-{request.launch_id}"
                self._logs.mkdir(parents=True, exist_ok=True, mode=0o700)
                worker = self._supervisor.start(self._argv(request, udid), self._worker_env(udid),
                                                self._logs / f"{job_id}.log")
                tag, pool, named = (tuple(request.labels) + ("", "", ""))[:3]
                self._jobs[job_id] = Job(job_id, (tag, pool, named), udid, worker)
        except (OSError, RemoteError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            return LaunchResult(False, detail=redact(f"cannot start the worker: {why}".splitlines()[0]))
        return LaunchResult(True, job_id=job_id)

    def render(self, request: LaunchRequest) -> str:
        """What a launch would run; starts nothing, writes nothing."""
        udid = request.udid or f"<an idle phone matching {request.pool.selector}>"
        return f"ANDROID_SERIAL={udid} {shlex.join(self._argv(request, udid))}"

    def check(self, pools: Sequence[Pool], network: bool) -> list[str]:
        problems = []
        if not self._worker:
            problems.append("worker: give the worker's command line")
        elif shutil.which(self._worker[0]) is None:
            problems.append(f"worker: {self._worker[0]} is not an executable")
        if shutil.which(self._adb) is None:
            problems.append(f"adb: {self._adb} is not an executable")
        if self._phones_file is not None and not self._phones_file.is_file():
            problems.append(f"phones_file: {self._phones_file} does not exist")
        return problems

    def close(self) -> None:
        """Stop the supervisor and the workers it started (they get ``stop_timeout`` seconds, then are killed)."""
        self._supervisor.stop(self._stop_timeout)

    # -- helpers ------------------------------------------------------------------------------------
    def _held(self) -> set[str]:
        """The phones our live jobs run on (call with the lock held)."""
        return {j.udid for j in self._jobs.values() if j.worker.ended_at is None}

    def _pick(self, pool: Pool) -> str:
        """An idle phone of the rack for a launch that names none (a selector pool)."""
        for phone in self.phones():
            if phone.state is PhoneState.IDLE and pool.owns(phone):
                return phone.udid
        raise ValueError(f"no idle phone matches {pool.selector}")

    def _argv(self, request: LaunchRequest, udid: str) -> list[str]:
        if not self._worker:
            raise ValueError("no worker command configured")
        fields = {"udid": udid, "pool": request.pool.name, "queue": request.pool.queue, "launch_id": request.launch_id}
        return [arg.format(**fields) for arg in self._worker]

    def _allowed(self) -> list[str]:
        assert self._phones_file is not None
        try:
            lines = self._phones_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise RemoteError(f"phones_file {self._phones_file}: {exc.strerror or type(exc).__name__}") from None
        return [line.strip() for line in lines if line.strip() and not line.startswith("#")]

    def _env(self) -> dict[str, str]:
        return {k: v for k, v in self._context.environ.items() if k in ("PATH", "HOME", "LANG", "ANDROID_HOME")}

    def _worker_env(self, udid: str) -> dict[str, str]:
        return {**self._context.environ, "ANDROID_SERIAL": udid}
