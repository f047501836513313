"""``simulate --plot`` and ``report --plot``: each renders a real file from a small run (PNG or SVG), and says how to
install matplotlib when it is missing."""

from __future__ import annotations

import builtins
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_ops_holds import write

from provisioner.cli import cli
from provisioner.ledger import Ledger
from provisioner.model import LaunchState

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = """
[scenario]
description = "a few tasks on a few phones"
duration = 1200

[pools.a55-perf]
queue = "proj-autophone/gecko-t-lambda-perf-a55"
selector = { model = "Galaxy A55 5G" }

[plugins.sim]
seed = 1
phones = 6
models = ["Galaxy A55 5G"]
os_versions = ["14"]
task_seconds = 300

[plugins.sim.queues]
"proj-autophone/gecko-t-lambda-perf-a55" = { burst = 2, per_hour = 30 }
"""


def check_file(path: Path) -> None:
    data = path.read_bytes()
    if path.suffix == ".png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert b"<svg" in data[:2000]
    assert len(data) > 20_000


@pytest.mark.parametrize("name", ["sim.png", "sim.svg"])
def test_simulate_plot(tmp_path, name):
    scenario = tmp_path / "small.toml"
    scenario.write_text(SCENARIO)
    out = tmp_path / name
    result = CliRunner().invoke(cli, ["simulate", "-c", str(ROOT / "scenarios" / "production.toml"), "--scenario",
                                      str(scenario), "--policy", "provisioner", "--plot", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "warm=0" in result.output and "warm=auto" in result.output  # --plot compares demand only and auto
    assert "idle-outs" in result.output
    check_file(out)


def test_report_plot(tmp_path):
    path = write(tmp_path)
    ledger = Ledger(tmp_path / "state" / "ledger.sqlite3")
    now = time.time()
    for day in range(3):
        for i, outcome in enumerate(["completed", "failed", "completed"]):
            t = now - day * 86400 - 3600 + i * 600
            launch = ledger.add("perf", f"SIM000{i}", t, kind="warm" if i == 2 else "demand")
            ledger.update(launch.id, LaunchState.RUNNING, t + 150, job_id=f"J{day}-{i}")
            if i == 0:
                ledger.mark(launch.id, claimed_at=t + 200 + day * 30)
            ledger.update(launch.id, LaunchState.ENDED, t + 900, outcome=outcome)
    ledger.close()
    out = tmp_path / "report.png"
    result = CliRunner().invoke(cli, ["report", "-c", str(path), "--plot", str(out)],
                                env={"PROVISIONER_PLUGINS": "none"}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    check_file(out)


def test_plot_without_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    real = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    path = write(tmp_path)
    result = CliRunner().invoke(cli, ["report", "-c", str(path), "--plot", str(tmp_path / "r.png")],
                                env={"PROVISIONER_PLUGINS": "none"})
    assert result.exit_code == 2
    assert result.output.strip() == "--plot needs matplotlib: pip install 'provisioner[plot]'"
    result = CliRunner().invoke(cli, ["report", "-c", str(path), "--plot", str(tmp_path / "r.jpg")],
                                env={"PROVISIONER_PLUGINS": "none"})
    assert result.exit_code == 2 and "give a .png or .svg file" in result.output
