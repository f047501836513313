"""``check(pools, network)``: what is wrong without the network, and with it every id the server lacks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from provisioner import PluginContext, Selector
from provisioner_bitbar import Bitbar

from bb_support import bb_context, group_pool, pool


def test_a_good_config_has_no_problem(context: PluginContext) -> None:
    assert Bitbar({}, context).check([pool(udids=("pixel6-137",)), group_pool()], network=False) == []


def test_offline_problems_one_line_each(tmp_path) -> None:
    bitbar = Bitbar({"url": "http://bitbar.example.com"}, bb_context(tmp_path, environ={}))
    odd = replace(pool("bb-odd", ("a55-33",), docker_image_version="latest", env={"TC_WORKER_TYPE": "x"}),
                  queue="proj-other/x", idle_timeout=None)
    selector = replace(pool("bb-sel", ()), selector=Selector(model="a55"), targeting="selector")
    no_group = pool("bb-grp", ("a55-34",), "group")
    problems = bitbar.check([pool(), odd, selector, no_group], network=True)  # network: not asked with problems
    assert problems == [
        "bitbar: url is plain http on bitbar.example.com: the API key would travel in clear text (use https or "
        "allow_http)",
        "bitbar: environment variable TESTDROID_APIKEY (apikey_env) is not set",
        "bitbar: pool bb-a55-perf: environment variable gecko_t_bitbar_gw_perf_a55 (launch.access_token_env) is not set",
        "bitbar: pool bb-odd: queue proj-other/x is not under proj-autophone/: the image's workers serve only "
        "proj-autophone/<TC_WORKER_TYPE>",
        "bitbar: pool bb-odd: set idle_timeout = 5400: the image's workers wait that long for a task "
        "(idleTimeoutSecs, fixed in the docker image)",
        "bitbar: pool bb-odd: launch.docker_image_version 'latest' is not of the form 20250304T123621",
        "bitbar: pool bb-odd: launch.env sets TC_WORKER_TYPE, which the launcher sets itself",
        "bitbar: pool bb-odd: environment variable gecko_t_bitbar_gw_perf_a55 (launch.access_token_env) is not set",
        "bitbar: phone a55-33 is in pools bb-a55-perf and bb-odd: a phone belongs to one pool (one group)",
        'bitbar: pool bb-sel: targeting "selector" is not offered: pin phones, or use targeting "group" with '
        "launch.device_group",
        "bitbar: pool bb-sel: environment variable gecko_t_bitbar_gw_perf_a55 (launch.access_token_env) is not set",
        'bitbar: pool bb-grp: targeting "group" needs launch.device_group',
        "bitbar: pool bb-grp: environment variable gecko_t_bitbar_gw_perf_a55 (launch.access_token_env) is not set",
        "bitbar: phone a55-34 is in pools bb-a55-perf and bb-grp: a phone belongs to one pool (one group)",
    ]


def test_a_launch_table_missing_a_key_is_one_line(context: PluginContext) -> None:
    broken = replace(pool(), launch={"client_id": "x"})
    assert Bitbar({}, context).check([broken], network=False) == [
        "bitbar: pool bb-a55-perf: pools.bb-a55-perf.launch.docker_image_version: missing (required)"]


@pytest.mark.vcr("provider_ok.yaml", "setup.yaml", allow_playback_repeats=True)
def test_network_check_names_every_id_it_cannot_resolve(context: PluginContext) -> None:
    a55 = pool(udids=("a55-33", "a55-35", "pixel6-137", "a55-99"))
    s24 = pool("bb-s24-perf", ("s24-01",), framework="mozilla-nope", test_file="gone.zip")
    group = pool("bb-a55-group", ("a55-57", "a55-58"), "group", device_group="a55-perf")
    assert Bitbar({}, context).check([a55, s24, group], network=True) == [
        "bitbar: pool bb-a55-perf: phone a55-99 is not among the server's devices",
        "bitbar: pool bb-a55-perf: device group provisioner-a55-35 holds a55-35, a55-52 instead of only a55-35: a "
        "run there would not be pinned (bitbar-setup shows the fix)",
        "bitbar: pool bb-a55-perf: device group provisioner-pixel6-137 not found (phone groups: provisioner "
        "bitbar-setup --apply)",
        "bitbar: pool bb-a55-perf: device group provisioner-a55-99 not found (phone groups: provisioner "
        "bitbar-setup --apply)",
        "bitbar: pool bb-s24-perf: project provisioner-bb-s24-perf not found (create it: provisioner bitbar-setup "
        "--apply)",
        "bitbar: pool bb-s24-perf: framework mozilla-nope not found (frameworks are made by the vendor in Bitbar's UI)",
        "bitbar: pool bb-s24-perf: file gone.zip not found (archived? upload it again)",
        "bitbar: pool bb-s24-perf: device group provisioner-s24-01 not found (phone groups: provisioner "
        "bitbar-setup --apply)",
        "bitbar: pool bb-a55-group: device group a55-perf holds a55-33, a55-34, a55-35, a55-52, a55-57, a55-58, "
        "the pool names a55-57, a55-58",
    ]


@pytest.mark.vcr("devices_401.yaml")
def test_network_check_reports_a_refused_key(context: PluginContext) -> None:
    problems = Bitbar({}, context).check([pool()], network=True)
    assert len(problems) == 1 and "HTTP 401" in problems[0] and "TESTDROID_APIKEY" in problems[0]
