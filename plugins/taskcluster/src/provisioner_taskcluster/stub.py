"""A local stand-in for a Taskcluster deployment (http.server on 127.0.0.1), for benchmarks and end-to-end tests.

It answers ``taskQueueCounts``, ``taskQueueCountsBatch`` (or 404, like an older deployment), the queue's
``listWorkers`` (``page_size`` workers a page, the next page's offset as ``continuationToken``) and ``ping``,
counts the calls per endpoint and, given credentials, checks each call's Hawk signature::

    with StubDeployment(has_batch=False) as tc:
        source = TaskclusterQueues.from_options({"root_url": tc.root_url}, context)
        source.counts(["proj-autophone/gecko-t-lambda-perf-a55"])
        tc.calls  # Counter({'taskQueueCounts': 1})
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import mohawk

NOT_FOUND = {"code": "ResourceNotFound", "message": "no such endpoint"}


def default_counts(queue: str) -> tuple[int, int]:
    return len(queue) % 7, 1


class StubDeployment:
    """Serves on 127.0.0.1 (a free port) from ``start()``/``with`` until ``stop()``."""

    def __init__(self, counts: Callable[[str], tuple[int, int]] = default_counts,
                 workers: list[dict[str, Any]] | None = None, has_batch: bool = True,
                 credentials: tuple[str, str] | None = None, page_size: int = 1000) -> None:
        self.counts = counts
        self.workers = workers or []
        self.page_size = page_size
        self.has_batch = has_batch
        self.credentials = credentials  # (clientId, accessToken) to verify Hawk with; None: no check
        self.calls: Counter[str] = Counter()
        self.hawk_ok: list[bool] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> StubDeployment:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StubDeployment:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, method: str, path: str, body: Any) -> tuple[str, int, Any]:
        """(endpoint, status, JSON body) for one request."""
        split = urllib.parse.urlsplit(path)
        parts = split.path.strip("/").split("/")
        if parts[:3] == ["api", "queue", "v1"] and parts[3:] == ["ping"]:
            return "ping", 200, {"alive": True, "uptime": 1.0}
        if method == "POST" and parts[3:] == ["task-queues", "counts"]:
            if not self.has_batch:
                return "taskQueueCountsBatch", 404, NOT_FOUND
            return "taskQueueCountsBatch", 200, {"taskQueueCounts": [self._entry(q) for q in body["taskQueueIds"]]}
        if parts[3:4] == ["task-queues"] and parts[5:] == ["counts"]:
            return "taskQueueCounts", 200, self._entry(urllib.parse.unquote(parts[4]))
        if parts[3:4] == ["provisioners"] and parts[5:6] == ["worker-types"] and parts[7:] == ["workers"]:
            return "listWorkers", 200, self._workers_page(urllib.parse.parse_qs(split.query))
        return "unknown", 404, NOT_FOUND

    def _workers_page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        start = int(query.get("continuationToken", ["0"])[0])
        page: dict[str, Any] = {"workers": self.workers[start:start + self.page_size]}
        if start + self.page_size < len(self.workers):
            page["continuationToken"] = str(start + self.page_size)
        return page

    def _entry(self, queue: str) -> dict[str, Any]:
        provisioner_id, worker_type = queue.split("/")
        pending, claimed = self.counts(queue)
        return {"taskQueueId": queue, "provisionerId": provisioner_id, "workerType": worker_type,
                "pendingTasks": pending, "claimedTasks": claimed}

    def record(self, endpoint: str, method: str, url: str, authorization: str | None, content: bytes) -> None:
        with self._lock:
            self.calls[endpoint] += 1
            if self.credentials is not None:
                self.hawk_ok.append(self._verify(method, url, authorization, content))

    def _verify(self, method: str, url: str, authorization: str | None, content: bytes) -> bool:
        assert self.credentials is not None
        client_id, access_token = self.credentials
        try:
            mohawk.Receiver(lambda _id: {"id": client_id, "key": access_token, "algorithm": "sha256"},
                            authorization or "", url, method, content=content,
                            content_type="application/json" if content else "", seen_nonce=None)
        except Exception:  # any mohawk refusal: a bad signature
            return False
        return True


def _handler(deployment: StubDeployment) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real deployment
        disable_nagle_algorithm = True  # headers and body are two writes: avoid the 40 ms delayed-ACK stall

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._serve(b"")

        def do_POST(self) -> None:  # noqa: N802
            self._serve(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

        def _serve(self, content: bytes) -> None:
            body = json.loads(content) if content else None
            endpoint, status, answer = deployment.answer(self.command, self.path, body)
            url = f"http://{self.headers['Host']}{self.path}"
            deployment.record(endpoint, self.command, url, self.headers.get("Authorization"), content)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    return Handler
