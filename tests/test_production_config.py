"""config.toml at the top is production-shaped and valid under `check` once its variables are set."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_production_config_checks_once_variables_are_set(tmp_path: Path):
    text = (ROOT / "config.toml").read_text()
    code = "\n".join(line.split("#")[0] for line in text.splitlines())
    variables = set(re.findall(r'_env\s*=\s*"([A-Z0-9_]+)"', code))
    assert {"LT_USERNAME", "LT_ACCESS_KEY", "TC_A55_PERF_ACCESS_TOKEN"} <= variables
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cli = bin_dir / "hyperexecute"
    cli.write_text("#!/bin/sh\necho hyperexecute 0.0-test\n")
    cli.chmod(0o755)
    # the state directory is the service's; point it somewhere writable for the test
    config = tmp_path / "config.toml"
    config.write_text(text.replace('state_dir = "/var/lib/provisioner"', f'state_dir = "{tmp_path / "state"}"'))
    env = {k: v for k, v in os.environ.items() if k != "PROVISIONER_PLUGINS"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"

    missing = subprocess.run([sys.executable, "-m", "provisioner", "check", "-c", str(config)],
                             capture_output=True, text=True, env=env, timeout=120)
    assert missing.returncode == 2
    assert all(line.startswith(f"{config}: ") for line in missing.stderr.splitlines())
    assert {v for v in variables if f"environment variable {v} is not set" in missing.stderr} == variables

    env.update({name: f"value-of-{name.lower()}" for name in variables})
    unpinned = subprocess.run([sys.executable, "-m", "provisioner", "check", "-c", str(config)],
                              capture_output=True, text=True, env=env, timeout=120)
    # The shipped payload's checksums.sha256 pins nothing: check refuses it until the deployment pins a payload
    # (provisioner hyperexecute-pin), and says nothing else.
    lines = unpinned.stderr.splitlines()
    assert unpinned.returncode == 2 and len(lines) == 5, unpinned.stderr  # one line per pool
    assert all(": checksums.sha256 lacks checksums its setup needs for Taskcluster v87.0.0: " in line for line in lines)
    allowed = text.replace('state_dir = "/var/lib/provisioner"', f'state_dir = "{tmp_path / "state"}"')
    config.write_text(re.sub(r"^launch = \{", "launch = { allow_unpinned_downloads = true,", allowed, flags=re.M))
    ok = subprocess.run([sys.executable, "-m", "provisioner", "check", "-c", str(config)],
                        capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "ok (5 pools" in ok.stdout  # production's five LambdaTest projects
    assert "value-of-" not in ok.stdout + ok.stderr
