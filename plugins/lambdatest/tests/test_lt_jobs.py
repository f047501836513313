"""The device provider's jobs(): cursor pages, labels, status mapping and times."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provisioner import JobState, PluginContext, RemoteError
from provisioner_lambdatest.devices import LambdaTestDevices, epoch, job_state, labels_of

EARLY = epoch("2025-05-09T00:00:00Z")
assert EARLY is not None


def provider(context: PluginContext, **options: Any) -> LambdaTestDevices:
    return LambdaTestDevices({"jobs_page_size": 5, **options}, context)


@pytest.mark.vcr("jobs_two_pages.yaml")
def test_two_pages_give_our_jobs_with_states_and_times(context: PluginContext, vcr: Any) -> None:
    jobs = provider(context).jobs(EARLY)
    assert vcr.play_count == 2  # the second page was asked with cursor=<last job_number of the first>
    by_id = {job.job_id[:8]: job for job in jobs}
    # 9814 (another tag) and 9800 (no label) are not ours
    assert sorted(by_id) == ["1c02245d", "27ccf463", "29be9ac1", "45acc678", "b88341b5", "bf308135", "cc612de1"]
    running = by_id["29be9ac1"]
    assert (running.pool, running.udid, running.state, running.outcome) == ("a55-perf", "R5CXC1HZK0W", JobState.RUNNING, "")
    assert running.created_at == epoch("2025-05-09T03:47:59Z") == 1746762479.0
    assert running.ended_at is None
    completed = by_id["45acc678"]
    assert (completed.state, completed.outcome, completed.ended_at) == (
        JobState.ENDED, "completed", epoch("2025-05-09T03:55:20Z"))
    aborted = by_id["27ccf463"]  # its job_summary is null
    assert (aborted.pool, aborted.udid, aborted.state, aborted.outcome) == ("a55-perf", "RZCX50TW03H", JobState.ENDED, "aborted")
    assert {by_id[k].outcome for k in ("cc612de1", "b88341b5")} == {"lambda_error", "timeout"}


@pytest.mark.vcr("jobs_two_pages.yaml")
def test_jobs_older_than_since_stop_the_paging(context: PluginContext, vcr: Any) -> None:
    since = epoch("2025-05-09T03:30:00Z")
    assert since is not None
    jobs = provider(context).jobs(since)
    assert vcr.play_count == 1  # the first page already reaches back before `since`
    assert sorted(job.job_id[:8] for job in jobs) == ["29be9ac1", "45acc678", "bf308135"]
    assert all(job.created_at >= since for job in jobs)


@pytest.mark.vcr("jobs_empty_page.yaml")
def test_an_empty_page_ends_the_paging(context: PluginContext, vcr: Any) -> None:
    jobs = provider(context).jobs(EARLY)
    assert vcr.play_count == 2
    states = {job.job_id[:8]: job.state for job in jobs}
    assert states["29be9ac1"] is JobState.STARTING and states["45acc678"] is JobState.STARTING
    assert states["bf308135"] is JobState.RUNNING and states["1d1ee6e1"] is JobState.ENDED


@pytest.mark.vcr("jobs_two_pages.yaml")
def test_the_page_bound_makes_the_list_unknown_not_short(context: PluginContext, vcr: Any) -> None:
    lt = provider(context, jobs_max_pages=1)
    with pytest.raises(RemoteError, match="1 pages of 5 jobs did not reach the look-back window's start"):
        lt.jobs(EARLY)
    assert vcr.play_count == 1


@pytest.mark.vcr("jobs_malformed_label.yaml", allow_playback_repeats=True)
def test_a_malformed_label_is_skipped_with_one_warning(context: PluginContext, logs: list[str]) -> None:
    lt = provider(context)
    for _ in range(2):
        jobs = lt.jobs(EARLY)
    assert sorted(job.job_id[:8] for job in jobs) == ["45acc678", "bf308135"]
    warnings = [line for line in logs if "malformed job_label" in line]
    assert len(warnings) == 1 and "29be9ac1" in warnings[0]


@pytest.mark.vcr("jobs_two_pages.yaml")
def test_jobs_of_another_tag_are_not_ours(context: PluginContext) -> None:
    context.job_tag = "provisioner"
    assert provider(context).jobs(EARLY) == []


@pytest.mark.vcr("jobs_401.yaml")
def test_refused_credentials(context: PluginContext) -> None:
    with pytest.raises(RemoteError, match="credentials were refused"):
        provider(context).jobs(EARLY)


@pytest.mark.vcr("jobs_400_no_cursor_flag.yaml")
def test_a_client_error_is_unknown_without_retry(context: PluginContext, vcr: Any) -> None:
    with pytest.raises(RemoteError, match="jobs: HTTP 400$"):
        provider(context).jobs(EARLY)
    assert vcr.play_count == 1


@pytest.mark.vcr("jobs_5xx.yaml")
def test_server_errors_make_the_jobs_unknown(context: PluginContext) -> None:
    with pytest.raises(RemoteError, match=r"v1.0/jobs: HTTP 500 \(3 tries\)"):
        provider(context).jobs(EARLY)


def test_label_shapes(context: PluginContext, logs: list[str]) -> None:
    lt = provider(context)

    def _parse(context: PluginContext, **fields: Any) -> Any:
        raw = {"id": "j1", "job_number": 1, "created_at": "2025-05-09T03:00:00Z", "status": "running", **fields}
        return lt._parse_job(raw)

    selector_job = _parse(context, job_label='["tcdp","a55-perf"]')
    assert (selector_job.pool, selector_job.udid) == ("a55-perf", "")
    assert _parse(context, job_label=["tcdp", "a55-perf", "U1"]).udid == "U1"  # already a list
    assert _parse(context, job_label='["tcdp"]') is None  # names no pool
    assert _parse(context, job_label='["tcdp","p"]', created_at="yesterday") is None
    assert _parse(context, job_label='["tcdp","p"]', id=None) is None
    assert _parse(context, job_label='["other","p"]') is None
    assert _parse(context, job_label='{"a": 1}') is None
    assert sum("skipped" in line for line in logs) == 2  # once per job id (j1, and "1" for the one without id)
    assert labels_of({"job_label": ""}) == [] and labels_of({}) == []
    assert labels_of({"job_label": "[1, 2]"}) is None and labels_of({"job_label": 7}) is None


def test_unknown_job_states(logs: list[str]) -> None:
    assert job_state("cancelled", ended=False) == (JobState.STARTING, "")  # no guessing: ended once it has an end
    assert job_state("cancelled", ended=False) == (JobState.STARTING, "")
    assert job_state("weird", ended=True) == (JobState.ENDED, "weird")
    assert job_state("", ended=True) == (JobState.ENDED, "unknown")
    assert job_state("initiated", ended=False) == (JobState.STARTING, "")
    assert sum("unknown job state" in line for line in logs) == 3  # cancelled once, weird, ''


@pytest.mark.parametrize("status", ["blocked", "Blocked", "BLOCKED", "queued", "Waiting"])
def test_a_waiting_job_keeps_its_phone_booked(status: str, logs: list[str]) -> None:
    """Blocked is a waiting state (LambdaTest's status page): the job still holds its phone until it has an
    end_time; its raw spelling is unconfirmed, so case, spaces, _ and - are folded."""
    assert job_state(status, ended=False) == (JobState.STARTING, "")
    assert job_state(status, ended=True) == (JobState.ENDED, status.lower())
    assert not any("unknown" in line for line in logs)


@pytest.mark.parametrize("status", ["partially_completed", "Partially Completed", "partially-completed",
                                    "PARTIALLY COMPLETED", "ignored", "Ignored", " completed "])
def test_partially_completed_and_ignored_are_ended(status: str, logs: list[str]) -> None:
    state, outcome = job_state(status, ended=False)
    assert state is JobState.ENDED and outcome in ("partially_completed", "ignored", "completed")
    assert not any("unknown" in line for line in logs)


def test_times() -> None:
    assert epoch("2025-05-09T03:47:59") == epoch("2025-05-09T03:47:59Z") == epoch("2025-05-09T05:47:59+02:00")
    assert epoch("not a time") is None and epoch(None) is None and epoch("") is None


@pytest.mark.parametrize("udid", [" ", "${{ .secrets.X }}", "R5CX\nINFO forged", "-x", ".x", "U" * 129])
def test_a_job_with_an_invalid_udid_label_is_skipped_with_one_warning(
    context: PluginContext, logs: list[str], udid: str
) -> None:
    lt = provider(context)
    label = json.dumps(["tcdp", "a55-perf", udid])
    raw = {"id": "j\n1", "job_number": 1, "created_at": "2025-05-09T03:00:00Z", "status": "running", "job_label": label}
    for _ in range(2):
        assert lt._parse_job(raw) is None
    (warning,) = [line for line in logs if "skipped" in line]
    assert f"job 'j\\n1': invalid udid label {udid!r}, skipped" in warning
    assert "\n" not in warning.rstrip("\n")
    assert lt._parse_job({**raw, "job_label": '["tcdp","a55-perf","R5CXC1HZK0W"]'}).udid == "R5CXC1HZK0W"
