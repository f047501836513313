"""Reading Taskcluster's answers and ids: anything unexpected raises ``BadBody`` with a short reason."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from provisioner import QueueCounts, Worker

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


def parse_time(value: Any, name: str) -> float:
    """An RFC 3339 date as Taskcluster writes it (``2025-06-09T22:05:00.000Z``) -> epoch seconds (no zone: UTC)."""
    if not isinstance(value, str):
        raise BadBody(f"{name} is not a string")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadBody(f"{name} {value[:40]!r} is not a date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def task_run(value: Any) -> str:
    """``latestTask`` ``{"taskId": "HDbB...", "runId": 0}`` -> ``"HDbB.../0"``."""
    if not isinstance(value, dict) or not isinstance(value.get("taskId"), str) or not value["taskId"]:
        raise BadBody("latestTask has no taskId")
    run_id = value.get("runId")
    if isinstance(run_id, bool) or not isinstance(run_id, int) or run_id < 0:
        raise BadBody("latestTask.runId is not a non-negative integer")
    return f"{value['taskId']}/{run_id}"


def worker(entry: dict[str, Any]) -> Worker:
    """One entry of the queue's ``listWorkers`` (with a string ``workerId``) -> ``Worker``.

    Absent optional fields take their defaults (no ``latestTask``: ""; no ``firstClaim``: None, never claimed;
    no ``quarantineUntil``: None); a field present but malformed raises ``BadBody``: what we know of that
    phone (quarantined? claimed?) would be a guess.
    """
    worker_id = entry["workerId"]
    try:
        group = entry.get("workerGroup", "")
        if not isinstance(group, str):
            raise BadBody("workerGroup is not a string")
        latest = task_run(entry["latestTask"]) if entry.get("latestTask") is not None else ""
        first = parse_time(entry["firstClaim"], "firstClaim") if entry.get("firstClaim") is not None else None
        until = entry.get("quarantineUntil")
        quarantined = parse_time(until, "quarantineUntil") if until is not None else None
    except BadBody as exc:
        raise BadBody(f"worker {worker_id[:40]!r}: {exc}") from None
    return Worker(worker_id, latest_task=latest, first_claim=first, quarantined_until=quarantined,
                  worker_group=group)


def workers_page(body: dict[str, Any]) -> tuple[list[Worker], int, str | None]:
    """A queue ``listWorkers`` page -> (its workers, how many entries were skipped, the next token or None).

    Fail-safe rules: a body that is not the schema's shape (no ``workers`` list, a bad token) and a worker
    whose fields are malformed raise ``BadBody`` (the queue's workers are then unknown this cycle); an entry
    with no ``workerId`` names no phone, so nothing depends on it: it is skipped and counted.
    """
    entries = body.get("workers")
    if not isinstance(entries, list):
        raise BadBody("workers missing or not a list")
    token = body.get("continuationToken")
    if token is not None and (not isinstance(token, str) or not token):
        raise BadBody("continuationToken is not a non-empty string")
    found: list[Worker] = []
    skipped = 0
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("workerId"), str) or not entry["workerId"]:
            skipped += 1
            continue
        found.append(worker(entry))
    return found, skipped, token
