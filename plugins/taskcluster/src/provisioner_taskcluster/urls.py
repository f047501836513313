"""Endpoint URLs, built by the official client where it knows the method, by hand where it does not.

An older ``taskcluster`` package may lack a method (``taskQueueCountsBatch`` is recent and experimental), so
every URL has a fallback route; both ways quote path arguments completely (``/`` becomes ``%2F``).
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
}
WORKER_MANAGER_ROUTES = {
    "listWorkers": "provisioners/{}/worker-types/{}/workers",
}


def fallback_url(root_url: str, service: str, route: str, args: tuple[str, ...], query: dict[str, str]) -> str:
    """``{root}/api/{service}/v1/{route}`` with each arg fully quoted, as Taskcluster clients send them."""
    path = route.format(*(urllib.parse.quote(a, safe="") for a in args))
    url = f"{root_url.rstrip('/')}/api/{service}/v1/{path}"
    return url + ("?" + urllib.parse.urlencode(query) if query else "")


class Urls:
    """The four endpoints the plugin calls, for one root URL."""

    def __init__(self, root_url: str) -> None:
        self.root_url = root_url.rstrip("/")
        # Clients without credentials: they only build URLs here and never send anything.
        self._queue: Any = taskcluster.Queue({"rootUrl": self.root_url})
        self._worker_manager: Any = taskcluster.WorkerManager({"rootUrl": self.root_url})

    def counts(self, queue: str) -> str:
        return self._build(self._queue, "queue", QUEUE_ROUTES, "taskQueueCounts", (queue,))

    def counts_batch(self) -> str:
        return self._build(self._queue, "queue", QUEUE_ROUTES, "taskQueueCountsBatch", ())

    def ping(self) -> str:
        return self._build(self._queue, "queue", QUEUE_ROUTES, "ping", ())

    def workers(self, provisioner_id: str, worker_type: str, continuation: str | None) -> str:
        query = {"quarantined": "true"}
        if continuation:
            query["continuationToken"] = continuation
        return self._build(self._worker_manager, "worker-manager", WORKER_MANAGER_ROUTES, "listWorkers",
                           (provisioner_id, worker_type), query)

    def _build(self, client: Any, service: str, routes: dict[str, str], method: str, args: tuple[str, ...],
               query: dict[str, str] | None = None) -> str:
        entry = getattr(client, "funcinfo", {}).get(method)
        if entry is not None:
            payload = ({},) if "input" in entry else ()  # buildUrl insists on a payload for POST methods
            try:
                kwargs = {"query": query} if query else {}
                return str(client.buildUrl(method, *args, *payload, **kwargs))
            except Exception as exc:  # an incompatible client version: build it ourselves
                logger.debug("taskcluster client could not build {} ({}); building it by hand", method,
                             type(exc).__name__)
        return fallback_url(self.root_url, service, routes[method], args, query or {})
