"""Endpoint URLs, built by the official client where it knows the method, by hand where it does not.

An older ``taskcluster`` package may lack a method (``taskQueueCountsBatch`` is recent and experimental), so
every URL has a fallback route. Both ways quote path arguments completely (``urllib.parse.quote(arg, "")``:
``/`` becomes ``%2F``) and encode the query with ``urllib.parse.urlencode`` (a continuation token's ``+ / =``
become ``%2B %2F %3D``), as the official client's ``buildUrl`` does.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import taskcluster
from loguru import logger

QUEUE_ROUTES = {
    "taskQueueCounts": "task-queues/{}/counts",
    "taskQueueCountsBatch": "task-queues/counts",
    "ping": "ping",
    "listWorkers": "provisioners/{}/worker-types/{}/workers",
}


def fallback_url(root_url: str, route: str, args: tuple[str, ...], query: dict[str, str]) -> str:
    """``{root}/api/queue/v1/{route}`` with each arg fully quoted, as Taskcluster clients send them."""
    path = route.format(*(urllib.parse.quote(a, safe="") for a in args))
    url = f"{root_url.rstrip('/')}/api/queue/v1/{path}"
    return url + ("?" + urllib.parse.urlencode(query) if query else "")


class Urls:
    """The four endpoints the plugin calls (all the queue's), for one root URL."""

    def __init__(self, root_url: str) -> None:
        self.root_url = root_url.rstrip("/")
        # A client without credentials: it only builds URLs here and never sends anything.
        self._queue: Any = taskcluster.Queue({"rootUrl": self.root_url})

    def counts(self, queue: str) -> str:
        return self._build("taskQueueCounts", (queue,))

    def counts_batch(self) -> str:
        return self._build("taskQueueCountsBatch", ())

    def ping(self) -> str:
        return self._build("ping", ())

    def workers(self, provisioner_id: str, worker_type: str, continuation: str | None) -> str:
        """The queue's ``listWorkers`` (every worker, quarantined or not; no ``quarantined`` filter)."""
        query = {"continuationToken": continuation} if continuation else None
        return self._build("listWorkers", (provisioner_id, worker_type), query)

    def _build(self, method: str, args: tuple[str, ...], query: dict[str, str] | None = None) -> str:
        client = self._queue
        entry = getattr(client, "funcinfo", {}).get(method)
        if entry is not None:
            payload = ({},) if "input" in entry else ()  # buildUrl insists on a payload for POST methods
            try:
                kwargs = {"query": query} if query else {}
                return str(client.buildUrl(method, *args, *payload, **kwargs))
            except Exception as exc:  # an incompatible client version: build it ourselves
                logger.debug("taskcluster client could not build {} ({}); building it by hand", method,
                             type(exc).__name__)
        return fallback_url(self.root_url, QUEUE_ROUTES[method], args, query or {})
