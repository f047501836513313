"""The distribution's entry point and hooks, as the host finds them."""

from __future__ import annotations

from importlib.metadata import entry_points

import pluggy

from provisioner import Pool, Selector
from provisioner.hookspecs import PROJECT, ProvisionerSpecs
from provisioner.types import DeviceProvider, JobLauncher, PluginContext
from provisioner_lambdatest.options import POOL_OPTIONS, PROVIDER_OPTIONS
from provisioner_lambdatest.render import device_pattern, worker_ids
from provisioner import LaunchRequest


def test_the_entry_point_offers_both_roles(context: PluginContext) -> None:
    (entry,) = [ep for ep in entry_points(group="provisioner") if ep.name == "lambdatest"]
    assert entry.value == "provisioner_lambdatest.plugin"
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(ProvisionerSpecs)
    pm.register(entry.load(), name="lambdatest")
    (providers,) = [list(specs) for specs in pm.hook.provisioner_device_providers()]
    (launchers,) = [list(specs) for specs in pm.hook.provisioner_job_launchers()]
    assert [spec.name for spec in providers] == ["lambdatest"] and [spec.name for spec in launchers] == ["hyperexecute"]
    assert providers[0].options is PROVIDER_OPTIONS and launchers[0].pool_options is POOL_OPTIONS
    assert all(option.env for key, option in PROVIDER_OPTIONS.items() if key.endswith("_env"))
    # factories only take the validated options and the context, and touch no network
    assert isinstance(providers[0].factory({}, context), DeviceProvider)
    assert isinstance(launchers[0].factory({}, context), JobLauncher)


def test_device_patterns_and_worker_ids() -> None:
    pool = Pool(name="p", queue="proj-autophone/gecko-t-a55", queue_source="q", device_provider="d", launcher="l",
                selector=Selector("Pixel 8 (Pro)", ""), targeting="selector")
    request = LaunchRequest(launch_id="x", pool=pool, udid="", labels=("t", "p", ""))
    assert device_pattern(request) == r"Pixel 8 \(Pro\)-.*"
    assert worker_ids(pool.queue, "") == {
        "TC_WORKER_POOL_ID": "proj-autophone/gecko-t-a55", "TC_PROVISIONER_ID": "proj-autophone",
        "TC_WORKER_TYPE": "gecko-t-a55", "TC_WORKER_GROUP": "lambda",
    }


def test_no_cassette_holds_credentials() -> None:
    from lt_support import LT_KEY, LT_USER, REPO

    cassettes = sorted((REPO / "cassettes" / "lambdatest").glob("*.yaml"))
    assert len(cassettes) >= 10
    for cassette in cassettes:
        text = cassette.read_text()
        assert "authorization" not in text.lower() and LT_KEY not in text and LT_USER not in text, cassette.name
