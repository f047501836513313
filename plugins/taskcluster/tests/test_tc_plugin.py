"""Registration through the entry point, the factory and its options, and what the host makes of them."""

from __future__ import annotations

import textwrap
from importlib.metadata import entry_points

import pluggy
import pytest
import requests
from click.testing import CliRunner

from provisioner import Option, PluginContext, RoleSpec
from provisioner.clock import VirtualClock
from provisioner.hookspecs import PROJECT, ProvisionerSpecs
from provisioner.types import QueueSource
from provisioner_taskcluster import plugin, urls
from provisioner_taskcluster.settings import DEFAULT_ROOT_URL, OPTIONS, Settings
from provisioner_taskcluster.source import TaskclusterQueues
from provisioner_taskcluster.transport import insufficient_scopes, render_scopes, retry_after
from tc_helpers import Q1, make_response, unknown

COUNTS_URL = "https://tc.example.com/api/queue/v1/task-queues/proj-autophone%2Fgecko-t-lambda-perf-a55/counts"


def test_tc_entry_point_offers_the_taskcluster_queue_source():
    (ep,) = [ep for ep in entry_points(group=PROJECT) if ep.name == "taskcluster"]
    assert ep.value == "provisioner_taskcluster.plugin"
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(ProvisionerSpecs)
    pm.register(ep.load(), name="taskcluster")
    (spec,) = [s for group in pm.hook.provisioner_queue_sources() for s in group]
    assert isinstance(spec, RoleSpec) and spec.name == "taskcluster" and spec.options is OPTIONS
    assert pm.hook.provisioner_device_providers() == [] and pm.hook.provisioner_job_launchers() == []


def test_tc_options_are_documented_and_optional():
    for key, option in OPTIONS.items():
        assert isinstance(option, Option) and option.help and not option.required, key
    assert OPTIONS["client_id_env"].env and OPTIONS["access_token_env"].env
    assert OPTIONS["client_id_env"].default == "TASKCLUSTER_CLIENT_ID"
    assert OPTIONS["access_token_env"].default == "TASKCLUSTER_ACCESS_TOKEN"


def test_tc_factory_builds_a_queue_source_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the factory touched the network")

    monkeypatch.setattr(requests.Session, "request", no_network)
    (spec,) = list(plugin.provisioner_queue_sources())
    context = PluginContext(clock=VirtualClock(), environ={})
    source = spec.factory({key: option.default for key, option in OPTIONS.items()}, context)
    assert isinstance(source, TaskclusterQueues) and isinstance(source, QueueSource)
    assert source.settings.root_url == DEFAULT_ROOT_URL and source.settings.credentials is None
    source.close()


@pytest.mark.parametrize("configured, environ, expected, origin", [
    ("https://tc.example.com/", {"TASKCLUSTER_ROOT_URL": "https://env.example.com"}, "https://tc.example.com",
     "config"),
    ("", {"TASKCLUSTER_ROOT_URL": "https://env.example.com/"}, "https://env.example.com", "TASKCLUSTER_ROOT_URL"),
    ("", {}, "https://firefox-ci-tc.services.mozilla.com", "default"),
])
def test_tc_root_url_from_config_then_environment_then_firefox_ci(configured, environ, expected, origin):
    settings = Settings.resolve({"root_url": configured}, environ)
    assert (settings.root_url, settings.root_url_source) == (expected, origin)


@pytest.mark.parametrize("key, value", [
    ("connect_timeout", 0), ("read_timeout", -1), ("time_budget", 0), ("max_attempts", 0), ("max_pages", 0),
    ("backoff", -0.1), ("request_timeout", 0), ("request_timeout", 601), ("max_body_bytes", 1023),
    ("max_body_bytes", 2**40),
])
def test_tc_bad_numbers_are_refused_in_one_line(key, value):
    with pytest.raises(ValueError, match=f"^taskcluster: option {key} must be"):
        Settings.resolve({key: value}, {})


def test_tc_urls_without_the_official_client_method(monkeypatch):
    built = urls.Urls("https://tc.example.com")
    expected = [built.counts(Q1), built.counts_batch(), built.ping(), built.workers("p", "wt", "a+b/=")]
    monkeypatch.setattr(built._queue, "funcinfo", {})  # an old client that knows none of these
    assert [built.counts(Q1), built.counts_batch(), built.ping(), built.workers("p", "wt", "a+b/=")] == expected
    assert expected[0] == COUNTS_URL
    # path arguments quoted whole, the query urlencoded: what the official client's buildUrl does
    assert expected[3] == "https://tc.example.com/api/queue/v1/provisioners/p/worker-types/wt/workers" \
                          "?continuationToken=a%2Bb%2F%3D"
    assert built.workers("p", "wt", None).endswith("/workers")


def test_tc_quarantine_refresh_is_accepted_but_deprecated(make_source, tc_log):
    source = make_source(quarantine_refresh=120)
    assert tc_log == ["WARNING taskcluster: option quarantine_refresh is deprecated and ignored: "
                      "workers are read every cycle"]
    assert source.check([], network=False) == []  # a warning, not a config error
    tc_log.clear()
    make_source()
    assert tc_log == []


def test_tc_urls_when_the_client_fails_to_build(monkeypatch):
    built = urls.Urls("https://tc.example.com")

    def broken(*args, **kwargs):
        raise RuntimeError("incompatible")

    monkeypatch.setattr(built._queue, "buildUrl", broken)
    assert built.counts(Q1) == COUNTS_URL


def test_tc_scope_expressions_and_retry_after():
    assert render_scopes({"AllOf": ["a", {"AnyOf": ["b", "c"]}]}) == "a, one of (b | c)"
    with pytest.raises(ValueError):
        render_scopes({"Whatever": []})
    assert insufficient_scopes({"message": "no backticks"}) == "scopes not named in the response"
    assert insufficient_scopes({"message": "```\nnot json\n```"}) == "scopes not named in the response"
    assert insufficient_scopes("not a dict") == "scopes not named in the response"

    def response(value):
        r = requests.Response()
        if value is not None:
            r.headers["Retry-After"] = value
        return r

    assert [retry_after(response(v)) for v in ("7", "Wed, 21 Oct 2015 07:28:00 GMT", None, "-3")] == [7.0, 0, 0, 0]
    assert retry_after(None) == 0


def test_tc_403_without_taskcluster_body(make_source, stub_session, tc_log):
    session, _ = stub_session(lambda request: make_response(request, 403, "<html>Forbidden</html>"))
    unknown(lambda: make_source(session=session).counts([Q1]))
    assert tc_log[0].endswith("HTTP 403 Forbidden: missing scopes scopes not named in the response (anonymous)")


def test_tc_usable_by_name_in_a_host_config(tmp_path):
    """Through the real host: `provisioner check` builds the taskcluster queue source named by the pools."""
    from provisioner.cli import cli

    config = tmp_path / "config.toml"
    config.write_text(textwrap.dedent(f"""
        [provisioner]
        state_dir = "state"

        [defaults]
        queue_source = "taskcluster"
        device_provider = "sim"
        launcher = "sim"

        [pools.a55-perf]
        queue = "{Q1}"
        udids = ["SIM0001"]

        [plugins.taskcluster]
        root_url = "https://tc.example.com"
        time_budget = 10
        batch = false
    """))
    result = CliRunner().invoke(cli, ["check", "-c", str(config)], env={"PROVISIONER_PLUGINS": "taskcluster"})
    assert result.exit_code == 0, result.output

    config.write_text(config.read_text().replace("batch = false", "batch = false\nbogus = 1"))
    result = CliRunner().invoke(cli, ["check", "-c", str(config)], env={"PROVISIONER_PLUGINS": "taskcluster"})
    assert result.exit_code != 0 and "plugins.taskcluster.bogus" in result.output
