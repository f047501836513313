"""``POST runs``: the body mbd sends (held to the cassettes by the ``launch_body`` matcher), one POST per launch,
never retried once it may have reached the server, the known 404s looked up again and retried once only with
other ids; the token never in a result, a log line or a rendered dry run."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
import requests

from provisioner import LaunchRequest, PluginContext
from provisioner_bitbar import Bitbar
from provisioner_bitbar.launcher import body
from provisioner_bitbar.options import POOL_OPTIONS, filled

from bb_support import SECRETS, TOKEN, Refused, group_pool, pool


def request(udid: str = "a55-33", target: Any = None) -> LaunchRequest:
    target = target or (pool() if udid else group_pool())
    return LaunchRequest("l-1", target, udid, ("provisioner", target.name, udid))


def posts(cassette: Any) -> int:
    return sum(n for i, n in cassette.play_counts.items() if cassette.requests[i].method == "POST")


def clean(*texts: str) -> None:
    for secret in SECRETS:
        assert all(secret not in text for text in texts)


def test_the_body_is_mbds() -> None:
    launch = filled(POOL_OPTIONS, pool().launch)
    sent = body(request(), launch, None, "https://mozilla-v3.bitbar.com", TOKEN, "provisioner-")
    # mbd runs.run_test_for_project (facts §2b) plus testRunName (our labels)
    assert sent["osType"] == "ANDROID" and sent["scheduler"] == "SINGLE" and sent["timeout"] == 0
    assert [f["action"] for f in sent["files"]] == ["RUN_TEST", "INSTALL"]
    assert "deviceIds" not in sent  # the phone's own group pins the run
    assert sent["testRunName"] == "provisioner,bb-a55-perf,a55-33"
    assert sent["testRunParameters"] == [
        {"key": "bitbar_cloud_url", "value": "https://mozilla-v3.bitbar.com"},
        {"key": "DOCKER_IMAGE_VERSION", "value": "20250304T123621"},
        {"key": "TC_WORKER_CONF", "value": "gecko-t-ap"},
        {"key": "TASKCLUSTER_CLIENT_ID", "value": "project/autophone/gecko-t-bitbar-perf-a55"},
        {"key": "TC_WORKER_TYPE", "value": "gecko-t-bitbar-gw-perf-a55"},
        {"key": "TASKCLUSTER_ACCESS_TOKEN", "value": TOKEN},
    ]
    assert sent["deviceGroupId"] == "<id of group provisioner-a55-33>"


def test_worker_type_defaults_to_the_queues_name() -> None:
    launch = filled(POOL_OPTIONS, {**pool().launch, "worker_type": ""})
    sent = body(request(), launch, None, "u", TOKEN, "p-")
    assert {"key": "TC_WORKER_TYPE", "value": "gecko-t-bitbar-gw-perf-a55"} in sent["testRunParameters"]


@pytest.mark.vcr("launch_ok.yaml")
def test_a_pinned_launch_runs_on_the_phones_group(context: PluginContext, vcr: Any, logs: list[str]) -> None:
    result = Bitbar({}, context).launch(request())
    assert (result.ok, result.job_id, result.url) == (True, "9001",
                                                      "https://mozilla-v3.bitbar.com/#testing/test-run/501/9001")
    assert posts(vcr) == 1
    clean(*logs)


@pytest.mark.vcr("launch_ok.yaml")
def test_a_group_launch_runs_on_the_pools_group(context: PluginContext, vcr: Any) -> None:
    result = Bitbar({}, context).launch(request(""))
    assert (result.ok, result.job_id) == (True, "9002")  # the matcher held deviceGroupId to 603 (a55-perf)


def test_a_group_launch_needs_a_device_group(context: PluginContext) -> None:
    result = Bitbar({}, context).launch(request("", pool()))
    assert not result.ok and "launch.device_group" in result.detail


@pytest.mark.vcr("launch_ok.yaml")
def test_the_matcher_holds_the_body(context: PluginContext) -> None:
    from vcr.errors import CannotOverwriteExistingCassetteException

    with pytest.raises(CannotOverwriteExistingCassetteException):
        Bitbar({}, context).launch(request(target=pool(worker_conf="other")))


@pytest.mark.vcr("launch_404_file_then_ok.yaml")
def test_an_archived_file_is_looked_up_again_and_sent_once_more(context: PluginContext, vcr: Any,
                                                                 logs: list[str]) -> None:
    result = Bitbar({}, context).launch(request())
    assert (result.ok, result.job_id) == (True, "9001")
    assert posts(vcr) == 2 and vcr.all_played  # the second body names file 712
    clean(*logs)


@pytest.mark.vcr("launch_404_file_same_ids.yaml")
def test_an_archived_file_with_no_new_copy_fails_after_one_post(context: PluginContext, vcr: Any) -> None:
    result = Bitbar({}, context).launch(request())
    assert not result.ok and "FileEntity with id 711 does not exist" in result.detail and "same" in result.detail
    assert posts(vcr) == 1 and vcr.all_played


@pytest.mark.vcr("launch_404_group.yaml")
def test_another_404_is_not_retried(context: PluginContext, vcr: Any) -> None:
    result = Bitbar({}, context).launch(request())
    assert not result.ok and "HTTP 404" in result.detail and posts(vcr) == 1


@pytest.mark.parametrize("words", [
    pytest.param("HTTP 400: Invalid testRunParameters", marks=pytest.mark.vcr("launch_400.yaml")),
    pytest.param("HTTP 401 (the API key was refused)", marks=pytest.mark.vcr("launch_401.yaml")),
    pytest.param("HTTP 500", marks=pytest.mark.vcr("launch_500.yaml")),
    pytest.param("without a run id; a run may have started", marks=pytest.mark.vcr("launch_no_id.yaml")),
])
def test_a_refusal_or_an_unclear_answer_is_one_failure(context: PluginContext, vcr: Any, words: str) -> None:
    result = Bitbar({}, context).launch(request())
    assert not result.ok and words in result.detail and "\n" not in result.detail
    assert posts(vcr) == 1 and vcr.all_played  # sent once, never again
    clean(result.detail)


def test_an_answer_echoing_a_secret_is_redacted() -> None:
    from provisioner_bitbar.api import Answer
    from provisioner_bitbar.launcher import _detail

    detail = _detail(Answer(400, {"message": f"bad parameter TASKCLUSTER_ACCESS_TOKEN={TOKEN} for key {SECRETS[0]}"}),
                     list(SECRETS))
    assert detail.startswith("POST runs: HTTP 400: bad parameter") and "\n" not in detail
    clean(detail)


class TimesOutAfterSending(requests.adapters.HTTPAdapter):
    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner, self.posts = inner, 0

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if request.method == "POST":
            self.posts += 1
            raise requests.ReadTimeout("read timed out")
        return self.inner.send(request, **kwargs)


@pytest.mark.vcr("launch_ok.yaml")
def test_a_post_that_timed_out_is_never_sent_again(context: PluginContext) -> None:
    bitbar = Bitbar({}, context)
    adapter = TimesOutAfterSending(bitbar.api.session.get_adapter("https://"))
    bitbar.api.session.mount("https://", adapter)
    result = bitbar.launch(request())
    assert not result.ok and "may have reached the server" in result.detail and adapter.posts == 1


def test_a_refused_connection_is_a_failure(context: PluginContext) -> None:
    bitbar = Bitbar({"retries": 0}, context)
    bitbar.api.session.mount("https://", Refused())
    result = bitbar.launch(request())
    assert not result.ok and "connection failed" in result.detail


@pytest.mark.vcr("launch_wrong_group.yaml")
def test_a_phone_group_holding_other_phones_gets_no_launch(context: PluginContext, vcr: Any) -> None:
    result = Bitbar({}, context).launch(request("a55-35"))  # group provisioner-a55-35 holds a55-35 and a55-52
    assert not result.ok and "holds a55-35, a55-52 instead of only a55-35" in result.detail and posts(vcr) == 0


def test_no_token_no_launch(tmp_path) -> None:
    from bb_support import bb_context

    bitbar = Bitbar({}, bb_context(tmp_path, environ={"TESTDROID_APIKEY": "k" * 20}))
    result = bitbar.launch(request())
    assert not result.ok and result.detail == "environment variable gecko_t_bitbar_gw_perf_a55 is not set"


def test_render_masks_the_token_and_calls_nothing(context: PluginContext) -> None:
    text = Bitbar({}, context).render(replace(request(), dry_run=True))  # no cassette: a call would fail
    assert text.startswith("POST https://mozilla-v3.bitbar.com/api/v2/runs\n")
    sent = json.loads(text.split("\n", 1)[1])
    assert {"key": "TASKCLUSTER_ACCESS_TOKEN", "value": "***"} in sent["testRunParameters"]
    clean(text)


@pytest.mark.vcr("launch_ok.yaml")
def test_render_after_a_look_up_shows_the_ids(context: PluginContext) -> None:
    bitbar = Bitbar({}, context)
    assert bitbar.launch(request()).ok
    sent = json.loads(bitbar.render(request("")).split("\n", 1)[1])
    assert (sent["projectId"], sent["deviceGroupId"], sent["files"][0]["id"]) == (502, 603, 711)
