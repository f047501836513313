"""Constants and helpers shared by the Bitbar plugin's tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from provisioner import PluginContext, Pool, VirtualClock
from provisioner.testing import make_context

from bb_shapes import NOW

APIKEY = "bb-apikey-0123456789abcdefghij"
TOKEN = "tc-token-A55-0123456789abcdefghij"
SECRETS = (APIKEY, TOKEN)
ENVIRON = {"TESTDROID_APIKEY": APIKEY, "gecko_t_bitbar_gw_perf_a55": TOKEN}
LAUNCH = {"client_id": "project/autophone/gecko-t-bitbar-perf-a55", "access_token_env": "gecko_t_bitbar_gw_perf_a55",
          "docker_image_version": "20250304T123621", "worker_type": "gecko-t-bitbar-gw-perf-a55"}


def mask_token(request: Any) -> Any:
    """Before anything is written: the Taskcluster token in a launch body becomes ``***`` (for re-recording)."""
    try:
        body = json.loads(request.body or b"")
    except (ValueError, TypeError):
        return request
    if isinstance(body, dict) and isinstance(body.get("testRunParameters"), list):
        for item in body["testRunParameters"]:
            if isinstance(item, dict) and item.get("key") == "TASKCLUSTER_ACCESS_TOKEN":
                item["value"] = "***"
        request.body = json.dumps(body).encode()
    return request


def launch_body(r1: Any, r2: Any) -> None:
    """vcrpy matcher: two ``POST runs`` match only with the same JSON body, the token masked in both."""
    if r1.method == "POST" and r1.path.endswith("/runs"):
        assert mask_token(_copy(r1)).body == mask_token(_copy(r2)).body


def _copy(request: Any) -> Any:
    import copy

    return copy.deepcopy(request)


def bb_context(tmp_path: Path, **fields: Any) -> PluginContext:
    return make_context(tmp_path, environ=fields.pop("environ", ENVIRON), clock=VirtualClock(NOW), **fields)


def pool(name: str = "bb-a55-perf", udids: tuple[str, ...] = ("a55-33", "a55-34", "a55-35", "a55-52"),
         targeting: str = "pinned", **launch: Any) -> Pool:
    return Pool(name, "proj-autophone/gecko-t-bitbar-gw-perf-a55", "taskcluster", "bitbar", "bitbar", udids=udids,
                targeting=targeting, launch={**LAUNCH, **launch}, idle_timeout=5400)


def group_pool() -> Pool:
    return pool("bb-a55-group", ("a55-33", "a55-34", "a55-35", "a55-52", "a55-57", "a55-58"), "group",
                device_group="a55-perf")


class Refused(requests.adapters.BaseAdapter):
    """Every request: the connection is refused (nothing sent)."""

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise requests.ConnectionError("connection refused")

    def close(self) -> None:
        pass


class FakeBitbar:
    """Bitbar on 127.0.0.1 for end-to-end runs of the daemon: the lists of ``bb_shapes`` (paged by ``limit`` and
    ``offset``), a one-phone group for pixel6-137, and ``POST runs`` answering a new run (bodies kept in
    ``posted``) that the run list then shows, WAITING, created at ``created_ms()`` (the daemon's clock is the
    wall clock); ``place(run_id, udid)`` starts it on a phone (the run RUNNING, one RUNNING device session)."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import bb_shapes as s

        groups = s.GROUPS + [{**s.GROUPS[0], "id": 605, "displayName": "provisioner-pixel6-137"}]
        members = {**s.MEMBERS, 605: ["pixel6-137"]}
        self.lists: dict[str, list[Any]] = {
            "admin/devices": s.DEVICES, "admin/runs": s.RUNS, "me/projects": s.PROJECTS, "me/device-groups": groups,
            "admin/frameworks": s.FRAMEWORKS, "files": s.files(),
            **{f"device-groups/{g}/devices": [{"displayName": m} for m in ms] for g, ms in members.items()},
            **{f"me/projects/{next(r['projectId'] for r in s.RUNS if r['id'] == run)}/runs/{run}/device-sessions": rows
               for run, rows in s.SESSIONS.items()},
        }
        self.posted: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # as a real server (the host's DeadlineSocket fails on HTTP/1.0 bodies)

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                import urllib.parse

                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                rows = fake.lists.get(url.path.removeprefix("/api/v2/"))
                if rows is None:
                    return self._answer(404, {"message": "no such endpoint", "statusCode": 404})
                offset, limit = int(query.get("offset", 0)), int(query.get("limit", 20))
                self._answer(200, {"data": rows[offset:offset + limit], "offset": offset, "limit": limit,
                                   "total": len(rows)})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.posted.append(body)
                self._answer(201, fake.new_run(body))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def new_run(self, body: dict[str, Any]) -> dict[str, Any]:
        import bb_shapes as s

        run_id = 9100 + len(self.posted)
        project = next((n for n, i in s.PROJECT_IDS.items() if i == body.get("projectId")), "")
        row = {**s.run(9001, s.PINNED, body.get("testRunName"), "WAITING", 0), "id": run_id,
               "projectId": body.get("projectId"), "projectName": project, "createTime": self.created_ms()}
        self.lists["admin/runs"] = [row, *self.lists["admin/runs"]]  # newest first
        return {**s.RUN_OK, "id": run_id, "projectId": body.get("projectId"), "createTime": row["createTime"]}

    def place(self, run_id: int, udid: str) -> None:
        import bb_shapes as s

        row = next(r for r in self.lists["admin/runs"] if r["id"] == run_id)
        row["state"] = "RUNNING"
        self.lists[f"me/projects/{row['projectId']}/runs/{run_id}/device-sessions"] = [
            s.session(run_id * 10, "RUNNING", udid)]

    @staticmethod
    def created_ms() -> int:
        import time

        return int(time.time() * 1000)

    def __enter__(self) -> FakeBitbar:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
