"""The LambdaTest device provider and the HyperExecute launcher pass ``provisioner.testing``'s contract suites:
the provider replaying the reference cassettes, the launcher running the fake ``hyperexecute`` CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from provisioner import PluginContext, Pool, Selector, VirtualClock
from provisioner.testing import DeviceProviderContract, JobLauncherContract, make_context
from provisioner_lambdatest import HyperExecuteLauncher
from provisioner_lambdatest.devices import LambdaTestDevices, epoch

from lt_support import ENVIRON, NOW, SECRETS, FakeCli

UDID = "R5CXC1HZK0W"
POOL_LAUNCH = {"client_id_env": "TC_CLIENT_A55", "access_token_env": "TC_TOKEN_A55"}


def lt_context(tmp_path: Path) -> PluginContext:
    return make_context(tmp_path, environ=ENVIRON, clock=VirtualClock(NOW), job_tag="tcdp")


class Refused(requests.adapters.BaseAdapter):
    """Every request: the connection is refused."""

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise requests.ConnectionError("connection refused")

    def close(self) -> None:
        pass


@pytest.mark.vcr("devices_ok.yaml", "jobs_two_pages.yaml")
class TestLambdaTestDevices(DeviceProviderContract):
    expects_jobs = True

    def make_context(self, tmp_path: Path) -> PluginContext:
        return lt_context(tmp_path)

    def jobs_since(self, context: PluginContext) -> float:
        return float(epoch("2025-05-09T00:00:00Z") or 0)

    def make_provider(self, context: PluginContext) -> LambdaTestDevices:
        return LambdaTestDevices({"jobs_page_size": 5}, context)

    def make_broken_provider(self, context: PluginContext) -> LambdaTestDevices:
        provider = LambdaTestDevices({"retries": 1}, context)
        provider._api.session.mount("https://", Refused())  # the network is down
        return provider


class TestHyperExecuteLauncher(JobLauncherContract):
    secrets = SECRETS

    @pytest.fixture(autouse=True)
    def _fake_cli(self, tmp_path: Path) -> None:
        self.fake = FakeCli(tmp_path / "bin", tmp_path / "state" / "hyperexecute-cli.lock")

    def make_context(self, tmp_path: Path) -> PluginContext:
        return lt_context(tmp_path)

    def make_launcher(self, context: PluginContext) -> HyperExecuteLauncher:
        return HyperExecuteLauncher({"cli": str(self.fake.path), "cli_timeout": 20}, context)

    def make_failing_launcher(self, context: PluginContext) -> HyperExecuteLauncher:
        self.fake.mode = "fail"
        return self.make_launcher(context)

    def make_pool(self, context: PluginContext, targeting: str) -> Pool | None:
        common = dict(name="a55-perf", queue="proj-autophone/gecko-t-lambda-perf-a55", queue_source="taskcluster",
                      device_provider="lambdatest", launcher="hyperexecute", launch=dict(POOL_LAUNCH))
        if targeting == "pinned":
            return Pool(udids=(UDID,), **common)
        if targeting == "group":
            return None  # check refuses targeting "group": a job names one phone or a selector
        return Pool(selector=Selector(model="Galaxy A55"), targeting="selector", **common)


def test_a_relative_payload_is_under_the_config_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from provisioner_lambdatest.payload import builtin_payload

    etc = tmp_path / "etc"
    shutil.copytree(builtin_payload(), etc / "payloads" / "a55")
    context = make_context(tmp_path, environ=ENVIRON, config_dir=etc, job_tag="tcdp")
    fake = FakeCli(tmp_path / "bin", context.state_dir / "hyperexecute-cli.lock")
    launcher = HyperExecuteLauncher({"cli": str(fake.path)}, context)
    monkeypatch.chdir("/")  # as under systemd
    common = dict(name="a55-perf", queue="proj-autophone/gecko-t-lambda-perf-a55", queue_source="taskcluster",
                  device_provider="lambdatest", launcher="hyperexecute", udids=(UDID,))
    good = Pool(launch={**POOL_LAUNCH, "payload": "payloads/a55"}, **common)
    missing = Pool(launch={**POOL_LAUNCH, "payload": "payloads/gone"}, **common)
    assert launcher.check([good], network=False) == []
    assert launcher.check([missing], network=False) == [f"pool a55-perf: payload {etc / 'payloads' / 'gone'}: not a directory"]
