"""The LambdaTest device provider: phones of the private real-device cloud, and our HyperExecute jobs."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from loguru import logger

from provisioner import JobState, Phone, PhoneState, PluginContext, Pool, RemoteError, RemoteJob, monotonic

from .http import LambdaTestApi, url_problem
from .options import OLD_TOOL_TAG, PROVIDER_BOUNDS, PROVIDER_OPTIONS, bounds_problems, with_defaults
from .udid import valid_udid

PHONE_STATES = {
    "active": PhoneState.IDLE,
    "busy": PhoneState.BUSY,
    "initiated": PhoneState.BUSY,
    "cleanup": PhoneState.BUSY,
    "faulty": PhoneState.UNAVAILABLE,
}
# Job statuses, folded by `fold` (lower case, spaces and hyphens as underscores). Seen in real data: initiated,
# running, completed, failed, aborted, lambda_error, timeout. From LambdaTest's status page only, raw spellings
# NOT confirmed (hence the folding): Blocked (waiting for another job's resources or for devices: it still holds
# its phone), Partially Completed and Ignored (ended). queued and waiting are our guesses at other waiting words:
# a waiting job keeps its phone booked, the safe side.
LIVE_JOB_STATES = {"initiated": JobState.STARTING, "running": JobState.RUNNING}
WAITING_JOB_STATES = frozenset({"blocked", "queued", "waiting"})  # starting, until the job has an end time
ENDED_JOB_STATES = frozenset(
    {"completed", "failed", "aborted", "lambda_error", "timeout", "partially_completed", "ignored"}
)

_unknown_seen: set[tuple[str, str]] = set()
_unknown_lock = threading.Lock()


def note_unknown(kind: str, value: str, meaning: str) -> None:
    """Log an unknown ``kind`` of state once per distinct value for the life of the process."""
    with _unknown_lock:
        if (kind, value) in _unknown_seen:
            return
        _unknown_seen.add((kind, value))
    logger.warning("LambdaTest: unknown {} state {!r}, taken as {}", kind, value, meaning)


def phone_state(raw: str) -> PhoneState:
    state = PHONE_STATES.get(raw)
    if state is None:
        note_unknown("device", raw, "unavailable")
        return PhoneState.UNAVAILABLE
    return state


def fold(status: str) -> str:
    """A status word in one spelling: ``Partially Completed``, ``partially-completed`` -> ``partially_completed``."""
    return "_".join(status.strip().lower().replace("-", " ").replace("_", " ").split())


def job_state(status: str, ended: bool) -> tuple[JobState, str]:
    """The job's state and outcome (the folded status once ended) from its status word and whether it has an end."""
    status = fold(status)
    if status in LIVE_JOB_STATES:
        return LIVE_JOB_STATES[status], ""
    if status in WAITING_JOB_STATES and not ended:
        return JobState.STARTING, ""
    if status in ENDED_JOB_STATES or status in WAITING_JOB_STATES:
        return JobState.ENDED, status
    if ended:  # a status we do not know: ended only once the job has an end time
        note_unknown("job", status, "ended")
        return JobState.ENDED, status or "unknown"
    note_unknown("job", status, "starting")  # still alive as far as we know: keeps its phone booked
    return JobState.STARTING, ""


def epoch(value: Any) -> float | None:
    """Seconds since the epoch of an ISO 8601 time (``2025-05-09T03:47:59Z``; no zone means UTC), else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def parse_phone(raw: Any) -> Phone | None:
    """The phone of one device entry (its udid unchecked), None when the entry has no udid."""
    if not isinstance(raw, dict) or not isinstance(raw.get("udid"), str) or not raw["udid"]:
        return None
    status = str(raw.get("status") or "")
    return Phone(
        udid=raw["udid"],
        model=str(raw.get("name") or ""),
        os_version=str(raw.get("fullOsVersion") or raw.get("os_version") or ""),
        state=phone_state(status),
        raw_state=status,
    )


def parse_phones(body: Any, url: str, warned: set[str] | None = None) -> list[Phone]:
    """The phones of a device list; a device whose udid is not a valid UDID is skipped, warned once per udid
    (``warned`` keeps the udids already warned about across calls)."""
    warned = set() if warned is None else warned
    data = body.get("data") if isinstance(body, dict) else None
    devices = data.get("private_cloud_devices") if isinstance(data, dict) else None
    if not isinstance(devices, list):
        raise RemoteError(f"GET {url}: no data.private_cloud_devices list in the answer")
    phones = []
    for index, raw in enumerate(devices):
        phone = parse_phone(raw)
        if phone is None:
            logger.warning("GET {}: device #{} has no udid, skipped", url, index)
        elif not valid_udid(phone.udid):
            if phone.udid not in warned:
                warned.add(phone.udid)
                logger.warning("GET {}: device #{} has an invalid udid {!r}, skipped", url, index, phone.udid[:200])
        else:
            phones.append(phone)
    return phones


def labels_of(raw: Mapping[str, Any]) -> list[str] | None:
    """The job's labels; [] for a job without labels; None for a malformed ``job_label``."""
    value = raw.get("job_label")
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return None
    return value


class LambdaTestDevices:
    """``DeviceProvider`` for LambdaTest's private real-device cloud and its HyperExecute jobs."""

    def __init__(self, options: Mapping[str, Any], context: PluginContext) -> None:
        options = with_defaults(PROVIDER_OPTIONS, options)
        problems = bounds_problems("lambdatest", options, PROVIDER_BOUNDS)
        if problems:
            raise ValueError("; ".join(problems))
        self._options = options
        self._context = context
        self._api = LambdaTestApi(options, context)
        self._devices_url: str = options["devices_url"]
        self._jobs_url: str = options["jobs_url"]
        self._page_size = int(options["jobs_page_size"])
        self._max_pages = int(options["jobs_max_pages"])
        self._budget = float(options["time_budget"])
        # A URL that check refuses is never called (plain http off loopback would send the key in clear text).
        self._refused = {
            key: url_problem(key, options[key], bool(options["allow_http"])) for key in ("devices_url", "jobs_url")
        }
        self._warned_jobs: set[str] = set()
        self._warned_udids: set[str] = set()

    def _refuse(self, key: str) -> None:
        if self._refused[key]:
            raise RemoteError(f"lambdatest: {self._refused[key]}; not called")

    # -- phones -------------------------------------------------------------------------------
    def phones(self) -> list[Phone]:
        self._refuse("devices_url")
        deadline = monotonic(self._context.clock) + self._budget
        body = self._api.get_json(self._devices_url, deadline=deadline)
        return parse_phones(body, self._devices_url, self._warned_udids)

    # -- jobs ---------------------------------------------------------------------------------
    def jobs(self, since: float) -> list[RemoteJob]:
        """Our jobs created at or after ``since``, newest first, read page by page until older ones show."""
        self._refuse("jobs_url")
        found: list[RemoteJob] = []
        cursor: Any = None
        deadline = monotonic(self._context.clock) + self._budget  # for all the pages together
        for _ in range(self._max_pages):
            page, has_more = self._page(cursor, deadline)
            if not page:
                return found
            older = False
            for raw in page:
                created = epoch(raw.get("created_at"))
                older = older or (created is not None and created < since)
                job = self._parse_job(raw)
                if job is not None and job.created_at >= since:
                    found.append(job)
            cursor = page[-1].get("job_number")
            if has_more is False or older or not isinstance(cursor, int):
                return found
        # A list cut short would hide live jobs, and with them the phones they hold: unknown, not partial.
        raise RemoteError(
            f"GET {self._jobs_url}: {self._max_pages} pages of {self._page_size} jobs did not reach the look-back "
            "window's start; raise jobs_max_pages or shorten jobs_lookback_seconds"
        )

    def _page(self, cursor: Any, deadline: float) -> tuple[list[dict[str, Any]], bool | None]:
        params: dict[str, Any] = {
            "limit": self._page_size,
            "is_cursor_base_pagination": "true",
            "show_test_summary": "false",
        }
        if cursor is not None:
            params["cursor"] = cursor
        body = self._api.get_json(self._jobs_url, params, deadline=deadline)
        data = body.get("data") if isinstance(body, dict) else None
        if data is None and isinstance(body, dict) and "metadata" in body:
            data = []  # some pages past the end carry no data at all
        if not isinstance(data, list):
            raise RemoteError(f"GET {self._jobs_url}: no data list in the answer")
        metadata = body.get("metadata")
        has_more = metadata.get("hasmore") if isinstance(metadata, dict) else None
        return [job for job in data if isinstance(job, dict)], has_more if isinstance(has_more, bool) else None

    def _warn_job(self, job_id: str, message: str) -> None:
        if job_id not in self._warned_jobs:
            self._warned_jobs.add(job_id)
            logger.warning("GET {}: job {!r}: {}, skipped", self._jobs_url, job_id[:200], message)

    def _parse_job(self, raw: Mapping[str, Any]) -> RemoteJob | None:
        """One of our jobs, or None for someone else's job or a malformed one (warned once per job)."""
        job_id = str(raw.get("id") or raw.get("job_number") or "?")
        labels = labels_of(raw)
        if labels is None:
            self._warn_job(job_id, f"malformed job_label {str(raw.get('job_label'))[:80]!r}")
            return None
        if not labels or labels[0] != self._context.job_tag:
            return None
        created = epoch(raw.get("created_at"))
        if len(labels) < 2 or not labels[1]:
            self._warn_job(job_id, f"labels {labels!r} name no pool")
            return None
        if created is None or not isinstance(raw.get("id"), str):
            self._warn_job(job_id, "no id or no valid created_at")
            return None
        udid = labels[2] if len(labels) > 2 else ""
        if udid and not valid_udid(udid):
            self._warn_job(job_id, f"invalid udid label {udid[:200]!r}")
            return None
        ended_at = epoch(raw.get("end_time"))
        state, outcome = job_state(str(raw.get("status") or ""), ended_at is not None)
        return RemoteJob(
            job_id=raw["id"],
            pool=labels[1],
            udid=udid,
            state=state,
            created_at=created,
            ended_at=ended_at if state is JobState.ENDED else None,
            outcome=outcome,
        )

    # -- host hooks ---------------------------------------------------------------------------
    def check(self, pools: Sequence[Pool], network: bool) -> list[str]:
        problems = [f"lambdatest: {problem}" for problem in self._refused.values() if problem]
        problems += [
            f"lambdatest: environment variable {self._options[key]} ({key}) is not set"
            for key in ("username_env", "access_key_env")
            if not self._context.environ.get(self._options[key])
        ]
        if self._context.job_tag == OLD_TOOL_TAG and not self._options["old_tool_retired"]:
            problems.append(
                f"lambdatest: job_tag {OLD_TOOL_TAG!r} is the old devicepool tool's: each would count the other's jobs "
                "as its own; give [provisioner] job_tag a tag of its own, or set [plugins.lambdatest] "
                "old_tool_retired = true once that tool no longer runs"
            )
        if network and not problems:
            try:
                self.phones()
                self.jobs(self._context.clock.now() - 3600)
            except RemoteError as exc:
                problems.append(f"lambdatest: {exc}")
        return problems

    def close(self) -> None:
        self._api.close()
