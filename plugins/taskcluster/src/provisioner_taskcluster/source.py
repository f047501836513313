"""The Taskcluster queue source: pending/claimed counts per queue and the quarantined workers (phone UDIDs)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import mohawk
import requests
import taskcluster
from loguru import logger

from provisioner import PluginContext, QueueCounts, Worker

from . import __version__
from .settings import Credentials, Settings, root_url_problem
from .transport import Budget, CallError, Signer, Transport, describe
from .urls import Urls
from .wire import BadBody, batch_counts, queue_counts, split_queue, workers_page

NAME = "taskcluster"
BATCH_LIMIT = 1000  # taskQueueIds per taskQueueCountsBatch call (the schema's maxItems)
BATCH_RECHECK = 6 * 3600.0  # seconds before a deployment that answered 404 to the batch call is asked again
QUEUE_FORMAT = "<provisionerId>/<workerType>, each 1-38 characters of a-z A-Z 0-9 - _"

T = TypeVar("T")


def hawk_signer(root_url: str, credentials: Credentials) -> Signer:
    """Sign requests as the official client does: its Hawk ``ext`` (certificate, authorizedScopes) + mohawk."""
    client: Any = taskcluster.Queue({
        "rootUrl": root_url,
        "credentials": {"clientId": credentials.client_id, "accessToken": credentials.access_token},
    })
    ext = client.makeHawkExt()

    def sign(method: str, url: str, body: bytes | None) -> str:
        sender = mohawk.Sender(
            credentials={"id": credentials.client_id, "key": credentials.access_token, "algorithm": "sha256"},
            ext=ext or {},
            url=url,
            method=method,
            content=body or "",
            content_type="application/json" if body else "",
        )
        return str(sender.request_header)

    return sign


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = f"provisioner-taskcluster/{__version__} {session.headers['User-Agent']}"
    return session


def chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class TaskclusterQueues:
    """``provisioner.types.QueueSource`` backed by a Taskcluster deployment's queue and worker-manager."""

    def __init__(self, settings: Settings, context: PluginContext, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.clock = context.clock
        self.urls = Urls(settings.root_url)
        self.session = session or new_session()
        signer = hawk_signer(settings.root_url, settings.credentials) if settings.credentials else None
        self.transport = Transport(self.session, settings.policy, context.clock, random.Random(context.seed),
                                   signer, settings.who)
        self._batch_missing_at: float | None = None  # when the deployment last answered 404 to the batch call
        self._quarantine: dict[str, tuple[float, dict[str, float]]] = {}  # queue -> (read at, {worker: until})
        if settings.credential_problem:
            logger.warning(settings.credential_problem)

    @classmethod
    def from_options(cls, options: Mapping[str, Any], context: PluginContext) -> TaskclusterQueues:
        """The factory the host calls with the validated ``[plugins.taskcluster]`` table. No network."""
        return cls(Settings.resolve(options, context.environ), context)

    # --- counts -------------------------------------------------------------------------------------------

    def counts(self, queues: Sequence[str]) -> dict[str, QueueCounts | None]:
        """Pending and claimed tasks per queue; None for a queue whose counts are unknown this cycle."""
        budget = Budget(self.clock, self.settings.time_budget)
        result: dict[str, QueueCounts | None] = dict.fromkeys(queues)
        valid = self._valid_queues(result, "counts")
        singles = self._counts_batched(valid, budget, result) if self._use_batch(len(valid)) else valid
        for queue in singles:
            url = self.urls.counts(queue)
            result[queue] = self._fetch("taskQueueCounts", "GET", url, budget, queue_counts)
        return result

    def _use_batch(self, queues: int) -> bool:
        if not self.settings.batch or queues < 2:
            return False
        missing_at = self._batch_missing_at
        return missing_at is None or self.clock.now() - missing_at >= BATCH_RECHECK

    def _counts_batched(self, queues: list[str], budget: Budget,
                        result: dict[str, QueueCounts | None]) -> list[str]:
        """Fill ``result`` from batch calls; answer the queues still to ask one by one (after a 404 or a 403)."""
        singles: list[str] = []
        url = self.urls.counts_batch()
        for index, chunk in enumerate(chunks(queues, BATCH_LIMIT)):
            try:
                body = self.transport.request("taskQueueCountsBatch", "POST", url, budget,
                                              {"taskQueueIds": list(chunk)})
            except CallError as exc:
                if exc.status == 404:
                    self._batch_missing_at = self.clock.now()
                    logger.info("taskcluster: {} has no taskQueueCountsBatch (404): one call per queue for the "
                                "next {:.0f} h", self.settings.root_url, BATCH_RECHECK / 3600)
                    return singles + queues[index * BATCH_LIMIT:]
                logger.warning(str(exc))
                if exc.status == 403:  # one queue without scopes fails the batch: ask each queue on its own
                    singles.extend(chunk)
                continue
            self._batch_missing_at = None
            found = self._parse("taskQueueCountsBatch", "POST", url, body, batch_counts) or {}
            lacking = [queue for queue in chunk if queue not in found]
            if found and lacking:
                logger.warning(describe("taskQueueCountsBatch", "POST", url,
                                        f"answer lacks {len(lacking)} queue(s): {', '.join(lacking[:5])}"))
            for queue in chunk:
                result[queue] = found.get(queue)
        return singles

    # --- quarantine ---------------------------------------------------------------------------------------

    def workers(self, queues: Sequence[str]) -> dict[str, list[Worker] | None]:
        return {
            queue: None if ids is None else [Worker(udid, quarantined_until=float("inf")) for udid in sorted(ids)]
            for queue, ids in self.quarantined(queues).items()
        }

    def quarantined(self, queues: Sequence[str]) -> dict[str, frozenset[str] | None]:
        """Worker ids (phone UDIDs) quarantined now, per queue; None when unknown this cycle.

        A queue's list is read again once ``quarantine_refresh`` seconds have passed; in between, the workers
        read last time count while their ``quarantineUntil`` lies ahead. A failed read is unknown at once.
        """
        budget = Budget(self.clock, self.settings.time_budget)
        now = self.clock.now()
        result: dict[str, frozenset[str] | None] = dict.fromkeys(queues)
        for queue in self._valid_queues(result, "quarantine"):
            cached = self._quarantine.get(queue)
            if cached is None or now - cached[0] >= self.settings.quarantine_refresh:
                provisioner_id, worker_type = queue.split("/")
                until = self._quarantined_one(provisioner_id, worker_type, budget, now)
                cached = None if until is None else (now, until)
                if cached is None:
                    self._quarantine.pop(queue, None)
                else:
                    self._quarantine[queue] = cached
            if cached is not None:
                result[queue] = frozenset(worker for worker, until in cached[1].items() if until > now)
        return result

    def _quarantined_one(self, provisioner_id: str, worker_type: str, budget: Budget,
                         now: float) -> dict[str, float] | None:
        """Follow listWorkers' continuation tokens for at most max_pages pages: {worker id: quarantined until}."""
        found: dict[str, float] = {}
        token: str | None = None
        for _ in range(self.settings.max_pages):
            url = self.urls.workers(provisioner_id, worker_type, token)
            page = self._fetch("listWorkers", "GET", url, budget, lambda body: workers_page(body, now))
            if page is None:
                return None
            ids, token = page
            found.update(ids)
            if token is None:
                return found
        logger.warning(describe("listWorkers", "GET", url,
                                f"still more pages after {self.settings.max_pages}; quarantine unknown"))
        return None

    # --- shared -------------------------------------------------------------------------------------------

    def _valid_queues(self, result: Mapping[str, Any], what: str) -> list[str]:
        valid = [queue for queue in result if split_queue(queue) is not None]
        for queue in result:
            if queue not in valid:
                logger.warning("taskcluster: queue {!r} is not {}; {} unknown", queue, QUEUE_FORMAT, what)
        return valid

    def _fetch(self, endpoint: str, method: str, url: str, budget: Budget,
               parse: Callable[[dict[str, Any]], T]) -> T | None:
        """One GET, parsed; None (and one warning line) when it failed or answered something unexpected."""
        try:
            body = self.transport.request(endpoint, method, url, budget)
        except CallError as exc:
            logger.warning(str(exc))
            return None
        return self._parse(endpoint, method, url, body, parse)

    @staticmethod
    def _parse(endpoint: str, method: str, url: str, body: dict[str, Any],
               parse: Callable[[dict[str, Any]], T]) -> T | None:
        try:
            return parse(body)
        except BadBody as exc:
            logger.warning(describe(endpoint, method, url, f"unexpected body: {exc}"))
            return None

    # --- check and close ----------------------------------------------------------------------------------

    def check(self, pools: Sequence[Any], network: bool) -> list[str]:
        """Problems, one line each: root URL, half-set credentials, queue ids; with network, a ping."""
        problems = [p for p in (root_url_problem(self.settings.root_url, self.settings.root_url_source),
                                self.settings.credential_problem) if p]
        for pool in pools:
            if getattr(pool, "queue_source", NAME) == NAME and split_queue(pool.queue) is None:
                problems.append(f"taskcluster: pool {pool.name}: queue {pool.queue!r} is not {QUEUE_FORMAT}")
        if network and not root_url_problem(self.settings.root_url, self.settings.root_url_source):
            try:
                self.transport.request("ping", "GET", self.urls.ping(), Budget(self.clock, self.settings.time_budget))
            except CallError as exc:
                problems.append(str(exc))
        return problems

    def close(self) -> None:
        self.session.close()
