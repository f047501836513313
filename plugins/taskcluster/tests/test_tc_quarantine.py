"""Quarantined workers from worker-manager's listWorkers: pages, quarantineUntil against the clock, bad answers."""

from __future__ import annotations

import pytest

from provisioner_taskcluster.wire import parse_time
from tc_helpers import Q1, Q2, ROOT, make_response, recorded_bodies

WORKERS_URL = (f"{ROOT}/api/worker-manager/v1/provisioners/proj-autophone/worker-types/gecko-t-lambda-perf-a55"
               "/workers?quarantined=true")


def page(*workers: tuple[str, str], token: str | None = None) -> dict:
    body: dict = {"workers": [{"workerGroup": "lambda", "workerId": w, "quarantineUntil": until}
                              for w, until in workers]}
    if token:
        body["continuationToken"] = token
    return body


@pytest.mark.tc_recordable
@pytest.mark.vcr
def test_tc_quarantine_two_pages(vcr, make_source, clock, live_environ, recording):
    result = make_source(environ=live_environ).quarantined([Q1])
    pages = recorded_bodies(vcr)
    assert result == {Q1: frozenset(w["workerId"] for p in pages for w in p["workers"]
                                    if parse_time(w["quarantineUntil"]) > clock.now())}
    assert "continuationToken" not in pages[-1]
    if not recording:
        assert result == {Q1: frozenset({"R5CW5678DEF"})}  # the two others' quarantine ended in 2015
        assert [r.uri for r in vcr.requests] == [WORKERS_URL, WORKERS_URL + "&continuationToken=eyJvZmZzZXQiOjJ9"]
    assert vcr.all_played


@pytest.mark.vcr
def test_tc_quarantine_past_and_future(vcr, make_source, clock):
    source = make_source(quarantine_refresh=0)  # read every cycle
    # one worker's quarantine ended a second ago, one ends in a second, one in 3025
    assert source.quarantined([Q1]) == {Q1: frozenset({"R5CW0001FUT", "R5CW5678DEF"})}
    clock.advance(2)
    assert source.quarantined([Q1]) == {Q1: frozenset({"R5CW5678DEF"})}
    assert vcr.all_played


def test_tc_quarantine_list_is_reused_until_refresh_and_expires_by_time(make_source, stub_session, clock):
    from datetime import datetime, timezone

    soon = datetime.fromtimestamp(clock.now() + 10, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    session, adapter = stub_session(lambda request: make_response(
        request, 200, page(("R5SOON", soon), ("R5LONG", "3025-01-01T00:00:00.000Z"))))
    source = make_source(session=session, quarantine_refresh=120)
    assert source.quarantined([Q1]) == {Q1: frozenset({"R5SOON", "R5LONG"})}
    clock.advance(30)
    assert source.quarantined([Q1]) == {Q1: frozenset({"R5LONG"})}  # from the list read 30 s ago
    assert len(adapter.calls) == 1
    clock.advance(90)
    source.quarantined([Q1])
    assert len(adapter.calls) == 2  # read again after 120 s


def test_tc_quarantine_page_limit_makes_it_unknown(make_source, stub_session, tc_log):
    tokens = iter(range(100))
    session, adapter = stub_session(
        lambda request: make_response(request, 200, page(("R5", "3025-01-01T00:00:00.000Z"), token=f"t{next(tokens)}")))
    assert make_source(session=session, max_pages=3).quarantined([Q1]) == {Q1: None}
    assert len(adapter.calls) == 3
    assert adapter.calls[2][0].url.endswith("&continuationToken=t1")
    assert tc_log[-1].endswith("still more pages after 3; quarantine unknown")


@pytest.mark.parametrize("body, reason", [
    ({"nobody": []}, "workers missing or not a list"),
    ({"workers": [{"workerGroup": "lambda", "quarantineUntil": "3025-01-01T00:00:00.000Z"}]},
     "a worker has no workerId"),
    ({"workers": [{"workerId": "R5"}]}, "quarantineUntil missing or not a string"),
    ({"workers": [{"workerId": "R5", "quarantineUntil": "next tuesday"}]},
     "quarantineUntil 'next tuesday' is not a date"),
    ({"workers": [], "continuationToken": 5}, "continuationToken is not a non-empty string"),
])
def test_tc_quarantine_bad_body_is_unknown(make_source, stub_session, tc_log, body, reason):
    session, _ = stub_session(lambda request: make_response(request, 200, body))
    assert make_source(session=session).quarantined([Q1]) == {Q1: None}
    assert tc_log == [f"WARNING taskcluster listWorkers GET {WORKERS_URL}: unexpected body: {reason}"]


def test_tc_quarantine_failure_of_one_queue_leaves_the_others(make_source, stub_session):
    def handler(request):
        if "alpha" in request.url:
            return make_response(request, 500, {"code": "InternalServerError"})
        return make_response(request, 200, page(("R5CW1", "3025-06-09T22:05:00.000Z")))

    session, _ = stub_session(handler)
    result = make_source(session=session, max_attempts=2).quarantined([Q1, Q2, "not a queue"])
    assert result == {Q1: frozenset({"R5CW1"}), Q2: None, "not a queue": None}


def test_tc_quarantine_dates_without_zone_are_utc(make_source, stub_session, clock):
    session, _ = stub_session(lambda request: make_response(
        request, 200, page(("A", "2025-06-10T08:30:05"), ("B", "2025-06-10T10:29:00+02:00"))))
    assert make_source(session=session).quarantined([Q1]) == {Q1: frozenset({"A"})}
