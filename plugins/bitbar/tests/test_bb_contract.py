"""The Bitbar plugin passes ``provisioner.testing``'s contract suites: as a device provider on the recorded
shapes, and as a launcher for a pinned pool and a group pool (a launch naming no phone)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner import PluginContext, Pool
from provisioner.testing import DeviceProviderContract, JobLauncherContract
from provisioner_bitbar import Bitbar

from bb_support import SECRETS, Refused, bb_context, group_pool, pool
from bb_shapes import NOW


@pytest.mark.vcr("provider_ok.yaml", allow_playback_repeats=True)
class TestBitbarProvider(DeviceProviderContract):
    expects_jobs = True

    def make_context(self, tmp_path: Path) -> PluginContext:
        return bb_context(tmp_path)

    def jobs_since(self, context: PluginContext) -> float:
        return NOW - 7200

    def make_provider(self, context: PluginContext) -> Bitbar:
        return Bitbar({}, context)

    def make_broken_provider(self, context: PluginContext) -> Bitbar:
        provider = Bitbar({}, context)
        provider.api.session.mount("https://", Refused())  # the network is down
        return provider


@pytest.mark.vcr("launch_ok.yaml", allow_playback_repeats=True)
class TestBitbarLauncher(JobLauncherContract):
    secrets = SECRETS

    def make_context(self, tmp_path: Path) -> PluginContext:
        return bb_context(tmp_path)

    def make_launcher(self, context: PluginContext) -> Bitbar:
        return Bitbar({}, context)

    def make_provider(self, context: PluginContext) -> Bitbar:
        return Bitbar({}, context)

    def make_failing_launcher(self, context: PluginContext) -> Bitbar:
        launcher = Bitbar({"retries": 0}, context)
        launcher.api.session.mount("https://", Refused())
        return launcher

    def make_pool(self, context: PluginContext, targeting: str) -> Pool | None:
        if targeting == "pinned":
            return pool(udids=("a55-33",))
        if targeting == "group":
            return group_pool()
        return None  # selector: not offered (a group pool names the phones the cloud picks from)
