"""Pending and claimed counts: one call per queue, batch, the 404 fallback, retries, timeouts, bad answers."""

from __future__ import annotations

import json

import pytest
import requests

from provisioner import QueueCounts
from provisioner_taskcluster import source as source_module
from tc_helpers import Q1, Q2, ROOT, make_response, recorded_bodies, unknown

COUNTS_URL = f"{ROOT}/api/queue/v1/task-queues/proj-autophone%2Fgecko-t-lambda-perf-a55/counts"
BATCH_URL = f"{ROOT}/api/queue/v1/task-queues/counts"


def expected(body: dict) -> QueueCounts:
    return QueueCounts(pending=body["pendingTasks"], claimed=body["claimedTasks"])


@pytest.mark.tc_recordable
@pytest.mark.vcr
def test_tc_counts_single(vcr, make_source, live_environ, recording):
    source = make_source(environ=live_environ)
    counts = source.counts([Q1])
    assert counts == {Q1: expected(recorded_bodies(vcr)[0])}
    if not recording:
        assert counts == {Q1: QueueCounts(pending=37, claimed=12)}
    assert vcr.all_played


@pytest.mark.tc_recordable
@pytest.mark.vcr
def test_tc_counts_batch(vcr, make_source, live_environ, recording):
    source = make_source(environ=live_environ)
    counts = source.counts([Q1, Q2, Q1])  # a queue shared by two pools is asked once
    entries = recorded_bodies(vcr)[0]["taskQueueCounts"]
    assert counts == {entry["taskQueueId"]: expected(entry) for entry in entries}
    if not recording:
        assert counts == {Q1: QueueCounts(37, 12), Q2: QueueCounts(0, 3)}
    assert vcr.play_count == 1


@pytest.mark.vcr
def test_tc_counts_batch_404_falls_back_and_remembers(vcr, make_source, tc_log):
    source = make_source()
    first = source.counts([Q1, Q2])
    assert first == {Q1: QueueCounts(37, 12), Q2: QueueCounts(0, 3)}
    second = source.counts([Q1, Q2])  # no batch call this time: the cassette holds just one POST
    assert second == {Q1: QueueCounts(30, 14), Q2: QueueCounts(1, 2)}
    assert vcr.all_played and vcr.play_count == 5
    assert [r.method for r in vcr.requests].count("POST") == 1
    assert any("no taskQueueCountsBatch (404)" in line for line in tc_log)
    assert not any(line.startswith("WARNING") for line in tc_log)


def test_tc_counts_batch_asked_again_after_a_while(make_source, stub_session, clock):
    def handler(request):
        if request.method == "POST":
            return make_response(request, 404, {"code": "ResourceNotFound", "message": "no such endpoint"})
        queue = Q1 if "perf" in request.url else Q2
        return make_response(request, 200, {"taskQueueId": queue, "provisionerId": "proj-autophone",
                                            "workerType": queue.split("/")[1], "pendingTasks": 1, "claimedTasks": 0})

    session, adapter = stub_session(handler)
    source = make_source(session=session)
    source.counts([Q1, Q2])
    source.counts([Q1, Q2])
    assert [r.method for r, _ in adapter.calls] == ["POST", "GET", "GET", "GET", "GET"]
    clock.advance(source_module.BATCH_RECHECK)
    assert source.counts([Q1, Q2]) == {Q1: QueueCounts(1, 0), Q2: QueueCounts(1, 0)}
    assert [r.method for r, _ in adapter.calls][5:] == ["POST", "GET", "GET"]


def test_tc_counts_batch_chunks_of_1000(make_source, stub_session, monkeypatch):
    monkeypatch.setattr(source_module, "BATCH_LIMIT", 2)
    queues = [f"proj-autophone/wt-{i}" for i in range(5)]

    def handler(request):
        ids = json.loads(request.body)["taskQueueIds"]
        assert len(ids) <= 2
        return make_response(request, 200, {"taskQueueCounts": [
            {"taskQueueId": q, "provisionerId": "proj-autophone", "workerType": q.split("/")[1],
             "pendingTasks": int(q[-1]), "claimedTasks": 0} for q in ids]})

    session, adapter = stub_session(handler)
    counts = make_source(session=session).counts(queues)
    assert counts == {q: QueueCounts(int(q[-1]), 0) for q in queues}
    assert len(adapter.calls) == 3


def test_tc_counts_batch_403_asks_each_queue(make_source, stub_session, tc_log):
    scopes = {"AllOf": ["queue:pending-count:proj-autophone/gecko-t-lambda-alpha-a55"]}
    forbidden = {"code": "InsufficientScopes", "message": f"needs:\n\n```\n{json.dumps(scopes)}\n```\n"}

    def handler(request):
        if request.method == "POST" or "alpha" in request.url:
            return make_response(request, 403, forbidden)
        return make_response(request, 200, {"taskQueueId": Q1, "pendingTasks": 5, "claimedTasks": 1})

    session, adapter = stub_session(handler)
    source = make_source(session=session)
    assert source.counts([Q1, Q2]) == {Q1: QueueCounts(5, 1), Q2: None}
    warnings = [line for line in tc_log if line.startswith("WARNING")]
    assert len(warnings) == 2
    assert all("missing scopes queue:pending-count:proj-autophone/gecko-t-lambda-alpha-a55 (anonymous)" in w
               for w in warnings)
    # a 403 is no sign the endpoint is missing: the next cycle tries the batch again
    source.counts([Q1, Q2])
    assert [r.method for r, _ in adapter.calls].count("POST") == 2


@pytest.mark.parametrize("body, reason", [
    ({"taskQueueCounts": "soon"}, "taskQueueCounts missing or not a list"),
    ({"taskQueueCounts": [{"pendingTasks": 1, "claimedTasks": 1}]}, "an entry of taskQueueCounts has no taskQueueId"),
    ({"taskQueueCounts": [{"taskQueueId": Q1, "pendingTasks": -1, "claimedTasks": 1}]}, "pendingTasks missing"),
])
def test_tc_counts_batch_bad_body_is_unknown(make_source, stub_session, tc_log, body, reason):
    session, _ = stub_session(lambda request: make_response(request, 200, body))
    unknown(lambda: make_source(session=session).counts([Q1, Q2]))
    assert [line for line in tc_log if line.startswith("WARNING")] == [
        f"WARNING taskcluster taskQueueCountsBatch POST {BATCH_URL}: unexpected body: " + reason
        + (" or not a non-negative integer" if reason.endswith("missing") else "")
    ]


def test_tc_counts_batch_answer_lacking_a_queue(make_source, stub_session, tc_log):
    body = {"taskQueueCounts": [{"taskQueueId": Q1, "pendingTasks": 2, "claimedTasks": 0}]}
    session, _ = stub_session(lambda request: make_response(request, 200, body))
    assert make_source(session=session).counts([Q1, Q2]) == {Q1: QueueCounts(2, 0), Q2: None}
    assert [line for line in tc_log if line.startswith("WARNING")] == [
        f"WARNING taskcluster taskQueueCountsBatch POST {BATCH_URL}: answer lacks 1 queue(s), unknown this cycle: {Q2}"]


def test_tc_counts_batch_answer_lacking_every_queue(make_source, stub_session, tc_log, monkeypatch):
    monkeypatch.setattr(source_module, "MAX_NAMED", 2)
    q3 = "proj-autophone/gecko-t-lambda-a51"
    session, _ = stub_session(lambda request: make_response(request, 200, {"taskQueueCounts": []}))
    unknown(lambda: make_source(session=session).counts([Q1, Q2, q3]))
    assert [line for line in tc_log if line.startswith("WARNING")] == [
        f"WARNING taskcluster taskQueueCountsBatch POST {BATCH_URL}: answer lacks 3 queue(s), unknown this cycle: "
        f"{Q1}, {Q2} and 1 more"]


def test_tc_counts_batch_server_error_is_unknown_without_fallback(make_source, stub_session):
    session, adapter = stub_session(lambda request: make_response(request, 500, {"code": "InternalServerError"}))
    unknown(lambda: make_source(session=session).counts([Q1, Q2]))
    assert {r.method for r, _ in adapter.calls} == {"POST"}  # a sick server is not asked 50 more times


def test_tc_counts_batch_disabled(make_source, stub_session):
    session, adapter = stub_session(
        lambda request: make_response(request, 200, {"taskQueueId": Q1, "pendingTasks": 0, "claimedTasks": 0}))
    make_source(session=session, batch=False).counts([Q1, Q2])
    assert [r.method for r, _ in adapter.calls] == ["GET", "GET"]


@pytest.mark.vcr
def test_tc_counts_500_then_success(vcr, make_source, clock, tc_log):
    start = clock.now()
    assert make_source().counts([Q1]) == {Q1: QueueCounts(37, 12)}
    assert vcr.all_played and vcr.play_count == 2
    assert 0.4 <= clock.now() - start <= 0.6  # one backoff, on the virtual clock
    assert not any(line.startswith("WARNING") for line in tc_log)


@pytest.mark.vcr
def test_tc_counts_429_then_success(vcr, make_source, clock):
    start = clock.now()
    assert make_source().counts([Q1]) == {Q1: QueueCounts(37, 12)}
    assert vcr.all_played
    assert clock.now() - start == pytest.approx(3.0)  # the server's Retry-After beats our shorter backoff


@pytest.mark.vcr
def test_tc_counts_5xx_gives_up(vcr, make_source, clock, tc_log):
    start = clock.now()
    unknown(lambda: make_source().counts([Q1]))
    assert vcr.play_count == 4  # max_attempts
    assert clock.now() - start < 30
    assert tc_log == [f"WARNING taskcluster taskQueueCounts GET {COUNTS_URL}: HTTP 503; gave up after 4 attempts"]


@pytest.mark.parametrize("error", [requests.ConnectTimeout, requests.ReadTimeout, requests.ConnectionError])
def test_tc_counts_timeout_is_unknown_after_bounded_retries(make_source, stub_session, clock, tc_log, error):
    def handler(request):
        clock.advance(adapter.calls[-1][1]["timeout"][1])  # the attempt used up its whole timeout
        raise error("stalled")

    session, adapter = stub_session(handler)
    source = make_source(session=session, connect_timeout=2, read_timeout=3, time_budget=60)
    unknown(lambda: source.counts([Q1]))
    assert len(adapter.calls) == 4
    assert all(kwargs["timeout"] == (2.0, 3.0) for _, kwargs in adapter.calls)
    assert len(tc_log) == 1 and tc_log[0].endswith(f"({error.__name__}); gave up after 4 attempts")


def test_tc_counts_time_budget_bounds_retries_and_later_queues(make_source, stub_session, clock, tc_log):
    def handler(request):
        clock.advance(adapter.calls[-1][1]["timeout"][1])
        raise requests.ReadTimeout("stalled")

    session, adapter = stub_session(handler)
    source = make_source(session=session, read_timeout=4, time_budget=10, batch=False, backoff=1)
    q3 = "proj-autophone/gecko-t-lambda-a51"
    start = clock.now()
    unknown(lambda: source.counts([Q1, Q2, q3]))
    assert clock.now() - start <= 10 + 0.5  # never past the budget (a timeout is clamped to what is left)
    assert all(kwargs["timeout"][1] <= 4 for _, kwargs in adapter.calls)
    assert [line.rsplit(": ", 1)[1] for line in tc_log] == [
        "timed out (ReadTimeout); no time left in this cycle's budget to retry after 2 attempts",
        "timed out (ReadTimeout); no time left in this cycle's budget to retry after 1 attempt",
        "no time left in this cycle's budget",
    ]
    assert not any("a51" in request.url for request, _ in adapter.calls)  # the third queue was never asked


def test_tc_counts_other_request_error_is_not_retried(make_source, stub_session, tc_log):
    def handler(request):
        raise requests.exceptions.InvalidHeader("bad")

    session, adapter = stub_session(handler)
    unknown(lambda: make_source(session=session).counts([Q1]))
    assert len(adapter.calls) == 1
    assert tc_log[0].endswith("request failed (InvalidHeader)")


@pytest.mark.vcr
def test_tc_counts_malformed_json(vcr, make_source, tc_log):
    unknown(lambda: make_source().counts([Q1]))
    assert tc_log == [f"WARNING taskcluster taskQueueCounts GET {COUNTS_URL}: malformed JSON in HTTP 200 answer"]


@pytest.mark.vcr
def test_tc_counts_missing_fields(vcr, make_source, tc_log):
    # the shape of the deprecated pendingTasks endpoint: no claimedTasks
    unknown(lambda: make_source().counts([Q1]))
    assert tc_log == [f"WARNING taskcluster taskQueueCounts GET {COUNTS_URL}: unexpected body: "
                      "claimedTasks missing or not a non-negative integer"]


def test_tc_counts_json_that_is_not_an_object(make_source, stub_session, tc_log):
    session, _ = stub_session(lambda request: make_response(request, 200, [1, 2]))
    unknown(lambda: make_source(session=session).counts([Q1]))
    assert tc_log[0].endswith("expected a JSON object, got list")


@pytest.mark.vcr
def test_tc_counts_403_names_missing_scopes(vcr, make_source, tc_log):
    unknown(lambda: make_source().counts([Q1]))
    assert tc_log == [
        f"WARNING taskcluster taskQueueCounts GET {COUNTS_URL}: HTTP 403 InsufficientScopes: missing scopes "
        "queue:pending-count:proj-autophone/gecko-t-lambda-perf-a55, "
        "queue:claimed-count:proj-autophone/gecko-t-lambda-perf-a55 (anonymous)"
    ]


def test_tc_counts_404_queue_is_unknown(make_source, stub_session, tc_log):
    session, adapter = stub_session(lambda request: make_response(request, 404, "not json"))
    unknown(lambda: make_source(session=session).counts([Q1]))
    assert len(adapter.calls) == 1
    assert tc_log[0].endswith(": HTTP 404")


def test_tc_counts_bad_queue_ids_are_unknown_and_never_sent(make_source, stub_session, tc_log):
    session, adapter = stub_session(
        lambda request: make_response(request, 200, {"taskQueueId": Q1, "pendingTasks": 1, "claimedTasks": 1}))
    bad = ["no-slash", "a/b/c", "p/" + "x" * 39, "p/wt with space", "/wt"]
    counts = make_source(session=session).counts([Q1, *bad])
    assert counts == {Q1: QueueCounts(1, 1), **{q: None for q in bad}}
    assert len(adapter.calls) == 1 and adapter.calls[0][0].method == "GET"
    assert sum("is not <provisionerId>/<workerType>" in line for line in tc_log) == len(bad)


def test_tc_counts_no_queues(make_source, stub_session):
    session, adapter = stub_session(lambda request: make_response(request, 500, {}))
    assert make_source(session=session).counts([]) == {}
    assert adapter.calls == []
