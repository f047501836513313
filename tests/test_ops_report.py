"""``provisioner report``: per pool and per phone, from the ledger and the provider's job history."""

from __future__ import annotations

import json
import time

from click.testing import CliRunner
from test_ops_holds import write

from provisioner.cli import cli
from provisioner.cli.report import read_history, report_data
from provisioner.ledger import Hold, Ledger
from provisioner.model import JobState, LaunchState, RemoteJob

FAILING = ("failed", "lambda_error", "timeout")
T = 1_750_000_000.0


def launch(ledger: Ledger, n: int, pool: str, udid: str, state: LaunchState, outcome: str = "",
           ran: float | None = None) -> None:
    """Launch L<n>, submitted at T + n, job J<n> (none for a failed submission), first seen running ``ran`` s later."""
    entry = ledger.add(pool, udid, T + n)
    if ran is not None:
        ledger.update(entry.id, LaunchState.RUNNING, T + n + ran, job_id=f"J{n}")
    fields = {"job_id": f"J{n}"} if state is not LaunchState.FAILED and ran is None else {}
    ledger.update(entry.id, state, T + n + 300, **({"outcome": outcome} if outcome else {}), **fields)


def test_tallies_per_pool_and_phone_worst_first(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    launch(ledger, 1, "perf", "A", LaunchState.ENDED, "completed", ran=200)
    launch(ledger, 2, "perf", "A", LaunchState.ENDED, "completed", ran=220)
    launch(ledger, 3, "perf", "B", LaunchState.ENDED, "failed")  # never seen running: fails while starting
    launch(ledger, 4, "perf", "B", LaunchState.ENDED, "lambda_error", ran=210)  # seen running
    launch(ledger, 5, "perf", "B", LaunchState.FAILED)
    launch(ledger, 6, "unit", "C", LaunchState.ENDED, "wasted", ran=230)
    launch(ledger, 7, "unit", "C", LaunchState.RUNNING, ran=215)  # the provider says it ended meanwhile
    launch(ledger, 8, "unit", "C", LaunchState.STARTING)  # still in flight
    launch(ledger, 9, "unit", "C", LaunchState.CANCELLED)  # never submitted: not a launch
    launch(ledger, 10, "perf", "", LaunchState.ENDED, "never seen")  # a selector launch never placed
    launch(ledger, 11, "perf", "A", LaunchState.ENDED, "aborted")
    jobs = [
        RemoteJob("J7", "unit", "C", JobState.ENDED, T + 7, T + 900, "timeout"),
        RemoteJob("X1", "unit", "D", JobState.ENDED, T + 20, T + 900, "completed"),  # not in the ledger
        RemoteJob("X2", "unit", "D", JobState.RUNNING, T + 30),
        RemoteJob("X3", "other", "E", JobState.ENDED, T + 30, T + 60, "failed"),  # a pool not in this config
    ]
    holds = [Hold("B", T + 400, T + 2200, "jobs", "2 failed jobs in a row"), Hold("C", T + 10, T + 10, "release")]
    data = report_data(["perf", "unit"], read_history(ledger, jobs, T), holds,
                       {"B": (T + 2200, "held: 2 failed jobs in a row")}, FAILING, T, T + 3600, [])
    perf, unit = data["pools"]
    assert perf["pool"] == "perf" and perf["launches"] == 7 and perf["failed_submissions"] == 1
    assert perf["completed"] == 2 and perf["failed_jobs"] == {"failed": 1, "lambda_error": 1}
    assert perf["failed_jobs_by_phase"] == {"starting": 1, "running": 1}
    assert perf["other_outcomes"] == {"never seen": 1, "aborted": 1}
    assert perf["success_rate"] == 2 / 5 and perf["median_seconds_to_running"] == 212.5  # 210, told to 5 s
    assert unit["launches"] == 5 and unit["wasted"] == 1 and unit["failed_jobs"] == {"timeout": 1}
    assert unit["in_flight"] == 2 and unit["unrecorded"] == 2 and unit["completed"] == 1
    phones = {r["udid"]: r for r in data["phones"]}
    assert [r["udid"] for r in data["phones"]] == ["B", "C", "A", "D"]  # the most failures first
    assert phones["B"]["failed_submissions"] == 1 and phones["B"]["success_rate"] == 0
    assert phones["B"]["holds"] == 1 and phones["B"]["held_now"]["reason"] == "held: 2 failed jobs in a row"
    assert phones["C"]["holds"] == 0  # a release is not a hold
    assert phones["A"]["pools"] == ["perf"] and phones["A"]["success_rate"] == 1.0
    assert "E" not in phones


def _ledger_with_history(tmp_path) -> float:
    ledger = Ledger(tmp_path / "state" / "ledger.sqlite3")
    now = time.time()
    old = ledger.add("perf", "SIM0000", now - 10 * 86400)  # outside a week
    ledger.update(old.id, LaunchState.ENDED, now - 10 * 86400, outcome="failed")
    for i, outcome in enumerate(["completed", "completed", "failed"]):
        launch = ledger.add("perf", "SIM0002", now - 3600 + i * 600)
        ledger.update(launch.id, LaunchState.RUNNING, now - 3400 + i * 600, job_id=f"J{i}")
        ledger.mark(launch.id, claimed_at=now - 3350 + i * 600 + i * 60)  # its worker claimed: 250, 310, 370 s
        ledger.update(launch.id, LaunchState.ENDED, now - 3000 + i * 600, outcome=outcome)
    failed = ledger.add("unit", "SIM0001", now - 600)
    ledger.update(failed.id, LaunchState.FAILED, now - 590, detail="CLI exited 1")
    ledger.hold("SIM0001", now - 500, now + 3600, "manual", "cable")
    ledger.close()
    return now


def test_report_command(tmp_path):
    path = write(tmp_path)
    _ledger_with_history(tmp_path)
    env = {"PROVISIONER_PLUGINS": "none"}
    result = CliRunner().invoke(cli, ["report", "-c", str(path)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("report from ") and lines[0].endswith("(7d00h)")
    assert lines[2].split() == ["perf", "3", "0", "3", "2", "0", "0", "0", "1", "(running", "1)", "0", "67%", "3m", "5m"]
    assert lines[3].split()[:3] == ["unit", "1", "1"]
    phones = lines[lines.index("phones, worst first:") + 2:]
    assert [line.split()[0] for line in phones] == ["SIM0001", "SIM0002"]
    assert "held by hand: cable" in phones[0]
    data = json.loads(CliRunner().invoke(cli, ["report", "-c", str(path), "--since", "30d", "--json"], env=env).output)
    assert data["pools"][0]["launches"] == 4  # the old launch is in a month
    assert [h["source"] for h in data["holds"]] == ["manual"]


def test_report_without_a_ledger_or_a_job_history(tmp_path):
    path = write(tmp_path)
    env = {"PROVISIONER_PLUGINS": "none"}
    data = json.loads(CliRunner().invoke(cli, ["report", "-c", str(path), "--json"], env=env).output)
    assert data["notes"] == ["no ledger yet: only the provider's job history"]
    assert data["phones"] == [] and data["pools"][0]["launches"] == 0
    assert not (tmp_path / "state" / "ledger.sqlite3").exists()


def test_report_from_the_ledger_alone_when_the_job_history_is_unknown(tmp_path, monkeypatch):
    from provisioner.sim.plugin import SimDeviceProvider
    from provisioner.types import RemoteError

    def unknown(self, since):
        raise RemoteError("GET /v1.0/jobs: HTTP 502")

    monkeypatch.setattr(SimDeviceProvider, "jobs", unknown)
    path = write(tmp_path)
    _ledger_with_history(tmp_path)
    result = CliRunner().invoke(cli, ["report", "-c", str(path)], env={"PROVISIONER_PLUGINS": "none"})
    assert result.exit_code == 0, result.output
    assert "note: sim: the provider's job history is unknown (GET /v1.0/jobs: HTTP 502): from the ledger alone" in result.output
    assert result.output.splitlines()[2].split()[:2] == ["perf", "3"]
    monkeypatch.setattr(SimDeviceProvider, "jobs", lambda self, since: 1 / 0)
    data = json.loads(CliRunner().invoke(cli, ["report", "-c", str(path), "--json"], env={"PROVISIONER_PLUGINS": "none"}).output)
    assert data["notes"] == ["sim: job history failed: ZeroDivisionError: division by zero"]
