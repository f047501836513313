"""The shipped alert rules (deploy/prometheus-alerts.yml) under the real ``promtool test rules``, on the series of
deploy/prometheus-alerts.test.yml: a Taskcluster outage (steady, and one cycle in two), a LambdaTest outage, a
pool starving with idle phones, a daemon that stopped cycling, a ledger that cannot be written.

promtool comes with Debian's ``prometheus`` package (2.42); ``.ci/run`` installs it. In CI (``CI`` or
``PROVISIONER_REQUIRE_PROMTOOL`` set) a missing promtool fails the test; on a developer machine it skips."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("PROVISIONER_REQUIRE_PROMTOOL") or os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail("promtool is missing (apt-get install prometheus): the alert rules must be tested in CI")
    pytest.skip("promtool is not installed (apt-get install prometheus)")


def test_alert_rules_are_valid():
    done = subprocess.run([promtool(), "check", "rules", str(DEPLOY / "prometheus-alerts.yml")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rules_fire_on_the_series_that_must_page():
    done = subprocess.run([promtool(), "test", "rules", "prometheus-alerts.test.yml"], cwd=DEPLOY,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_alert_rules_use_only_exported_metrics():
    import yaml
    from test_dashboard import exported, metric_names

    rules = yaml.safe_load((DEPLOY / "prometheus-alerts.yml").read_text())["groups"][0]["rules"]
    used = set().union(*(metric_names(rule["expr"]) for rule in rules)) - {"up"}  # Prometheus' own
    assert {"provisioner_unknown_reads", "provisioner_queue_pending_known", "provisioner_ledger_write_failing"} <= used
    assert used <= exported(), f"not exported by the observer: {sorted(used - exported())}"
