"""``provisioner status`` and ``provisioner phones``: a snapshot that starts nothing; holds by hand."""

from __future__ import annotations

import json
import re
import time

import pytest
from click.testing import CliRunner
from test_ops_holds import ended, failing_submissions, make, write

from provisioner.cli import cli
from provisioner.cli.status import parse_duration, snapshot, span
from provisioner.clock import VirtualClock
from provisioner.model import LaunchState
from provisioner.types import RemoteError

ENV = {"PROVISIONER_PLUGINS": "none"}


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), env=ENV, catch_exceptions=False)


def test_snapshot_per_pool_and_it_starts_nothing(tmp_path):
    p, runtime, clock = make(tmp_path, tweak=failing_submissions("SIM0003", "CLI exited 1\nyaml: line 3: bad"), perf=2, unit=2)
    p.cycle()  # 2 perf launches, SIM0001 and a failure on SIM0003
    clock.advance(30)
    queued = p.ledger.add("perf", "SIM0004", clock.now())  # a launch the daemon is about to submit
    p.ledger.hold("SIM0002", clock.now(), clock.now() + 600, "manual", "battery swollen")
    fleet = runtime.objects["launcher"]["sim"].fleet
    before = fleet.stats()["launches"]

    snap = snapshot(p.config, runtime, p.ledger, clock)

    assert fleet.stats()["launches"] == before  # nothing started
    assert p.ledger.get(queued.id).state is LaunchState.QUEUED  # nothing cancelled or rewritten
    pools = {r["pool"]: r for r in snap["pools"]}
    assert pools["perf"]["pending"] == 2 and pools["perf"]["starting"] == 3  # 2 submitted + 1 queued
    assert pools["perf"]["held"] == 1 and pools["perf"]["launches_last_hour"] == 2
    assert pools["unit"]["failed_last_hour"] == 1
    assert pools["unit"]["last_failure"]["udid"] == "SIM0003"
    assert pools["unit"]["last_failure"]["detail"] == "yaml: line 3: bad"
    held = {h["udid"]: h for h in snap["held"]}
    assert held["SIM0002"]["reason"] == "held by hand: battery swollen" and held["SIM0002"]["pools"] == ["perf"]
    assert held["SIM0003"]["reason"] == "1 failed submission in a row"
    assert pools["perf"]["next_cycle"]["launches"] == 0
    assert snap["unknown"] == []


def test_snapshot_says_what_is_unknown(tmp_path):
    def break_phones(runtime):
        def phones():
            raise RemoteError("GET privatecloud_devices: HTTP 503")

        runtime.objects["device_provider"]["sim"].phones = phones

    p, runtime, clock = make(tmp_path, tweak=break_phones, perf=2)
    snap = snapshot(p.config, runtime, p.ledger, clock)
    assert snap["unknown"] == ["sim: phones: GET privatecloud_devices: HTTP 503"]
    assert {r["next_cycle"]["reason"] for r in snap["pools"]} == {"phones or jobs unknown: no launch"}


def test_status_command_table_and_json(tmp_path):
    path = write(tmp_path, perf=3)
    result = invoke("status", "-c", str(path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split() == ["POOL", "PENDING", "CLAIMED", "IDLE", "BUSY", "STARTING", "QUARANTINED", "HELD",
                                "LAUNCHES/1H", "WARM", "IDLE-OUTS/1H", "LAST", "FAILURE"]
    assert lines[2].split()[:2] == ["perf", "3"]
    assert "no ledger yet" in result.output
    assert not (tmp_path / "state" / "ledger.sqlite3").exists()  # status creates nothing
    data = json.loads(invoke("status", "-c", str(path), "--json").output)
    assert [r["pool"] for r in data["pools"]] == ["perf", "unit"]
    assert data["pools"][0]["next_cycle"]["launches"] == 3


def test_hold_release_and_held_by_hand(tmp_path):
    path = write(tmp_path)
    result = invoke("phones", "hold", "SIM0002", "-c", str(path), "--for", "2h", "--reason", "screen cracked", "--force")
    assert result.exit_code == 0, result.output
    assert "SIM0002 held back until" in result.output and "(2h00m): screen cracked" in result.output
    listed = invoke("phones", "held", "-c", str(path))
    assert listed.output.startswith("SIM0002: held by hand since") and "screen cracked" in listed.output
    data = json.loads(invoke("status", "-c", str(path), "--json").output)
    assert data["held"][0]["udid"] == "SIM0002"
    assert data["held"][0]["until"] == pytest.approx(time.time() + 7200, abs=60)
    text = invoke("status", "-c", str(path)).output
    assert re.search(r"held back:\n  SIM0002 \[perf\] for (1h59m|2h00m) more: held by hand: screen cracked", text)

    released = invoke("phones", "release", "SIM0002", "-c", str(path), "--reason", "replaced")
    assert released.output.strip() == "SIM0002 released (1 hold ended; earlier failures no longer count)"
    assert invoke("phones", "held", "-c", str(path)).output.strip() == "no phone is held back"
    assert json.loads(invoke("phones", "held", "-c", str(path), "--json").output) == []


def test_hold_needs_a_valid_duration(tmp_path):
    path = write(tmp_path)
    result = CliRunner().invoke(cli, ["phones", "hold", "SIM0002", "-c", str(path), "--for", "soon"], env=ENV)
    assert result.exit_code == 2 and "not a duration: 'soon'" in result.output
    result = CliRunner().invoke(cli, ["phones", "hold", "SIM0002", "-c", str(path), "--for", "0"], env=ENV)
    assert result.exit_code == 2 and "must be longer than 0" in result.output


def test_phones_commands_report_config_problems_in_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[provisioner]\ninterval = -1\n")
    result = CliRunner().invoke(cli, ["phones", "held", "-c", str(bad)], env=ENV)
    assert result.exit_code == 2
    assert f"{bad}: provisioner.interval: must be at least 1, not -1" in result.output


def test_durations():
    assert parse_duration("90") == 90 and parse_duration("15m") == 900 and parse_duration("1h30m") == 5400
    assert parse_duration("7d") == 7 * 86400 and parse_duration("2w") == 14 * 86400 and parse_duration("1.5h") == 5400
    for bad in ("", "h", "2x", "1h 30m", "-5m"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert [span(s) for s in (5, 125, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == ["5s", "2m", "3h05m", "2d04h"]


def test_a_job_failure_hold_shows_in_status(tmp_path):
    p, runtime, clock = make(tmp_path)
    now = clock.now()
    ended(p.ledger, "SIM0001", "failed", now - 20, pool="unit")
    ended(p.ledger, "SIM0001", "timeout", now - 10, pool="unit")
    p.held_back(now)  # the daemon's cycle records the hold
    snap = snapshot(p.config, runtime, p.ledger, VirtualClock(now + 60))
    assert snap["held"] == [
        {"udid": "SIM0001", "until": now + 1800, "reason": "held: 2 failed jobs in a row", "pools": ["unit"]}
    ]
    assert {r["pool"]: r["held"] for r in snap["pools"]} == {"perf": 0, "unit": 1}


def test_holding_a_phone_no_pool_names_needs_force(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(f'[provisioner]\nstate_dir = "{tmp_path / "state"}"\n'
                    '[pools.a]\nqueue = "p/q"\nudids = ["R5CX1"]\nqueue_source = "sim"\ndevice_provider = "sim"\n'
                    'launcher = "sim"\n')
    typo = invoke("phones", "hold", "R5CXl", "-c", str(path), "--for", "1h")
    assert typo.exit_code == 2
    assert typo.output.splitlines() == [
        f"{path}: pools: no pool names phone R5CXl and nothing was ever launched on it (a typo?); --force holds it anyway"
    ]
    assert invoke("phones", "held", "-c", str(path)).output.strip() == "no phone is held back"
    forced = invoke("phones", "hold", "R5CXl", "-c", str(path), "--for", "1h", "--force")
    assert forced.exit_code == 0 and "R5CXl held back" in forced.output
    known = invoke("phones", "hold", "R5CX1", "-c", str(path), "--for", "1h")
    assert known.exit_code == 0 and "R5CX1 held back" in known.output
