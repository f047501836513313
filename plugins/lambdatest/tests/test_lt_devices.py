"""The device provider's phones(): the reference device list, state mapping, HTTP failures."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from provisioner import PhoneState, PluginContext, RemoteError
from provisioner_lambdatest.devices import LambdaTestDevices, parse_phones, phone_state
from provisioner_lambdatest.options import DEVICES_URL

from lt_support import LT_KEY, LT_USER


def provider(context: PluginContext, **options: Any) -> LambdaTestDevices:
    return LambdaTestDevices(options, context)


@pytest.mark.vcr("devices_ok.yaml")
def test_phones_from_the_reference_list(context: PluginContext) -> None:
    phones = provider(context).phones()
    assert len(phones) == 35
    states = [p.state for p in phones]
    assert states.count(PhoneState.IDLE) == 27
    assert states.count(PhoneState.BUSY) == 7
    assert states.count(PhoneState.UNAVAILABLE) == 1
    first = phones[0]
    assert (first.udid, first.model, first.os_version, first.raw_state) == ("RZ8NB0WJ47H", "Galaxy A51", "11", "active")
    faulty = next(p for p in phones if p.state is PhoneState.UNAVAILABLE)
    assert faulty.raw_state == "faulty"


def test_basic_auth_and_timeouts_are_sent(context: PluginContext, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class Answer:
        status_code = 200
        headers: dict[str, str] = {}

        @staticmethod
        def iter_content(size: int) -> Any:
            return iter([b'{"data": {"private_cloud_devices": []}}'])

        @staticmethod
        def close() -> None:
            pass

    def get(url: str, **kwargs: Any) -> Answer:
        seen.update(kwargs, url=url)
        return Answer()

    lt = provider(context, connect_timeout=3, read_timeout=7, devices_url="https://staging.example/devices")
    monkeypatch.setattr(lt._api.session, "get", get)
    assert lt.phones() == []
    assert seen["url"] == "https://staging.example/devices"
    assert seen["auth"] == (LT_USER, LT_KEY)
    assert seen["timeout"] == (3.0, 7.0)
    assert seen["stream"] is True and seen["allow_redirects"] is False  # body read capped; no redirect followed


@pytest.mark.vcr("devices_401.yaml")
def test_refused_credentials_say_so_in_one_line(context: PluginContext, logs: list[str]) -> None:
    with pytest.raises(RemoteError) as caught:
        provider(context).phones()
    message = str(caught.value)
    assert "credentials were refused" in message and "LT_USERNAME" in message and "LT_ACCESS_KEY" in message
    assert "\n" not in message and LT_KEY not in message and LT_USER not in message
    assert context.clock.now() == pytest.approx(1746763200.0)  # no retry on 401


@pytest.mark.vcr("devices_5xx.yaml")
def test_server_errors_are_retried_then_unknown(context: PluginContext, vcr: Any) -> None:
    with pytest.raises(RemoteError, match=r"privatecloud_devices: HTTP 503 \(3 tries\)"):
        provider(context).phones()
    assert vcr.play_count == 3
    assert context.clock.now() - 1746763200.0 == pytest.approx(1.0 + 2.0)  # backoff through the clock


@pytest.mark.vcr("devices_5xx.yaml", allow_playback_repeats=True)
def test_retries_stop_when_the_time_budget_is_spent(context: PluginContext, vcr: Any) -> None:
    start = context.clock.now()
    with pytest.raises(RemoteError, match=r"HTTP 503; no time left this cycle to try again"):
        provider(context, retries=10, retry_backoff=20, time_budget=50).phones()
    assert vcr.play_count == 2  # tried at 0 and 20 s; the next wait (40 s) would end past the budget
    assert context.clock.now() - start == pytest.approx(20.0)


@pytest.mark.vcr("devices_5xx_then_ok.yaml")
def test_a_retry_that_succeeds_gives_the_list(context: PluginContext, vcr: Any) -> None:
    phones = provider(context, retries=3).phones()
    assert len(phones) == 35 and vcr.play_count == 3
    assert context.clock.now() - 1746763200.0 == pytest.approx(1.0 + 7.0)  # Retry-After of the 429 honoured


@pytest.mark.vcr("devices_not_json.yaml")
def test_garbage_is_unknown(context: PluginContext) -> None:
    with pytest.raises(RemoteError, match="not JSON"):
        provider(context).phones()


@pytest.mark.parametrize(
    ("error", "reason"), [(requests.ReadTimeout, "timed out"), (requests.ConnectionError, "connection failed")]
)
def test_timeouts_and_connection_errors_are_retried(
    context: PluginContext, monkeypatch: pytest.MonkeyPatch, error: type[Exception], reason: str
) -> None:
    """vcrpy cannot replay a timeout: the session raises it here, as requests would."""
    calls = []

    def get(url: str, **kwargs: Any) -> None:
        calls.append(url)
        raise error("boom")

    lt = provider(context, retries=1, retry_backoff=0.5)
    monkeypatch.setattr(lt._api.session, "get", get)
    with pytest.raises(RemoteError, match=f"{reason} \\(2 tries\\)"):
        lt.phones()
    assert len(calls) == 2 and context.clock.now() - 1746763200.0 == pytest.approx(0.5)


def test_other_request_errors_are_unknown_at_once(context: PluginContext, monkeypatch: pytest.MonkeyPatch) -> None:
    lt = provider(context)

    def get(url: str, **kwargs: Any) -> None:
        raise requests.TooManyRedirects("loop")

    monkeypatch.setattr(lt._api.session, "get", get)
    with pytest.raises(RemoteError, match="TooManyRedirects"):
        lt.phones()


def test_unset_credentials_make_no_call(context: PluginContext) -> None:
    del context.environ["LT_ACCESS_KEY"]  # type: ignore[attr-defined]
    with pytest.raises(RemoteError, match="environment variable LT_ACCESS_KEY is not set"):
        provider(context).phones()


def test_unknown_states_are_unavailable_and_logged_once(logs: list[str]) -> None:
    body = {"data": {"private_cloud_devices": [
        {"udid": "A", "name": "Pixel 8", "fullOsVersion": "15", "status": "rebooting"},
        {"udid": "B", "name": "Pixel 8", "os_version": 15, "status": "rebooting"},
        {"udid": "C", "status": None},
        {"udid": "D", "status": "cleanup"},
        {"udid": "E", "status": "initiated"},
    ]}}
    for _ in range(3):  # three cycles
        phones = parse_phones(body, DEVICES_URL)
    assert [p.state for p in phones] == [PhoneState.UNAVAILABLE] * 3 + [PhoneState.BUSY] * 2
    assert phones[1].os_version == "15" and phones[0].raw_state == "rebooting"
    warnings = [line for line in logs if "unknown device state" in line]
    assert len(warnings) == 2  # 'rebooting' and '' once each, not per cycle
    assert phone_state("busy") is PhoneState.BUSY


def test_bad_device_entries_are_skipped_with_a_warning(logs: list[str]) -> None:
    body = {"data": {"private_cloud_devices": [{"name": "no udid"}, "junk", {"udid": "X", "status": "active"}]}}
    assert [p.udid for p in parse_phones(body, DEVICES_URL)] == ["X"]
    assert sum("has no udid" in line for line in logs) == 2


@pytest.mark.parametrize("body", [None, [], {"data": None}, {"data": {"private_cloud_devices": {}}}])
def test_an_answer_without_the_device_list_is_unknown(body: Any) -> None:
    with pytest.raises(RemoteError, match="no data.private_cloud_devices"):
        parse_phones(body, DEVICES_URL)


@pytest.mark.vcr("devices_401.yaml")
def test_check_reports_the_remote_problem(context: PluginContext) -> None:
    lt = provider(context, old_tool_retired=True)
    problems = lt.check([], network=True)
    assert len(problems) == 1 and "credentials were refused" in problems[0]
    lt.close()


def test_check_offline_reports_unset_variables_only(context: PluginContext) -> None:
    context.job_tag = "provisioner"
    assert provider(context).check([], network=False) == []
    context.environ = {}
    problems = provider(context, username_env="LT_USER_STAGING").check([], network=True)
    assert problems == [
        "lambdatest: environment variable LT_USER_STAGING (username_env) is not set",
        "lambdatest: environment variable LT_ACCESS_KEY (access_key_env) is not set",
    ]


def test_check_refuses_the_old_tools_tag_until_it_is_retired(context: PluginContext) -> None:
    """Two tools on one account must use different tags, or each counts the other's jobs as its own."""
    context.job_tag = "tcdp"
    (problem,) = provider(context).check([], network=False)
    assert problem.startswith("lambdatest: job_tag 'tcdp' is the old devicepool tool's") and "\n" not in problem
    assert "old_tool_retired = true" in problem
    assert provider(context, old_tool_retired=True).check([], network=False) == []
    context.job_tag = "provisioner"
    assert provider(context).check([], network=False) == []


BAD_UDIDS = [" ", "   ", "${{ .secrets.X }}", "R5CX\nINFO forged log line", "-rf", ".hidden", "a/b", "U" * 129, "é"]


def test_invalid_udids_are_skipped_with_one_escaped_warning_each(context: PluginContext, logs: list[str]) -> None:
    """Not 1..128 characters of [A-Za-z0-9._-], or starting with '-' or '.': never handed to the host."""
    good = ["R5CXC1HZK0W", "emulator-5554", "192.168.1.7_5555", "a.b", "U" * 128, "7"]
    body = {"data": {"private_cloud_devices": [{"udid": u, "status": "active"} for u in good + BAD_UDIDS]}}
    warned: set[str] = set()
    for _ in range(3):  # three cycles: one warning per udid, not per cycle
        assert [p.udid for p in parse_phones(body, DEVICES_URL, warned)] == good
    warnings = [line for line in logs if "invalid udid" in line]
    assert len(warnings) == len(BAD_UDIDS)
    assert all("\n" not in line.rstrip("\n") for line in warnings)  # repr: a newline cannot forge a log line
    assert any("'R5CX\\nINFO forged log line'" in line for line in warnings)
    assert any("'${{ .secrets.X }}'" in line for line in warnings)


def test_the_provider_warns_once_per_invalid_udid_across_cycles(
    context: PluginContext, monkeypatch: pytest.MonkeyPatch, logs: list[str]
) -> None:
    lt = provider(context)
    body = {"data": {"private_cloud_devices": [{"udid": "bad udid", "status": "active"}, {"udid": "OK1"}]}}
    monkeypatch.setattr(lt._api, "get_json", lambda url, **kwargs: body)
    for _ in range(2):
        assert [p.udid for p in lt.phones()] == ["OK1"]
    assert sum("invalid udid 'bad udid'" in line for line in logs) == 1
