"""Credentials: Hawk-signed when given, anonymous otherwise, and never in a cassette, a log line or a repr."""

from __future__ import annotations

import base64
import json
import logging
import os
from pathlib import Path

import mohawk
import mohawk.exc
import mohawk.util
import pytest
import vcr as vcrpy

from provisioner import QueueCounts
from provisioner_taskcluster.stub import StubDeployment
from tc_helpers import Q1, make_response

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
    workers = source.workers([Q1])

    assert counts[Q1] is not None and workers[Q1] is not None
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


def test_tc_recording_strips_authorization(vcr_config, make_source, tmp_path):
    """Record a real (local) exchange with credentials through this suite's vcr_config: no token is written."""
    environ = {"TASKCLUSTER_CLIENT_ID": FAKE_ID, "TASKCLUSTER_ACCESS_TOKEN": FAKE_TOKEN}
    path = tmp_path / "recorded.yaml"
    with StubDeployment(counts=lambda queue: (4, 2), credentials=(FAKE_ID, FAKE_TOKEN)) as deployment:
        source = make_source(environ=environ, root_url=deployment.root_url)
        with vcrpy.VCR(record_mode="all", **vcr_config).use_cassette(str(path)):
            assert source.counts([Q1]) == {Q1: QueueCounts(4, 2)}
    assert deployment.hawk_ok == [True]  # the deployment saw a valid Hawk signature
    text = path.read_text()
    assert "task-queues/proj-autophone%2Fgecko-t-lambda-perf-a55/counts" in text
    assert FAKE_TOKEN not in text and "authorization" not in text.lower() and "hawk" not in text.lower()


def test_tc_half_credentials_go_anonymous(make_source, stub_session, tc_log):
    session, adapter = stub_session(lambda request: make_response(request, 200, COUNTS_BODY))
    source = make_source(environ={"TASKCLUSTER_ACCESS_TOKEN": FAKE_TOKEN}, session=session)
    source.counts([Q1])
    assert "Authorization" not in adapter.calls[0][0].headers
    assert tc_log == ["WARNING taskcluster: TASKCLUSTER_ACCESS_TOKEN is set but TASKCLUSTER_CLIENT_ID is not: "
                      "calls go anonymous"]
    assert source.check([], network=False) == [tc_log[0].split(" ", 1)[1]]


def test_tc_credentials_from_renamed_variables(make_source, stub_session):
    session, adapter = stub_session(lambda request: make_response(request, 200, COUNTS_BODY))
    environ = {"TC_ID": FAKE_ID, "TC_TOKEN": FAKE_TOKEN, "TASKCLUSTER_CLIENT_ID": "other"}
    source = make_source(environ=environ, session=session, client_id_env="TC_ID", access_token_env="TC_TOKEN")
    source.counts([Q1])
    assert f'id="{FAKE_ID}"' in adapter.calls[0][0].headers["Authorization"]
    assert source.settings.who == f"client {FAKE_ID}"


# --- temporary credentials (issue 9) --------------------------------------------------------------------------

CERTIFICATE = {"version": 1, "scopes": ["queue:list-workers:proj-autophone/*"], "start": 1749544200000,
               "expiry": 1749547800000, "seed": "fake-seed-0123456789abcdefghijklmnopqrstuvwxyz012345",
               "signature": "ZmFrZS1zaWduYXR1cmU=", "issuer": "fake-issuer"}
TEMPORARY = {"TASKCLUSTER_CLIENT_ID": FAKE_ID, "TASKCLUSTER_ACCESS_TOKEN": FAKE_TOKEN,
             "TASKCLUSTER_CERTIFICATE": json.dumps(CERTIFICATE)}


def test_tc_certificate_rides_in_the_hawk_ext(make_source, stub_session):
    session, adapter = stub_session(lambda request: make_response(request, 200, COUNTS_BODY))
    source = make_source(environ=TEMPORARY, session=session)
    assert source.counts([Q1]) == {Q1: QueueCounts(4, 2)}
    request = adapter.calls[0][0]
    header = request.headers["Authorization"]
    assert FAKE_TOKEN not in header and CERTIFICATE["seed"] not in header
    fields = mohawk.util.parse_authorization_header(header)
    assert fields["id"] == FAKE_ID
    ext = fields["ext"]
    assert json.loads(base64.urlsafe_b64decode(ext + "=" * (-len(ext) % 4))) == {"certificate": CERTIFICATE}
    # the mac covers the ext and verifies with the access token (mohawk raises if it does not)
    mohawk.Receiver(lambda _id: {"id": FAKE_ID, "key": FAKE_TOKEN, "algorithm": "sha256"}, header, request.url,
                    "GET", content=b"", content_type="", seen_nonce=None)
    with pytest.raises(mohawk.exc.MacMismatch):
        mohawk.Receiver(lambda _id: {"id": FAKE_ID, "key": "another-token", "algorithm": "sha256"}, header,
                        request.url, "GET", content=b"", content_type="", seen_nonce=None)


def test_tc_certificate_from_a_renamed_variable_reaches_a_real_deployment(make_source):
    environ = {"TASKCLUSTER_CLIENT_ID": FAKE_ID, "TASKCLUSTER_ACCESS_TOKEN": FAKE_TOKEN,
               "TC_CERT": json.dumps(CERTIFICATE)}
    with StubDeployment(credentials=(FAKE_ID, FAKE_TOKEN)) as deployment:
        source = make_source(environ=environ, root_url=deployment.root_url, certificate_env="TC_CERT")
        assert source.counts([Q1, "proj-autophone/gecko-t-lambda-alpha-a55"])  # a signed POST
        assert source.workers([Q1]) == {Q1: []}
    assert deployment.hawk_ok == [True, True]


def test_tc_without_certificate_the_ext_is_empty(make_source, stub_session):
    session, adapter = stub_session(lambda request: make_response(request, 200, COUNTS_BODY))
    make_source(environ={k: v for k, v in TEMPORARY.items() if k != "TASKCLUSTER_CERTIFICATE"}, session=session)\
        .counts([Q1])
    ext = mohawk.util.parse_authorization_header(adapter.calls[0][0].headers["Authorization"])["ext"]
    assert json.loads(base64.urlsafe_b64decode(ext + "=" * (-len(ext) % 4))) == {}


@pytest.mark.parametrize("certificate", ['{"version": 1, "seed": "s3cr3t-seed"', '"s3cr3t-seed"', '["s3cr3t"]',
                                         '{"seed": "s3cr3t-séed"}'])
def test_tc_a_certificate_that_is_not_a_json_object_is_one_line_never_echoed(make_source, stub_session, tc_log,
                                                                             certificate):
    session, adapter = stub_session(lambda request: make_response(request, 200, COUNTS_BODY))
    source = make_source(environ={**TEMPORARY, "TASKCLUSTER_CERTIFICATE": certificate}, session=session)
    problem = ("taskcluster: TASKCLUSTER_CERTIFICATE is not a JSON certificate (an ASCII JSON object): "
               "calls go anonymous")
    assert source.check([], network=False) == [problem]
    assert tc_log == [f"WARNING {problem}"]
    source.counts([Q1])
    assert "Authorization" not in adapter.calls[0][0].headers


def test_tc_a_certificate_without_credentials_is_reported(make_source):
    source = make_source(environ={"TASKCLUSTER_CERTIFICATE": json.dumps(CERTIFICATE)})
    assert source.check([], network=False) == [
        "taskcluster: TASKCLUSTER_CERTIFICATE is set but TASKCLUSTER_CLIENT_ID and TASKCLUSTER_ACCESS_TOKEN are not"]


def test_tc_non_ascii_credentials_are_refused_without_echo(make_source):
    source = make_source(environ={"TASKCLUSTER_CLIENT_ID": FAKE_ID, "TASKCLUSTER_ACCESS_TOKEN": "tökén-s3cr3t"})
    assert source.settings.credentials is None
    (problem,) = source.check([], network=False)
    assert "s3cr3t" not in problem and problem.endswith("is not ASCII: calls go anonymous")


def test_tc_check_says_when_the_certificate_expired(make_source, clock):
    source = make_source(environ=TEMPORARY)
    assert source.check([], network=False) == []  # START is before the expiry
    clock.advance(3601)  # CERTIFICATE expires an hour after START
    assert source.check([], network=False) == [
        "taskcluster: the certificate in $TASKCLUSTER_CERTIFICATE expired at 2025-06-10T09:30:00Z: "
        "calls will fail with HTTP 401"]
