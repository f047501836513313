"""The queue's listWorkers: every worker's latest task, first claim and quarantine, read fresh each cycle."""

from __future__ import annotations

import pytest

from provisioner import Worker
from provisioner_taskcluster.wire import parse_time
from tc_helpers import Q1, Q2, ROOT, make_response, recorded_bodies, unknown

WORKERS_URL = f"{ROOT}/api/queue/v1/provisioners/proj-autophone/worker-types/gecko-t-lambda-perf-a55/workers"
FUTURE = "3025-06-09T22:05:00.000Z"


def entry(worker_id: str, **fields: object) -> dict:
    return {"workerGroup": "lambda", "workerId": worker_id, "firstClaim": "2025-03-02T10:15:00.000Z", **fields}


def page(*entries: dict, token: str | None = None) -> dict:
    body: dict = {"workers": list(entries)}
    if token:
        body["continuationToken"] = token
    return body


def expected(body_entry: dict) -> Worker:
    """What the plugin should make of one recorded entry."""
    latest = body_entry.get("latestTask")
    until = body_entry.get("quarantineUntil")
    return Worker(body_entry["workerId"], latest_task=f"{latest['taskId']}/{latest['runId']}" if latest else "",
                  first_claim=parse_time(body_entry["firstClaim"], "firstClaim"),
                  quarantined_until=parse_time(until, "quarantineUntil") if until else None,
                  worker_group=body_entry["workerGroup"])


@pytest.mark.tc_recordable
@pytest.mark.vcr
def test_tc_workers_two_pages(vcr, make_source, live_environ, recording):
    result = make_source(environ=live_environ).workers([Q1])
    pages = recorded_bodies(vcr)
    assert result == {Q1: [expected(e) for p in pages for e in p["workers"]]}
    assert "continuationToken" not in pages[-1]
    if not recording:
        assert result == {Q1: [
            # quarantine ended in 2015: the host sees quarantined_until in the past, so not quarantined
            Worker("R5CW1234ABC", "HDbBAeGjSVKN0Dwai4QaOA/0", 1740910272.345, 1433923201.0, "lambda"),
            Worker("R5CW5678DEF", "fXdOf4CXQTaXaOZ4QxNmEw/2", 1740910500.0, 33306415500.0, "lambda"),  # in 3025
            Worker("R5CW9999XYZ", "", 1743465600.0, None, "lambda"),  # no latestTask, no quarantineUntil
        ]}
        # the token is passed back as a query parameter, encoded as the official client does ('=' -> %3D)
        token = "eyJ3b3JrZXJJZCI6IlI1Q1c1Njc4REVGIn0%3D"
        assert [r.uri for r in vcr.requests] == [WORKERS_URL, f"{WORKERS_URL}?continuationToken={token}"]
    assert vcr.all_played


@pytest.mark.vcr
def test_tc_workers_read_fresh_each_cycle(vcr, make_source, clock):
    source = make_source()
    first = source.workers([Q1])
    clock.advance(30)  # the next cycle: read again, never reused, so a claim shows within one cycle
    second = source.workers([Q1])
    assert vcr.all_played and vcr.play_count == 2
    assert [(w.worker_id, w.latest_task) for w in first[Q1]] == [("R5CXC1HZK0W", "HDbBAeGjSVKN0Dwai4QaOA/0")]
    assert [(w.worker_id, w.latest_task) for w in second[Q1]] == [("R5CXC1HZK0W", "Zk5vJ0mmQ8qXzk0m1yx1Aw/0"),
                                                                  ("R5CXNEWPHONE", "c1Uk8iZtSNaa3sXkSxHW5g/0")]
    assert second[Q1][1].first_claim == parse_time("2025-06-10T08:30:20.000Z", "firstClaim")


@pytest.mark.vcr
def test_tc_workers_403_is_unknown(vcr, make_source, tc_log):
    unknown(lambda: make_source().workers([Q1]))
    assert tc_log == [f"WARNING taskcluster listWorkers GET {WORKERS_URL}: HTTP 403 InsufficientScopes: missing scopes "
                      "queue:list-workers:proj-autophone/gecko-t-lambda-perf-a55 (anonymous)"]
    assert vcr.play_count == 1  # a 403 is not retried


@pytest.mark.vcr
def test_tc_workers_5xx_then_success(vcr, make_source, clock, tc_log):
    start = clock.now()
    assert make_source().workers([Q1]) == {Q1: [Worker("R5CW9999XYZ", "", 1743465600.0, None, "lambda")]}
    assert vcr.all_played and vcr.play_count == 2
    assert 0.4 <= clock.now() - start <= 0.6  # one backoff, on the virtual clock
    assert not any(line.startswith("WARNING") for line in tc_log)


def test_tc_workers_page_limit_makes_it_unknown(make_source, stub_session, tc_log):
    tokens = iter(range(100))
    session, adapter = stub_session(
        lambda request: make_response(request, 200, page(entry("R5"), token=f"t{next(tokens)}")))
    unknown(lambda: make_source(session=session, max_pages=3).workers([Q1]))
    assert len(adapter.calls) == 3
    assert adapter.calls[2][0].url.endswith("/workers?continuationToken=t1")
    assert tc_log[-1].endswith("still more pages after 3; workers unknown")


@pytest.mark.parametrize("body, reason", [
    ({"nobody": []}, "workers missing or not a list"),
    ({"workers": {"R5": {}}}, "workers missing or not a list"),
    ({"workers": [], "continuationToken": 5}, "continuationToken is not a non-empty string"),
    (page(entry("R5", quarantineUntil="next tuesday")), "worker 'R5': quarantineUntil 'next tuesday' is not a date"),
    (page(entry("R5", firstClaim=1749544200)), "worker 'R5': firstClaim is not a string"),
    (page(entry("R5", latestTask={"runId": 0})), "worker 'R5': latestTask has no taskId"),
    (page(entry("R5", latestTask={"taskId": "abc", "runId": "0"})),
     "worker 'R5': latestTask.runId is not a non-negative integer"),
    (page(entry("R5", workerGroup=7)), "worker 'R5': workerGroup is not a string"),
])
def test_tc_workers_garbled_body_is_unknown_never_empty(make_source, stub_session, tc_log, body, reason):
    # fail-safe: a phone whose quarantine or claim we cannot read makes the whole queue unknown (no launch),
    # rather than a guess (a garbled latestTask read as "" would look like a claim)
    session, _ = stub_session(lambda request: make_response(request, 200, body))
    unknown(lambda: make_source(session=session).workers([Q1]))
    assert tc_log == [f"WARNING taskcluster listWorkers GET {WORKERS_URL}: unexpected body: {reason}"]


def test_tc_workers_entries_without_worker_id_are_skipped_with_one_warning(make_source, stub_session, clock, tc_log):
    body = page(entry("R5OK"), {"workerGroup": "lambda", "firstClaim": "2025-03-02T10:15:00.000Z"}, "junk",
                entry(""))
    session, _ = stub_session(lambda request: make_response(request, 200, body))
    source = make_source(session=session)
    for _ in range(3):  # three cycles, one warning
        assert [w.worker_id for w in source.workers([Q1])[Q1]] == ["R5OK"]
        clock.advance(30)
    assert tc_log == [f"WARNING taskcluster listWorkers GET {WORKERS_URL}: skipped 3 worker entries without a workerId"]


def test_tc_workers_minimal_entries_and_duplicates_across_pages(make_source, stub_session):
    def handler(request):
        if "continuationToken" not in request.url:
            return make_response(request, 200, page({"workerId": "R5A"}, entry("R5B"), token="next"))
        return make_response(request, 200, page(entry("R5B", latestTask={"taskId": "T", "runId": 1})))

    session, _ = stub_session(handler)
    assert make_source(session=session).workers([Q1]) == {Q1: [
        Worker("R5A"),  # only a workerId: never claimed, not quarantined
        Worker("R5B", "T/1", parse_time("2025-03-02T10:15:00.000Z", "firstClaim"), None, "lambda"),  # the later page
    ]}


def test_tc_workers_failure_of_one_queue_leaves_the_others(make_source, stub_session):
    def handler(request):
        if "alpha" in request.url:
            return make_response(request, 500, {"code": "InternalServerError"})
        return make_response(request, 200, page(entry("R5CW1", quarantineUntil=FUTURE)))

    session, _ = stub_session(handler)
    result = make_source(session=session, max_attempts=2).workers([Q1, Q2, "not a queue"])
    assert result == {Q1: [Worker("R5CW1", "", parse_time("2025-03-02T10:15:00.000Z", "x"),
                                  parse_time(FUTURE, "x"), "lambda")],
                      Q2: None, "not a queue": None}


def test_tc_workers_empty_queue_is_an_empty_list(make_source, stub_session):
    session, _ = stub_session(lambda request: make_response(request, 200, page()))
    assert make_source(session=session).workers([Q1]) == {Q1: []}


def test_tc_workers_dates_without_zone_are_utc(make_source, stub_session, clock):
    session, _ = stub_session(lambda request: make_response(
        request, 200, page(entry("A", quarantineUntil="2025-06-10T08:30:05"),
                           entry("B", quarantineUntil="2025-06-10T10:29:00+02:00"))))
    until = {w.worker_id: w.quarantined_until for w in make_source(session=session).workers([Q1])[Q1]}
    assert until == {"A": clock.now() + 5, "B": clock.now() - 60}


def test_tc_workers_budget_spent_leaves_later_queues_unknown_without_a_call(make_source, stub_session, clock):
    def handler(request):
        clock.advance(adapter.calls[-1][1]["timeout"][1])
        return make_response(request, 503, {})

    session, adapter = stub_session(handler)
    q3 = "proj-autophone/gecko-t-lambda-a51"
    source = make_source(session=session, read_timeout=4, time_budget=10, backoff=1)
    unknown(lambda: source.workers([Q1, Q2, q3]))
    assert not any("a51" in request.url for request, _ in adapter.calls)
