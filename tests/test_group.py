"""``targeting = "group"`` end to end through the loop: the pool names the group's members, its launches name no
phone and the cloud picks one of them. Booked as selector launches are: a launch not yet placed keeps one eligible
member aside, the phone is learned from the job list and then booked, and no launch goes out without an eligible
member (idle, in the pool, not quarantined, not held, not booked)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from provisioner.loop import Provisioner
from provisioner.model import JobState, LaunchState, Phone, PhoneState, RemoteJob, Worker
from provisioner.simulate.runner import run_provisioner
from provisioner.simulate.scenario import load_scenario, settings_table
from provisioner.warm import is_idle_out

from worlds import CONFIG, fake_loop, fake_world, launches

ROOT = Path(__file__).resolve().parents[1]
GROUP = """
[pools.g]
queue = "proj/g"
udids = ["G0", "G1", "G2", "G3"]
targeting = "group"
"""


def with_group(fake, pending=0):
    """The fake world's queue and phones for pool g: its four members idle."""
    fake.pending["proj/g"] = pending
    fake.workers_of["proj/g"] = []
    fake.phone_list = fake.phone_list + [Phone(f"G{i}") for i in range(4)]
    return fake


def group_loop(tmp_path, backend=None):
    p, fake, clock = fake_loop(tmp_path, GROUP, backend=backend)
    return p, with_group(fake), clock


def decision(report, pool="g"):
    return next(d for d in report.plan.decisions if d.pool == pool)


def test_a_group_pool_launches_at_most_its_eligible_idle_members_and_names_no_phone(tmp_path, backend):
    p, fake, clock = group_loop(tmp_path, backend)
    fake.pending["proj/g"] = 10
    report = p.cycle()
    assert launches(report) == [("g", "")] * 4  # four members idle: four launches, the cloud picks each phone
    assert decision(report).reason == "launching 4 of 10: no more eligible idle phones"
    assert [(pool, udid) for pool, udid, _ in fake.launched] == [("g", "")] * 4
    assert [(la.udid, la.claim_baseline) for la in p.ledger.in_flight()] == [("", None)] * 4  # baseline: once placed
    clock.advance(30)
    report = p.cycle()  # the jobs are not listed yet: each still keeps a member aside
    assert launches(report) == [] and decision(report).starting == 4


def test_a_held_or_quarantined_member_reduces_the_launches(tmp_path, backend):
    p, fake, clock = group_loop(tmp_path, backend)
    fake.pending["proj/g"] = 10
    fake.workers_of["proj/g"] = [Worker("G0", quarantined_until=clock.now() + 3600)]
    p.ledger.hold("G1", clock.now(), clock.now() + 3600, "operator", "broken screen")
    report = p.cycle()
    assert launches(report) == [("g", "")] * 2  # G2 and G3 only
    d = decision(report)
    assert (d.idle, d.quarantined, d.held) == (2, 1, 1)
    clock.advance(30)
    fake.phone_list = [ph if ph.udid not in ("G2", "G3") else Phone(ph.udid, state=PhoneState.BUSY)
                       for ph in fake.phone_list]  # the cloud took the two that were free
    report = p.cycle()
    assert launches(report) == []  # no eligible member left: nothing goes out
    assert decision(report).reason == "8 wanted, no eligible idle phone"


def test_the_phone_learned_from_the_job_is_booked_and_takes_the_idle_baseline(tmp_path, backend):
    """The worker claims between two cycles, before the job list names its phone: the baseline is what the worker
    had while its phone was idle, so the claim is seen; the phone, once named, is booked by the launch."""
    p, fake, clock = group_loop(tmp_path, backend)
    fake.pending["proj/g"] = 1
    fake.workers_of["proj/g"] = [Worker("G1", latest_task="before/0")]
    assert launches(p.cycle()) == [("g", "")]  # G1 idle: its worker's latest task is noted
    fake.job("job-0", JobState.RUNNING, udid="G1")  # the device list still says G1 is idle (it lags)
    fake.workers_of["proj/g"] = [Worker("G1", latest_task="ours/0")]
    fake.pending["proj/g"] = 4  # four new tasks
    clock.advance(30)
    report = p.cycle()
    (launch,) = [la for la in p.ledger.in_flight() if la.job_id == "job-0"]
    assert (launch.udid, launch.claim_baseline, launch.claimed_at) == ("G1", "before/0", clock.now())
    # claimed, it covers no task; G1 stays booked by it: three members left for the four tasks
    assert (decision(report).idle, decision(report).busy, decision(report).starting) == (3, 1, 0)
    assert launches(report) == [("g", "")] * 3


def test_a_group_launch_whose_job_is_first_seen_ended_has_its_claim_checked(tmp_path):
    """A warm group launch whose job the list first shows already ended, on a member whose worker's latest task
    changed since the member was idle: its phone is learned before its claim is checked, so it is claimed, not an
    idle-out."""
    p, fake, clock = fake_loop(tmp_path, GROUP + "warm = 1\n")
    with_group(fake)
    fake.workers_of["proj/g"] = [Worker("G1", latest_task="before/0")]
    assert launches(p.cycle()) == [("g", "")]  # the warm worker; G1 idle: its worker's latest task is noted
    (launch,) = p.ledger.in_flight()
    fake.job("job-0", JobState.RUNNING, udid="G1")
    fake.job_list = [replace(fake.job_list[0], state=JobState.ENDED, outcome="completed", ended_at=clock.now())]
    fake.workers_of["proj/g"] = [Worker("G1", latest_task="ours/0")]  # it served a task, then its job ended
    clock.advance(30)
    p.cycle()
    ended = p.ledger.get(launch.id)
    assert (ended.state, ended.udid, ended.claim_baseline, ended.claimed_at) == (
        LaunchState.ENDED, "G1", "before/0", clock.now())
    assert not is_idle_out(ended)


def test_a_group_launch_being_submitted_whose_job_is_listed_books_one_phone_only(tmp_path):
    """A launch this process is still submitting whose job the list already shows on G1: it books G1 and keeps no
    other member aside as well (one phone, not two)."""
    p, fake, clock = group_loop(tmp_path)
    launch = p.ledger.add("g", "", clock.now() - 10)
    p.ledger.update(launch.id, LaunchState.SUBMITTING, clock.now() - 9)
    p._active.add(launch.id)  # its submission has not returned yet: no job id recorded
    fake.job_list = [RemoteJob("j0", "g", "G1", JobState.STARTING, clock.now() - 5)]
    fake.pending["proj/g"] = 4  # one covered by the launch: three more, on the three other members
    assert [(f.pool, f.udid, f.starting) for f in p.reconcile({"fake": fake.job_list}, {"proj/g": []}, clock.now())
            if f.pool == "g"] == [("g", "G1", True)]
    report = p.cycle()
    assert launches(report) == [("g", "")] * 3 and decision(report).starting == 1


def test_a_group_launch_never_placed_keeps_a_member_aside_until_max_startup(tmp_path, backend):
    p, fake, clock = group_loop(tmp_path, backend)
    fake.pending["proj/g"] = 4
    assert len(launches(p.cycle())) == 4
    fake.pending["proj/g"] = 8  # four more tasks, the four members listed idle: all kept aside for the four launches
    for _ in range(3):
        clock.advance(30)
        report = p.cycle()
        assert launches(report) == [] and decision(report).reason == "4 wanted, no eligible idle phone"
    clock.advance(900)  # never in the job list within max_startup_seconds: forgotten, as selector launches are
    report = p.cycle()
    first = sorted(p.ledger.since(0.0), key=lambda la: la.submitted_at)[:4]
    assert {(la.state, la.outcome) for la in first} == {(LaunchState.ENDED, "never seen")}
    assert launches(report) == [("g", "")] * 4  # the members are free again for the eight tasks pending


def test_a_dry_run_and_the_launch_log_name_the_group(tmp_path, log_lines):
    config, fake, clock, runtime = fake_world(tmp_path, CONFIG + GROUP)
    with_group(fake, pending=1)
    Provisioner(config, runtime, None, clock, dry_run=True, inline=True).cycle()
    (tmp_path / "live").mkdir()
    p, live, _ = group_loop(tmp_path / "live")
    live.pending["proj/g"] = 1
    p.cycle()
    infos = log_lines.messages("INFO")
    assert "dry run: would launch for pool g on group of 4 (G0, G1, G2 and 1 more)" in infos
    assert any(line.startswith("launched job job-0 for pool g on group of 4 (G0, G1, G2 and 1 more)") for line in infos)
    assert not any("None" in line for line in infos)


@pytest.mark.parametrize("seed", [None, 11, 23])  # None: the scenario's own seed
def test_the_group_scenario_never_overbooks_a_group_and_wastes_no_launch(seed):
    """scenarios/group.toml under production settings: at every cycle, a group's launches starting (not yet
    placed, or placed and not claimed, with those just planned) are no more than its members, the bound is reached
    (the burst outnumbers the members), and no launch ever found no free member (the cloud counts those)."""
    settings = settings_table(ROOT / "scenarios" / "production.toml")
    result = run_provisioner(settings, load_scenario("group", (ROOT / "scenarios",)), seed)
    groups = [p for p in result.pools if p.targeting == "group"]
    assert len(groups) == 2 and len(result.pools) == 4  # two pinned pools beside them
    for pool in groups:
        most = max(point.starting + point.launches for point in result.series[pool.name])
        assert most <= len(pool.udids), pool.name
    perf = next(p for p in groups if p.name == "a55-perf")
    assert max(point.starting + point.launches for point in result.series[perf.name]) == len(perf.udids)
    stats = result.stats
    assert (stats["no_free_phone"], stats["wasted"], stats["double_bookings"]) == (0, 0, 0)
    assert stats["tasks_claimed"] > 150 and result.crashes == 0
