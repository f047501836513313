"""Our runs (``admin/runs``, newest first) as the host's ``RemoteJob``s, with the phone and the ending read from
the run's device sessions when the run list cannot tell them.

Ours: a run of a project named ``<job_tag>-<pool>`` (``project_name``); ``RemoteJob.pool`` is that pool. The run's
``testRunName`` is the launch's labels joined by commas (``<job_tag>,<pool>,<udid>``); its phone is the pinned
launch's phone. When the name does not say (group mode, or a name the server changed: unverified, design Q6), the
phone comes from the run's device sessions, as does every ending (a FINISHED run carries no outcome).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner import JobState, PluginContext, RemoteError, RemoteJob, name_problem

from .api import BitbarApi
from .states import epoch_ms, once, run_state, session_facts

FINISHED_UNREAD = "finished"  # an ended run whose sessions were not read (budget spent): outcome not known


def project_name(job_tag: str, pool: str) -> str:
    return f"{job_tag}-{pool}"


def pool_of(job_tag: str, project: Any) -> str:
    """The pool of one of our projects' names, "" for a project that is not ours."""
    prefix = f"{job_tag}-"
    if not isinstance(project, str) or not project.startswith(prefix):
        return ""
    pool = project[len(prefix):]
    return "" if name_problem(pool) else pool


def labels_phone(name: Any, job_tag: str, pool: str) -> str:
    """The phone a run's ``testRunName`` names, "" when it names none or not in our form."""
    parts = name.split(",") if isinstance(name, str) else []
    if len(parts) == 3 and parts[0] == job_tag and parts[1] == pool and parts[2] and not name_problem(parts[2]):
        return parts[2]
    return ""


class RunReader:
    """``jobs(since)`` for the plugin object. Remembers each run's sessions once they can no longer change."""

    def __init__(self, api: BitbarApi, context: PluginContext, session_reads: int) -> None:
        self._api = api
        self._context = context
        self._budget = session_reads
        self._final: dict[str, tuple[str, str]] = {}  # run id -> (phone, outcome) of an ended run
        self._placed: dict[str, str] = {}  # run id -> the phone a live run was seen on

    def jobs(self, since: float) -> list[RemoteJob]:
        tag = self._context.job_tag
        since_ms = since * 1000.0
        order = {"ordered": True, "last": None}

        def enough(page: list[dict[str, Any]]) -> bool:  # sorted newest first: stop below since
            for row in page:
                created = row.get("createTime")
                if isinstance(created, (int, float)):
                    if order["last"] is not None and created > order["last"]:
                        order["ordered"] = False  # sort not honoured: read the whole list
                    order["last"] = created
            return order["ordered"] and order["last"] is not None and order["last"] < since_ms

        ours: dict[str, tuple[dict[str, Any], str]] = {}
        for row in self._api.rows("admin/runs", {"sort": "createTime_d"}, stop=enough):
            pool = pool_of(tag, row.get("projectName"))
            run_id = row.get("id")
            if not pool or not isinstance(run_id, int) or isinstance(run_id, bool):
                continue
            created = epoch_ms(row.get("createTime"))
            if created is None:
                once("run", str(run_id), f"run {run_id} of project {row.get('projectName')} has no createTime; "
                     "skipped")
                continue
            if created >= since:
                ours[str(run_id)] = (row, pool)
        reads = self._budget
        jobs = []
        for run_id, (row, pool) in ours.items():  # newest first: the budget goes to the runs the host follows
            job, read = self._job(run_id, row, pool, reads > 0)
            reads -= read
            jobs.append(job)
        self._final = {k: v for k, v in self._final.items() if k in ours}  # what left the window is not asked again
        self._placed = {k: v for k, v in self._placed.items() if k in ours}
        return jobs

    def _job(self, run_id: str, row: Mapping[str, Any], pool: str, may_read: bool) -> tuple[RemoteJob, int]:
        created = epoch_ms(row["createTime"]) or 0.0
        state = run_state(row)
        phone = labels_phone(row.get("testRunName"), self._context.job_tag, pool) or self._placed.get(run_id, "")
        read = 0
        if state is JobState.ENDED:
            if run_id not in self._final:
                if may_read:
                    read = 1
                    self._final[run_id] = self._read(run_id, row, ended=True)
                else:
                    self._final[run_id] = ("", FINISHED_UNREAD)
            seen, outcome = self._final[run_id]
            ended = max(epoch_ms(row.get("endTime")) or created, created)
            return RemoteJob(run_id, pool, phone or seen, JobState.ENDED, created, ended, outcome), read
        if state is JobState.RUNNING and not phone and may_read:
            read = 1
            seen, _ = self._read(run_id, row, ended=False)
            if seen:
                self._placed[run_id] = phone = seen
        return RemoteJob(run_id, pool, phone, state, created), read

    def _read(self, run_id: str, row: Mapping[str, Any], ended: bool) -> tuple[str, str]:
        """``(phone, outcome)`` from the run's sessions; a read that fails leaves a live run unplaced and ends an
        ended one with outcome ``finished`` (the phone's own state still says whether it is free)."""
        project = row.get("projectId")
        try:
            rows = list(self._api.rows(f"me/projects/{project}/runs/{run_id}/device-sessions"))
        except RemoteError as exc:
            once("sessions", run_id, f"run {run_id}: device sessions unread ({exc})")
            return "", FINISHED_UNREAD
        phone, outcome = session_facts(rows)
        if ended and outcome is None:
            outcome = FINISHED_UNREAD  # the run ended, its session does not say so yet
        return phone, outcome or ""
