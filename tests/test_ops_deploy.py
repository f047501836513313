"""The deployment files agree with the daemon and with the production config."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from provisioner.config import tomllib

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def unit(name: str) -> dict[str, str]:
    """Key -> value of a unit file (the last one wins, as in systemd for these keys)."""
    out = {}
    for line in (DEPLOY / name).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def seconds(value: str) -> int:
    return int(value.rstrip("s"))


def test_the_service_is_watched_restarted_and_stopped_cleanly():
    u = unit("provisioner.service")
    assert u["Type"] == "notify" and u["NotifyAccess"] == "main"
    assert u["Restart"] == "always" and u["KillSignal"] == "SIGTERM" and u["KillMode"] == "mixed"
    assert u["ExecStartPre"].endswith("provisioner check -c /etc/provisioner/config.toml")
    assert u["ExecStart"].endswith("provisioner run -c /etc/provisioner/config.toml")
    assert u["EnvironmentFile"] == "/etc/provisioner/provisioner.env"
    assert u["User"] == "provisioner" and u["UMask"] == "0077" and u["StateDirectoryMode"] == "0700"
    production = tomllib.loads((ROOT / "config.toml").read_text())
    assert seconds(u["WatchdogSec"]) >= 2 * production["provisioner"]["interval"]
    cli_timeout = production["plugins"]["hyperexecute"].get("cli_timeout", 300)
    assert seconds(u["TimeoutStopSec"]) > cli_timeout  # submissions in flight get to finish
    assert production["provisioner"]["state_dir"] == "/var/lib/provisioner"  # = StateDirectory=provisioner


def test_the_env_file_example_names_every_variable_the_production_config_names():
    config = (ROOT / "config.toml").read_text()
    named = set(re.findall(r'^\s*[a-z_]+_env\s*=\s*"([A-Z0-9_]+)"', config, re.M))
    named |= set(re.findall(r'[a-z_]+_env = "([A-Z0-9_]+)"', config))  # inline tables of the pools
    example = (DEPLOY / "provisioner.env.example").read_text()
    given = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", example, re.M))
    assert named and named <= given
    assert not re.search(r"^[A-Z0-9_]+=\S", example, re.M)  # no value in the example


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_units(tmp_path):
    names = ["provisioner.service", "provisioner-cli-update.service", "provisioner-cli-update.timer"]
    for name in names:  # the virtualenv is not installed here: point the commands at /bin/true
        text = (DEPLOY / name).read_text().replace("/opt/provisioner/venv/bin/provisioner", "/bin/true")
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / n) for n in names)], capture_output=True, text=True, timeout=60,
        env={"SYSTEMD_LOG_LEVEL": "warning", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "provisioner.service" not in result.stderr, result.stderr
