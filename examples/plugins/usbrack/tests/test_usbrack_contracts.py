"""The usbrack plugin passes ``provisioner.testing``'s device provider and job launcher contracts, with a fake
adb and a fake worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner import PluginContext, Pool, Selector
from provisioner.testing import DeviceProviderContract, JobLauncherContract
from provisioner_usbrack import UsbRack

from usbrack_support import Rack


class RackFixture:
    @pytest.fixture(autouse=True)
    def _rack(self, tmp_path: Path) -> None:
        self.rack = Rack(tmp_path / "rack")

    def make_provider(self, context: PluginContext) -> UsbRack:
        # one object plays both roles, as the host builds it (one factory): the context keeps it
        return context.shared.setdefault("usbrack", UsbRack(self.rack.options(), context))


class TestUsbRackProvider(RackFixture, DeviceProviderContract):
    broken_methods = ("phones",)  # its jobs are its own processes: never unknown

    def make_broken_provider(self, context: PluginContext) -> UsbRack:
        self.rack.fail()
        return UsbRack(self.rack.options(), context)


class TestUsbRackLauncher(RackFixture, JobLauncherContract):
    def make_launcher(self, context: PluginContext) -> UsbRack:
        return self.make_provider(context)

    def make_failing_launcher(self, context: PluginContext) -> UsbRack:
        return UsbRack(self.rack.options(worker=[str(self.rack.dir / "no-such-worker")]), context)

    def make_pool(self, context: PluginContext, targeting: str) -> Pool | None:
        common = dict(name="a55", queue="proj/a55", queue_source="sim", device_provider="usbrack", launcher="usbrack")
        if targeting == "pinned":
            return Pool(udids=("R5CX10AAA02",), **common)
        if targeting == "selector":
            return Pool(selector=Selector(model="Pixel 6"), targeting="selector", **common)
        return None  # no other targeting (a rack has no device groups)
