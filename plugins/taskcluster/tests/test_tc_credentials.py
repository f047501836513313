"""Credentials: Hawk-signed when given, anonymous otherwise, and never in a cassette, a log line or a repr."""

from __future__ import annotations

import json
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import mohawk
import pytest
import vcr as vcrpy

from provisioner import QueueCounts
from tc_helpers import Q1

FAKE_ID = "fake-client-id"
FAKE_TOKEN = "fake-access-token-0123456789abcdefghijklmnopqrstuv"
COUNTS_BODY = {"taskQueueId": Q1, "provisionerId": "proj-autophone", "workerType": "gecko-t-lambda-perf-a55",
               "pendingTasks": 4, "claimedTasks": 2}


@pytest.fixture
def credentials_env(monkeypatch, recording) -> dict[str, str]:
    """Fake credentials in the environment when replaying; the real exported ones when recording."""
    if not recording:
        monkeypatch.setenv("TASKCLUSTER_CLIENT_ID", FAKE_ID)
        monkeypatch.setenv("TASKCLUSTER_ACCESS_TOKEN", FAKE_TOKEN)
    elif not (os.environ.get("TASKCLUSTER_CLIENT_ID") and os.environ.get("TASKCLUSTER_ACCESS_TOKEN")):
        pytest.skip("recording needs TASKCLUSTER_CLIENT_ID and TASKCLUSTER_ACCESS_TOKEN exported")
    return dict(os.environ)


@pytest.mark.tc_recordable
@pytest.mark.vcr
def test_tc_credentials_never_reach_cassette_or_log(vcr, make_source, credentials_env, tc_log, caplog, recording):
    caplog.set_level(logging.DEBUG)  # the official client and urllib3 log through stdlib logging
    token = credentials_env["TASKCLUSTER_ACCESS_TOKEN"]
    client_id = credentials_env["TASKCLUSTER_CLIENT_ID"]
    source = make_source(environ=credentials_env)
    sent: list[str] = []
    source.session.hooks["response"].append(lambda r, **_: sent.append(r.request.headers.get("Authorization", "")))

    counts = source.counts([Q1])
    quarantined = source.quarantined([Q1])

    assert counts[Q1] is not None and quarantined[Q1] is not None
    assert len(sent) == 2 and all(h.startswith("Hawk ") and f' id="{client_id}"' in h for h in sent)
    assert all(f' {part}="' in h for h in sent for part in ("ts", "nonce", "mac"))
    assert sent[0] != sent[1]  # ts, nonce and mac change on every call
    assert all(token not in h for h in sent)

    for request in vcr.requests:  # as replayed, or as filtered by filter_headers while recording
        assert "authorization" not in {k.lower() for k in request.headers}
    cassette = Path(vcr._path)
    if cassette.exists():
        text = cassette.read_text()
        assert token not in text and client_id not in text
        assert "authorization" not in text.lower() and "hawk" not in text.lower()
    logs = "\n".join(tc_log) + caplog.text
    assert token not in logs
    assert token not in repr(source.settings) and token not in repr(source.settings.credentials)
    if not recording:
        assert counts == {Q1: QueueCounts(37, 12)}


class _TaskclusterStub(BaseHTTPRequestHandler):
    """Answers taskQueueCounts and verifies the Hawk signature with the fake credentials, as a deployment would."""

    verified: list[bool] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = f"http://{self.headers['Host']}{self.path}"
        try:
            mohawk.Receiver(lambda _id: {"id": FAKE_ID, "key": FAKE_TOKEN, "algorithm": "sha256"},
                            self.headers["Authorization"], url, "GET", content="", content_type="",
                            seen_nonce=None)
            self.verified.append(True)
        except Exception:
            self.verified.append(False)
        payload = json.dumps(COUNTS_BODY).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TaskclusterStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _TaskclusterStub.verified = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_tc_recording_strips_authorization(stub_server, vcr_config, make_source, tmp_path):
    """Record a real (local) exchange with credentials through this suite's vcr_config: no token is written."""
    environ = {"TASKCLUSTER_CLIENT_ID": FAKE_ID, "TASKCLUSTER_ACCESS_TOKEN": FAKE_TOKEN}
    source = make_source(environ=environ, root_url=stub_server)
    path = tmp_path / "recorded.yaml"
    with vcrpy.VCR(record_mode="all", **vcr_config).use_cassette(str(path)):
        assert source.counts([Q1]) == {Q1: QueueCounts(4, 2)}
    assert _TaskclusterStub.verified == [True]  # the deployment saw a valid Hawk signature
    text = path.read_text()
    assert "task-queues/proj-autophone%2Fgecko-t-lambda-perf-a55/counts" in text
    assert FAKE_TOKEN not in text and "authorization" not in text.lower() and "hawk" not in text.lower()


def test_tc_half_credentials_go_anonymous(make_source, stub_session, tc_log):
    from tc_helpers import make_response

    session, adapter = stub_session(lambda request: make_response(request, 200, COUNTS_BODY))
    source = make_source(environ={"TASKCLUSTER_ACCESS_TOKEN": FAKE_TOKEN}, session=session)
    source.counts([Q1])
    assert "Authorization" not in adapter.calls[0][0].headers
    assert tc_log == ["WARNING taskcluster: TASKCLUSTER_ACCESS_TOKEN is set but TASKCLUSTER_CLIENT_ID is not: "
                      "calls go anonymous"]
    assert source.check([], network=False) == [tc_log[0].split(" ", 1)[1]]


def test_tc_credentials_from_renamed_variables(make_source, stub_session):
    from tc_helpers import make_response

    session, adapter = stub_session(lambda request: make_response(request, 200, COUNTS_BODY))
    environ = {"TC_ID": FAKE_ID, "TC_TOKEN": FAKE_TOKEN, "TASKCLUSTER_CLIENT_ID": "other"}
    source = make_source(environ=environ, session=session, client_id_env="TC_ID", access_token_env="TC_TOKEN")
    source.counts([Q1])
    assert f'id="{FAKE_ID}"' in adapter.calls[0][0].headers["Authorization"]
    assert source.settings.who == f"client {FAKE_ID}"
