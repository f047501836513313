"""check(pools, network): root URL, queue ids, half-set credentials, and a ping with network=True."""

from __future__ import annotations

import pytest

from provisioner import Pool
from tc_helpers import Q1, ROOT, make_response, unknown

PING_URL = f"{ROOT}/api/queue/v1/ping"


def pool(name: str, queue: str, queue_source: str = "taskcluster") -> Pool:
    return Pool(name=name, queue=queue, queue_source=queue_source, device_provider="sim", launcher="sim")


def test_tc_check_offline_accepts_good_config(make_source, stub_session):
    session, adapter = stub_session(lambda request: make_response(request, 500, {}))
    source = make_source(session=session)
    assert source.check([pool("a55-perf", Q1)], network=False) == []
    assert adapter.calls == []  # network=False: no remote call


def test_tc_check_reports_bad_queue_ids(make_source):
    pools = [pool("ok", Q1), pool("slashless", "gecko-t-lambda"), pool("long", "p/" + "w" * 39),
             pool("dots", "proj.autophone/wt"), pool("other-source", "anything goes", queue_source="sim")]
    problems = make_source().check(pools, network=False)
    assert problems == [
        f"taskcluster: pool {name}: queue {queue!r} is not <provisionerId>/<workerType>, each 1-38 characters "
        "of a-z A-Z 0-9 - _"
        for name, queue in (("slashless", "gecko-t-lambda"), ("long", "p/" + "w" * 39), ("dots", "proj.autophone/wt"))
    ]


@pytest.mark.parametrize("root_url, problem", [
    ("https://tc.example.com", ""),
    ("https://tc.example.com/", ""),
    ("http://127.0.0.1:8080", ""),  # a local stub or test harness
    ("http://127.0.0.2:8080", ""),  # all of 127/8 is loopback
    ("http://[::1]:8080", ""),
    ("http://tc.example.com", "taskcluster: root_url 'http://tc.example.com' is plain http on a host that is not "
                              "loopback; use https (or set allow_http = true)"),
    ("ftp://tc.example.com", "taskcluster: root_url 'ftp://tc.example.com' is not an https URL"),
    ("tc.example.com", "taskcluster: root_url 'tc.example.com' is not an https URL"),
    ("https://tc.example.com/?x=1", "taskcluster: root_url 'https://tc.example.com/?x=1' is not an https URL"),
    ("https://user:secret@tc.example.com", "taskcluster: root_url must not carry user info"),
    ("https://[::1", "taskcluster: root_url is not a URL"),
])
def test_tc_check_root_url(make_source, stub_session, root_url, problem):
    session, adapter = stub_session(lambda request: make_response(request, 200, {"alive": True}))
    problems = make_source(root_url=root_url, session=session).check([], network=True)
    if problem:
        assert len(problems) == 1 and problems[0].startswith(problem)
        assert "secret" not in problems[0]
        assert adapter.calls == []  # no ping of a URL known to be wrong
    else:
        assert problems == []
        assert len(adapter.calls) == 1


def test_tc_check_names_the_variable_a_root_url_came_from(make_source):
    source = make_source(environ={"TASKCLUSTER_ROOT_URL": "http://tc.example.com"})
    assert source.check([], network=False)[0].startswith(
        "taskcluster: root_url (from $TASKCLUSTER_ROOT_URL) 'http://tc.example.com' is plain http")


def test_tc_check_allow_http_accepts_a_plain_http_root_url(make_source):
    assert make_source(root_url="http://tc.example.com", allow_http=True).check([], network=False) == []


@pytest.mark.tc_recordable
@pytest.mark.vcr
def test_tc_check_pings_deployment(vcr, make_source, live_environ):
    assert make_source(environ=live_environ).check([pool("a55-perf", Q1)], network=True) == []
    assert [r.uri for r in vcr.requests] == [PING_URL]


@pytest.mark.vcr
def test_tc_check_reports_failed_ping(vcr, make_source):
    assert make_source().check([pool("a55-perf", Q1)], network=True) == [
        f"taskcluster ping GET {PING_URL}: HTTP 503; gave up after 4 attempts"
    ]


def test_tc_a_refused_root_url_is_never_called(make_source, stub_session, tc_log):
    session, adapter = stub_session(lambda request: make_response(request, 200, {"workers": []}))
    source = make_source(root_url="http://tc.example.com", session=session)
    line = ("taskcluster: root_url 'http://tc.example.com' is plain http on a host that is not loopback; use https "
            "(or set allow_http = true); no call made")
    assert unknown(lambda: source.counts([Q1])) == line and unknown(lambda: source.workers([Q1])) == line
    assert adapter.calls == []
    allowed = make_source(root_url="http://tc.example.com", session=session, allow_http=True)
    assert allowed.workers([Q1]) == {Q1: []} and len(adapter.calls) == 1
