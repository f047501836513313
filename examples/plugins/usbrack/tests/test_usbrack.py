"""The usbrack plugin on its own: adb's device list, phones_file, the supervised workers, their jobs, close()."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner import JobState, PhoneState, Pool, RemoteError
from provisioner.testing import make_context
from provisioner_usbrack import UsbRack
from provisioner_usbrack.adb import parse_devices

from usbrack_support import DEVICES, Rack

POOL = Pool(name="a55-R5CX10AAA01", queue="proj/a55", queue_source="sim", device_provider="usbrack",
            launcher="usbrack", udids=("R5CX10AAA01",))


@pytest.fixture
def rack(tmp_path: Path) -> Rack:
    return Rack(tmp_path / "rack")


def request(udid: str = "R5CX10AAA01", launch_id: str = "L1", pool: Pool = POOL):
    from provisioner import LaunchRequest

    return LaunchRequest(launch_id, pool, udid, ("provisioner", pool.name, udid))


def test_adb_devices_become_phones():
    phones = {p.udid: p for p in parse_devices(DEVICES)}
    assert sorted(phones) == ["1A2B3C4D5E", "R5CX10AAA01", "R5CX10AAA02", "ZY22ABCDEF"]  # EMULATOR-BAD! skipped
    assert phones["R5CX10AAA01"].model == "SM A556B" and phones["R5CX10AAA01"].state is PhoneState.IDLE
    assert phones["ZY22ABCDEF"].state is PhoneState.UNAVAILABLE and phones["ZY22ABCDEF"].raw_state == "unauthorized"


def test_phones_file_is_relative_to_the_config(tmp_path: Path, rack: Rack, monkeypatch: pytest.MonkeyPatch):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "phones.txt").write_text("# our shelf\nR5CX10AAA02\n1A2B3C4D5E\n")
    monkeypatch.chdir("/")  # as under systemd
    provider = UsbRack(rack.options(phones_file="phones.txt"), make_context(tmp_path, config_dir=etc))
    assert sorted(p.udid for p in provider.phones()) == ["1A2B3C4D5E", "R5CX10AAA02"]
    assert provider.check([POOL], network=False) == []


def test_adb_failing_is_unknown_not_empty(tmp_path: Path, rack: Rack):
    rack.fail()
    with pytest.raises(RemoteError, match="adb devices: exit status 1: error: could not connect to daemon"):
        UsbRack(rack.options(), make_context(tmp_path)).phones()
    with pytest.raises(RemoteError, match="cannot run"):
        UsbRack(rack.options(adb=str(tmp_path / "nope")), make_context(tmp_path)).phones()


def test_a_launch_runs_the_worker_for_its_phone_and_reports_its_job(tmp_path: Path, rack: Rack):
    context = make_context(tmp_path)
    provider = UsbRack(rack.options(), context)
    result = provider.launch(request())
    assert result.ok and result.job_id == "usbrack-L1"
    provider._jobs["usbrack-L1"].worker.reaper.join(30)  # the worker exits at once (exit0): wait for its reaper
    assert rack.run("L1") == {"argv": ["L1", POOL.name, "R5CX10AAA01", "proj/a55"], "serial": "R5CX10AAA01"}
    [job] = provider.jobs(context.clock.now() - 60)
    assert (job.job_id, job.pool, job.udid, job.state, job.outcome) == (
        "usbrack-L1", POOL.name, "R5CX10AAA01", JobState.ENDED, "completed")
    assert job.ended_at is not None
    provider.close()


def test_a_running_worker_holds_its_phone_and_close_stops_it(tmp_path: Path, rack: Rack):
    rack.mode = "block"
    context = make_context(tmp_path)
    provider = UsbRack(rack.options(stop_timeout=5), context)
    assert provider.launch(request()).ok
    busy = {p.udid: p.state for p in provider.phones()}
    assert busy["R5CX10AAA01"] is PhoneState.BUSY and busy["R5CX10AAA02"] is PhoneState.IDLE
    again = provider.launch(request(launch_id="L2"))
    assert not again.ok and again.detail == "phone R5CX10AAA01 already runs a job of ours"
    [job] = provider.jobs(context.clock.now() - 60)
    assert job.state is JobState.RUNNING
    process = provider._jobs["usbrack-L1"].worker.process
    provider.close()
    assert process.poll() is not None  # stopped and reaped
    [job] = provider.jobs(context.clock.now() - 60)
    assert (job.state, job.outcome) == (JobState.ENDED, "failed")
    assert not provider.launch(request(launch_id="L3")).ok  # a closed rack starts nothing


def test_render_shows_the_command_and_starts_nothing(tmp_path: Path, rack: Rack):
    provider = UsbRack(rack.options(), make_context(tmp_path))
    text = provider.render(request())
    assert text.startswith("ANDROID_SERIAL=R5CX10AAA01 ") and "L1" in text
    assert not (rack.dir / "runs").exists()


def test_one_pool_per_phone_through_the_installed_entry_point(tmp_path: Path, rack: Rack,
                                                             monkeypatch: pytest.MonkeyPatch):
    from click.testing import CliRunner

    from provisioner.cli import cli

    config = tmp_path / "etc" / "config.toml"
    config.parent.mkdir()
    (config.parent / "phones.txt").write_text("R5CX10AAA01\nR5CX10AAA02\n")
    pools = "".join(f"""
[pools.a55-{udid}]
queue = "proj/rack-{udid}"
udid = "{udid}"
queue_source = "sim"
device_provider = "usbrack"
launcher = "usbrack"
""" for udid in ("R5CX10AAA01", "R5CX10AAA02"))
    config.write_text(f"""
[provisioner]
state_dir = "state"
[plugins.sim.queues]
"proj/rack-R5CX10AAA01" = {{ burst = 1 }}
[plugins.usbrack]
adb = "{rack.adb}"
worker = ["{rack.worker}", "{{launch_id}}", "{{pool}}", "{{udid}}", "{{queue}}"]
phones_file = "phones.txt"
""" + pools)
    monkeypatch.chdir("/")
    runner = CliRunner()
    checked = runner.invoke(cli, ["check", "-c", str(config)])
    assert checked.exit_code == 0, checked.output
    dry = runner.invoke(cli, ["run", "-c", str(config), "--dry-run", "--once"])
    assert dry.exit_code == 0, dry.output
    assert "would launch for pool a55-R5CX10AAA01 on R5CX10AAA01:\nANDROID_SERIAL=R5CX10AAA01 " in dry.output
    assert not (rack.dir / "runs").exists()  # a dry run starts no worker
