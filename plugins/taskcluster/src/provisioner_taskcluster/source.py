"""The Taskcluster queue source: pending/claimed counts per queue and the queue's record of each worker."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import mohawk
import requests
import taskcluster
from loguru import logger

from provisioner import DeadlineAdapter, PluginContext, QueueCounts, RemoteError, Worker, monotonic

from . import __version__
from .settings import Credentials, Settings, certificate_expired, root_url_problem
from .transport import Budget, CallError, Signer, Transport, describe
from .urls import Urls
from .wire import BadBody, batch_counts, queue_counts, split_queue, workers_page

MAX_NAMED = 20  # queues named in one warning line

NAME = "taskcluster"
BATCH_LIMIT = 1000  # taskQueueIds per taskQueueCountsBatch call (the schema's maxItems)
BATCH_RECHECK = 6 * 3600.0  # seconds before a deployment that answered 404 to the batch call is asked again
QUEUE_FORMAT = "<provisionerId>/<workerType>, each 1-38 characters of a-z A-Z 0-9 - _"

T = TypeVar("T")


def hawk_signer(root_url: str, credentials: Credentials) -> Signer:
    """Sign requests as the official client does: its Hawk ``ext`` (``BaseClient.makeHawkExt``: the temporary
    credentials' certificate, parsed) and ``mohawk.Sender`` with the same arguments as its ``_makeHttpRequest``."""
    given = {"clientId": credentials.client_id, "accessToken": credentials.access_token}
    if credentials.certificate:
        given["certificate"] = credentials.certificate
    client: Any = taskcluster.Queue({"rootUrl": root_url, "credentials": given})
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
    session.mount("https://", DeadlineAdapter())
    session.mount("http://", DeadlineAdapter())
    session.headers["User-Agent"] = f"provisioner-taskcluster/{__version__} {session.headers['User-Agent']}"
    return session


def chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class TaskclusterQueues:
    """``provisioner.QueueSource`` backed by a Taskcluster deployment's queue."""

    def __init__(self, settings: Settings, context: PluginContext, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.clock = context.clock
        self.urls = Urls(settings.root_url)
        self.session = session or new_session()
        signer = hawk_signer(settings.root_url, settings.credentials) if settings.credentials else None
        self.transport = Transport(self.session, settings.policy, context.clock, random.Random(context.seed),
                                   signer, settings.who)
        self._batch_missing_at: float | None = None  # when the deployment last answered 404 to the batch call
        self._skip_warned: set[str] = set()  # queues whose listWorkers had entries without a workerId
        self._failed: list[str] = []  # this read's failed calls, one line each
        self._refused_status: int | None = None  # this read's first 401/403
        self._credentials_named = False  # the credentials' variables were named since the last read they passed
        # A root URL that check refuses (plain http off loopback, user info, not a URL) is never called.
        self.url_problem = root_url_problem(settings.root_url, settings.root_url_source, settings.allow_http)
        for problem in (settings.credential_problem, settings.deprecated):
            if problem:
                logger.warning(problem)

    @classmethod
    def from_options(cls, options: Mapping[str, Any], context: PluginContext) -> TaskclusterQueues:
        """The factory the host calls with the validated ``[plugins.taskcluster]`` table. No network."""
        return cls(Settings.resolve(options, context.environ), context)

    # --- counts -------------------------------------------------------------------------------------------

    def counts(self, queues: Sequence[str]) -> dict[str, QueueCounts | None]:
        """Pending and claimed tasks per queue; None for a queue whose counts are unknown this cycle."""
        budget = Budget(self.clock, self.settings.time_budget)
        result: dict[str, QueueCounts | None] = dict.fromkeys(queues)
        self._start_read(result)
        valid = self._valid_queues(result, "counts")
        singles = self._counts_batched(valid, budget, result) if self._use_batch(len(valid)) else valid
        for queue in singles:
            url = self.urls.counts(queue)
            result[queue] = self._fetch("taskQueueCounts", "GET", url, budget, queue_counts)
        return self._known(result)

    def _use_batch(self, queues: int) -> bool:
        if not self.settings.batch or queues < 2:
            return False
        missing_at = self._batch_missing_at
        return missing_at is None or monotonic(self.clock) - missing_at >= BATCH_RECHECK

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
                    self._batch_missing_at = monotonic(self.clock)  # an interval: on the monotonic clock
                    logger.info("taskcluster: {} has no taskQueueCountsBatch (404): one call per queue for the "
                                "next {:.0f} h", self.settings.root_url, BATCH_RECHECK / 3600)
                    return singles + queues[index * BATCH_LIMIT:]
                if exc.status == 403:  # one queue without scopes fails the batch: ask each queue on its own
                    logger.warning(str(exc))
                    singles.extend(chunk)
                else:
                    self._fail(exc)
                continue
            self._batch_missing_at = None
            found = self._parse("taskQueueCountsBatch", "POST", url, body, batch_counts)
            if found is None:
                continue  # unknown, and already said why
            lacking = [queue for queue in chunk if queue not in found]
            if lacking:
                named = ", ".join(lacking[:MAX_NAMED]) + (f" and {len(lacking) - MAX_NAMED} more"
                                                          if len(lacking) > MAX_NAMED else "")
                self._fail(CallError("taskQueueCountsBatch", "POST", url,
                                     f"answer lacks {len(lacking)} queue(s), unknown this cycle: {named}"))
            for queue in chunk:
                result[queue] = found.get(queue)
        return singles

    # --- workers ------------------------------------------------------------------------------------------

    def workers(self, queues: Sequence[str]) -> dict[str, list[Worker] | None]:
        """Every worker the queue records, per queue, read fresh (the host needs this cycle's claims).

        None for a queue whose workers are unknown this cycle: a failed or garbled read, more than
        ``max_pages`` pages, or the cycle's time budget spent.
        """
        budget = Budget(self.clock, self.settings.time_budget)
        result: dict[str, list[Worker] | None] = dict.fromkeys(queues)
        self._start_read(result)
        for queue in self._valid_queues(result, "workers"):
            provisioner_id, worker_type = queue.split("/")
            result[queue] = self._workers_one(queue, provisioner_id, worker_type, budget)
        return self._known(result)

    def _workers_one(self, queue: str, provisioner_id: str, worker_type: str, budget: Budget) -> list[Worker] | None:
        """Follow listWorkers' continuation tokens for at most max_pages pages; a worker seen twice counts once."""
        found: dict[tuple[str, str], Worker] = {}
        skipped = 0
        token: str | None = None
        for _ in range(self.settings.max_pages):
            url = self.urls.workers(provisioner_id, worker_type, token)
            page = self._fetch("listWorkers", "GET", url, budget, workers_page)
            if page is None:
                return None
            workers, page_skipped, token = page
            found.update(((w.worker_group, w.worker_id), w) for w in workers)
            skipped += page_skipped
            if token is None:
                if skipped and queue not in self._skip_warned:  # once per queue: it would repeat every cycle
                    self._skip_warned.add(queue)
                    logger.warning(describe("listWorkers", "GET", url, f"skipped {skipped} worker entr"
                                            f"{'y' if skipped == 1 else 'ies'} without a workerId"))
                return list(found.values())
        self._fail(CallError("listWorkers", "GET", url,
                             f"still more pages after {self.settings.max_pages}; workers unknown"))
        return None

    # --- shared -------------------------------------------------------------------------------------------

    def _start_read(self, result: Mapping[str, Any]) -> None:
        """A read begins: no call failed yet. A root URL that ``check`` refuses makes it unknown at once."""
        self._failed, self._refused_status = [], None
        if self.url_problem and result:
            raise RemoteError(f"{self.url_problem}; no call made")

    def _fail(self, exc: CallError) -> None:
        """One call of this read failed: one warning line, remembered for the read's own error."""
        logger.warning(str(exc))
        self._failed.append(str(exc))
        if exc.status in (401, 403) and self._refused_status is None:
            self._refused_status = exc.status

    def _known(self, result: dict[str, T | None]) -> dict[str, T | None]:
        """The read's answer; ``RemoteError`` when calls failed and no queue is known: an outage, or credentials
        refused, is an unknown read (counted, alerted on), not a quiet row of unknown queues. A read that knows
        some queues answers them (the others None: their warnings said why)."""
        failed, status = self._failed, self._refused_status
        if status is None:
            self._credentials_named = False  # refused again later: named again
        if not failed or any(value is not None for value in result.values()):
            return result
        line = failed[0] + (f" (and {len(failed) - 1} more failed call{'s' if len(failed) > 2 else ''})"
                            if len(failed) > 1 else "")
        if status is not None and not self._credentials_named:
            self._credentials_named = True  # once: the host logs this line every cycle the read fails
            line += f"; {self.refused_credentials(status)}"
        raise RemoteError(line)

    def refused_credentials(self, status: int) -> str:
        """What a 401 or 403 says about the credentials: their variables by name, never their values."""
        settings = self.settings
        names = settings.credential_variables()
        if settings.credentials is None:
            return f"the calls are anonymous: set {names} to a client with the queue's scopes"
        if status == 401:
            return (f"Taskcluster refused the credentials of {settings.who} from {names}: expired or revoked? "
                    "Renew them and restart")
        return f"{settings.who} (from {names}) lacks the scopes named above"

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
            self._fail(exc)
            return None
        return self._parse(endpoint, method, url, body, parse)

    def _parse(self, endpoint: str, method: str, url: str, body: dict[str, Any],
               parse: Callable[[dict[str, Any]], T]) -> T | None:
        try:
            return parse(body)
        except BadBody as exc:
            self._fail(CallError(endpoint, method, url, f"unexpected body: {exc}"))
            return None

    # --- check and close ----------------------------------------------------------------------------------

    def check(self, pools: Sequence[Any], network: bool) -> list[str]:
        """Problems, one line each: root URL, half-set credentials, queue ids; with network, a ping."""
        problems = [p for p in (self.url_problem, self.settings.credential_problem) if p]
        expired = certificate_expired(self.settings.credentials.certificate, self.clock.now()) \
            if self.settings.credentials else ""
        if expired:
            problems.append(f"taskcluster: the certificate in ${self.settings.certificate_env} expired at {expired}: "
                            "calls will fail with HTTP 401")
        for pool in pools:
            if getattr(pool, "queue_source", NAME) == NAME and split_queue(pool.queue) is None:
                problems.append(f"taskcluster: pool {pool.name}: queue {pool.queue!r} is not {QUEUE_FORMAT}")
        if network and not self.url_problem:
            try:
                self.transport.request("ping", "GET", self.urls.ping(), Budget(self.clock, self.settings.time_budget))
            except CallError as exc:
                problems.append(str(exc))
        return problems

    def close(self) -> None:
        self.session.close()
