"""The CLI's own behaviour: JSON logs, dry run, plugins table, secrets redacted from every log line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from provisioner import logs
from provisioner.cli import cli

ENV = dict(os.environ, PROVISIONER_PLUGINS="none")


def provisioner(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provisioner", *args], capture_output=True, text=True, env=ENV, timeout=120)


def sim_config(tmp_path: Path) -> Path:
    text = Path("examples/sim.toml").read_text().replace('state_dir = "../state/sim"', f'state_dir = "{tmp_path}/state"')
    path = tmp_path / "sim.toml"
    path.write_text(text)
    return path


def test_json_log_lines_for_journald(tmp_path: Path):
    result = provisioner("run", "-c", str(sim_config(tmp_path)), "--once", "--log-format", "json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    messages = [r["record"]["message"] for r in records]
    assert any(m.startswith("pool a55-perf: pending 10 claimed 0") for m in messages)
    assert all(r["record"]["level"]["name"] in ("INFO", "WARNING", "DEBUG") for r in records)


def test_dry_run_launches_nothing_and_writes_no_ledger(tmp_path: Path):
    result = provisioner("run", "-c", str(sim_config(tmp_path)), "--once", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run: nothing will be launched" in result.stderr
    assert "dry run: would launch for pool a55-perf" in result.stderr
    assert "launched job" not in result.stderr
    assert not (tmp_path / "state" / "ledger.sqlite3").exists()


def test_run_with_a_bad_config_exits_2_with_one_line(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[provisioner]\ninterval = -1\n[defaults]\nqueue_source = 'sim'\ndevice_provider = 'sim'\nlauncher = 'sim'\n[pools.a]\nqueue = 'q'\nudids = ['SIM0000']\n")
    result = provisioner("run", "-c", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"{bad}: provisioner.interval: must be at least 1, not -1"]


def test_plugins_table_lists_the_builtin():
    result = CliRunner().invoke(cli, ["plugins"], env={"PROVISIONER_PLUGINS": "none"})
    assert result.exit_code == 0
    assert result.output.splitlines()[1].split()[:3] == ["sim", "provisioner", "0.1.0"]


def test_secrets_are_redacted_from_every_log_line():
    import io

    from loguru import logger

    stream = io.StringIO()
    logs.setup("TRACE", stream=stream)
    try:
        logs.add_secrets(["hunter2-token-value", "xy"])  # too short to redact safely: ignored
        logger.debug("calling with token hunter2-token-value and xy")
        logs.setup("TRACE", fmt="json", stream=stream)
        logger.trace("again hunter2-token-value")
        try:
            raise ValueError("token=hunter2-token-value")
        except ValueError:
            logger.exception("a traceback")
    finally:
        logs.setup("INFO")
    text = stream.getvalue()
    assert "hunter2" not in text
    assert "token *** and xy" in text and "again ***" in text and "ValueError: token=***" in text
    assert logs.redact("a hunter2-token-value b") == "a *** b"
