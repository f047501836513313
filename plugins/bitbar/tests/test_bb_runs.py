"""Our runs from ``admin/runs`` (newest first, paged) and their device sessions: ownership by project, the
phone from the run's name or its session, the state and outcome tables, the session-read budget."""

from __future__ import annotations

import pytest

from provisioner import JobState, PluginContext, RemoteError, RemoteJob
from provisioner_bitbar import Bitbar
from provisioner_bitbar.runs import labels_phone, pool_of
from provisioner_bitbar.states import run_state, session_facts

from bb_shapes import NOW

S = NOW - 7200
STARTING, RUNNING, ENDED = JobState.STARTING, JobState.RUNNING, JobState.ENDED
EXPECTED = [
    RemoteJob("9002", "bb-a55-group", "", STARTING, NOW - 30),
    RemoteJob("9001", "bb-a55-perf", "a55-33", STARTING, NOW - 60),
    RemoteJob("9000", "bb-a55-group", "a55-34", RUNNING, NOW - 600),  # placed: learned from its session
    RemoteJob("8998", "bb-a55-perf", "a55-35", ENDED, NOW - 2400, NOW - 420, "succeeded"),
    RemoteJob("8997", "bb-a55-perf", "a55-52", ENDED, NOW - 3000, NOW - 1800, "failed"),
    RemoteJob("8996", "bb-a55-perf", "", ENDED, NOW - 3600, NOW - 3540, "excluded"),  # name changed, never placed
    RemoteJob("8995", "bb-a55-group", "a55-57", ENDED, NOW - 6000, NOW - 300, "timeout"),
]


@pytest.mark.vcr("provider_ok.yaml")
def test_our_runs_with_states_phones_and_outcomes(context: PluginContext) -> None:
    assert Bitbar({}, context).jobs(S) == EXPECTED  # mbd's run (8999) is not ours; 8990 is older than since


@pytest.mark.vcr("runs_two_pages.yaml")
def test_paging_stops_below_since(context: PluginContext) -> None:
    assert Bitbar({"page_size": 5}, context).jobs(S) == EXPECTED


@pytest.mark.vcr("runs_unsorted.yaml")
def test_a_list_out_of_order_is_read_to_its_end(context: PluginContext) -> None:
    jobs = Bitbar({"page_size": 5}, context).jobs(S)  # page 1 ends on 8990: stopping there would lose 8998-8995
    assert sorted(jobs, key=lambda j: -j.created_at) == EXPECTED


@pytest.mark.parametrize("row, state", [
    ({"state": "WAITING"}, STARTING),
    ({"state": "RUNNING"}, RUNNING),
    ({"state": "FINISHED"}, ENDED),
    ({"state": "RUNNING", "endTime": 1}, ENDED),
    ({"state": "PAUSED", "startTime": 1}, RUNNING),
    ({"state": "PAUSED"}, STARTING),
    ({}, STARTING),
])
def test_run_state_table(row, state) -> None:
    assert run_state(row) is state


@pytest.mark.vcr("runs_two_pages.yaml")
def test_a_list_cut_by_max_pages_is_unknown(context: PluginContext) -> None:
    with pytest.raises(RemoteError, match="more than 1 pages of 5"):
        Bitbar({"page_size": 5, "max_pages": 1}, context).jobs(S)


@pytest.mark.vcr("provider_ok.yaml")
def test_sessions_are_read_once_per_ended_run(context: PluginContext, vcr) -> None:
    bitbar = Bitbar({}, context)
    bitbar.jobs(S)
    reads = vcr.play_count
    vcr.allow_playback_repeats = True
    assert bitbar.jobs(S) == EXPECTED
    # the run list again, and nothing else: ended runs' sessions are remembered, the placed run (9000) keeps its
    # phone, and a waiting run (9001, 9002) has no phone to read yet
    assert vcr.play_count - reads == 1


@pytest.mark.vcr("provider_ok.yaml")
def test_beyond_the_read_budget_an_ended_run_ends_without_an_outcome(context: PluginContext) -> None:
    jobs = {j.job_id: j for j in Bitbar({"session_reads": 2}, context).jobs(S)}
    assert (jobs["8998"].outcome, jobs["8997"].outcome, jobs["8996"].outcome) == ("succeeded", "finished", "finished")
    assert jobs["9000"].udid == "a55-34" and jobs["8995"].state is ENDED  # the budget went to the newest


def test_ownership_by_project_name() -> None:
    assert pool_of("provisioner", "provisioner-bb-a55-perf") == "bb-a55-perf"
    assert pool_of("provisioner", "12345-mozilla-gw-perftest-a55") == ""
    assert pool_of("provisioner", "provisioner-") == "" and pool_of("provisioner", None) == ""
    assert labels_phone("provisioner,bb-a55-perf,a55-33", "provisioner", "bb-a55-perf") == "a55-33"
    assert labels_phone("provisioner,other,a55-33", "provisioner", "bb-a55-perf") == ""
    assert labels_phone("Test Run 3", "provisioner", "bb-a55-perf") == ""


@pytest.mark.parametrize("sessions, facts", [
    ([], ("", "no_session")),
    ([{"state": "WAITING", "device": {"displayName": "a55-33"}}, {"state": "WAITING"}], ("", None)),
    ([{"state": "RUNNING", "device": {"displayName": "a55-33"}}, {"state": "EXCLUDED"}], ("a55-33", None)),
    ([{"state": "FINISHING", "device": {"displayName": "a55-33"}}], ("a55-33", None)),
    ([{"state": "WARNING", "device": {"displayName": "a55-33"}}], ("a55-33", "warning")),
    ([{"state": "ABORTED", "device": {"displayName": "a55-33"}}], ("a55-33", "aborted")),
    ([{"state": "EXCLUDED", "excludeReason": "NO_DEVICE"}], ("", "excluded")),
    ([{"state": "LOST", "device": {"displayName": "a55-33"}}], ("a55-33", "lost")),
    ([{"state": "RUNNING", "device": {"displayName": "bad name"}}], ("", None)),
])
def test_session_table(sessions, facts) -> None:
    assert session_facts(sessions) == facts
