"""Reading Taskcluster's answers and ids: anything unexpected raises ``BadBody`` with a short reason."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from provisioner import QueueCounts

# provisionerId and workerType: 1-38 characters of [a-zA-Z0-9-_] (Taskcluster's identifier pattern).
IDENTIFIER = r"[a-zA-Z0-9_-]{1,38}"
QUEUE_ID = re.compile(rf"^({IDENTIFIER})/({IDENTIFIER})$")


class BadBody(ValueError):
    """A body that is JSON but not the shape the endpoint documents."""


def split_queue(queue: str) -> tuple[str, str] | None:
    """``"proj-autophone/gecko-t-lambda-perf-a55"`` -> ``("proj-autophone", "gecko-t-lambda-perf-a55")``."""
    match = QUEUE_ID.match(queue)
    return (match.group(1), match.group(2)) if match else None


def count_field(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadBody(f"{name} missing or not a non-negative integer")
    return value


def queue_counts(body: dict[str, Any]) -> QueueCounts:
    """A ``taskQueueCounts`` answer -> ``QueueCounts``."""
    return QueueCounts(pending=count_field(body, "pendingTasks"), claimed=count_field(body, "claimedTasks"))


def batch_counts(body: dict[str, Any]) -> dict[str, QueueCounts]:
    """A ``taskQueueCountsBatch`` answer -> counts by taskQueueId; one unreadable entry spoils the whole answer."""
    entries = body.get("taskQueueCounts")
    if not isinstance(entries, list):
        raise BadBody("taskQueueCounts missing or not a list")
    counts: dict[str, QueueCounts] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("taskQueueId"), str):
            raise BadBody("an entry of taskQueueCounts has no taskQueueId")
        counts[entry["taskQueueId"]] = queue_counts(entry)
    return counts


def parse_time(value: Any) -> float:
    """An RFC 3339 date as Taskcluster writes it (``2025-06-09T22:05:00.000Z``) -> epoch seconds."""
    if not isinstance(value, str):
        raise BadBody("quarantineUntil missing or not a string")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadBody(f"quarantineUntil {value[:40]!r} is not a date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def workers_page(body: dict[str, Any], now: float) -> tuple[dict[str, float], str | None]:
    """A ``listWorkers`` page -> ({id: quarantineUntil} of workers quarantined at ``now``, the token or None).

    ``quarantineUntil`` is on every worker; one never quarantined carries a date years in the past, and
    ``quarantined=true`` is no promise: only a ``quarantineUntil`` after ``now`` counts.
    """
    workers = body.get("workers")
    if not isinstance(workers, list):
        raise BadBody("workers missing or not a list")
    quarantined: dict[str, float] = {}
    for worker in workers:
        if not isinstance(worker, dict) or not isinstance(worker.get("workerId"), str):
            raise BadBody("a worker has no workerId")
        until = parse_time(worker.get("quarantineUntil"))
        if until > now:
            quarantined[worker["workerId"]] = until
    token = body.get("continuationToken")
    if token is not None and (not isinstance(token, str) or not token):
        raise BadBody("continuationToken is not a non-empty string")
    return quarantined, token
