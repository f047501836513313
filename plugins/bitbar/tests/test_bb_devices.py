"""Phones from ``admin/devices``: every ComplexState mapped (README's table), unknown words unavailable and logged
once, names the host cannot use skipped, and a list that fails or answers garbage is unknown (RemoteError)."""

from __future__ import annotations

import pytest

from provisioner import PhoneState, PluginContext, RemoteError
from provisioner_bitbar import Bitbar
from provisioner_bitbar.states import DEVICE_STATES, parse_phones, phone_state

from bb_support import APIKEY, bb_context
from bb_shapes import DEVICES, NOW

IDLE, BUSY, UNAVAILABLE = PhoneState.IDLE, PhoneState.BUSY, PhoneState.UNAVAILABLE


@pytest.mark.vcr("provider_ok.yaml")
def test_phone_states_follow_the_table(context: PluginContext) -> None:
    phones = {p.udid: p for p in Bitbar({}, context).phones()}
    assert {u: (p.state, p.raw_state) for u, p in phones.items() if u.startswith(("a55", "s24"))} == {
        "a55-33": (IDLE, "ONLINE_FREE"),
        "a55-34": (BUSY, "ONLINE_TESTING"),
        "a55-35": (BUSY, "ONLINE_CLEANING"),  # cleaning for 5 minutes: the reboot after a run
        "a55-52": (UNAVAILABLE, "ONLINE_DIRTY (stuck 180m)"),  # past stuck_seconds
        "a55-57": (UNAVAILABLE, "OFFLINE_FREE"),
        "a55-58": (UNAVAILABLE, "ONLINE_FREE locked"),
        "s24-01": (IDLE, "ONLINE_FREE"),
        "s24-02": (UNAVAILABLE, "OFFLINE_CLEANING"),
        "s24-03": (UNAVAILABLE, "disabled"),
        "s24-07": (UNAVAILABLE, "model has 2 devices"),  # a run on that model would not pin one phone
    }
    assert "Docker Builder" not in phones  # ignore_devices
    assert len(phones) == 6 + 10 + 4
    assert (phones["a55-33"].model, phones["a55-33"].os_version) == ("a55", "14")
    assert phones["pixel6-137"].model == "pixel6"


def test_every_complex_state_has_a_meaning() -> None:
    states = {f"{a}_{b}" for a in ("ONLINE", "OFFLINE") for b in ("FREE", "TESTING", "CLEANING", "DIRTY")}
    assert set(DEVICE_STATES) == states  # TDJ APIAdminDevice.ComplexState: 8 values
    for state in states:
        row = {"state": state, "enabled": True, "locked": False, "stateChangeTime": NOW * 1000}
        mapped, _ = phone_state(row, NOW, 1800)
        assert mapped is (IDLE if state == "ONLINE_FREE" else UNAVAILABLE if state.startswith("OFFLINE") else BUSY)


def test_a_row_that_does_not_say_it_is_unlocked_is_not_idle() -> None:
    assert phone_state({"state": "ONLINE_FREE", "enabled": True}, NOW, 1800)[0] is UNAVAILABLE


@pytest.mark.vcr("devices_odd.yaml", allow_playback_repeats=True)
def test_unknown_states_and_unusable_names(context: PluginContext, logs: list[str]) -> None:
    bitbar = Bitbar({}, context)
    phones = bitbar.phones()
    bitbar.phones()  # warned once, not every cycle
    assert [(p.udid, p.state, p.raw_state) for p in phones] == [("a55-90", UNAVAILABLE, "ONLINE_REBOOTING")]
    assert sum("unknown device state 'ONLINE_REBOOTING'" in line for line in logs) == 1
    assert sum("'Linux 777'" in line for line in logs) == 1


@pytest.mark.vcr("devices_5xx.yaml")
def test_a_failing_list_is_unknown_after_the_retries(context: PluginContext) -> None:
    with pytest.raises(RemoteError, match=r"GET admin/devices: HTTP 503 \(3 tries\)"):
        Bitbar({}, context).phones()
    assert context.clock.now() == NOW + 1 + 2  # the backoff waited on the host's clock


@pytest.mark.vcr("devices_not_json.yaml")
def test_garbage_is_unknown(context: PluginContext) -> None:
    with pytest.raises(RemoteError, match="not JSON"):
        Bitbar({}, context).phones()


@pytest.mark.vcr("devices_401.yaml")
def test_a_refused_key_names_its_variable_not_its_value(context: PluginContext) -> None:
    with pytest.raises(RemoteError) as raised:
        Bitbar({}, context).phones()
    assert "TESTDROID_APIKEY" in str(raised.value) and APIKEY not in str(raised.value)


def test_no_key_no_call(tmp_path) -> None:
    bitbar = Bitbar({}, bb_context(tmp_path, environ={}))
    with pytest.raises(RemoteError, match="TESTDROID_APIKEY is not set"):
        bitbar.phones()  # no cassette: any call would fail differently


def test_plain_http_off_loopback_is_never_called(context: PluginContext) -> None:
    bitbar = Bitbar({"url": "http://bitbar.example.com"}, context)
    with pytest.raises(RemoteError, match="plain http"):
        bitbar.phones()
    assert any("plain http" in line for line in bitbar.check([], network=False))


def test_parse_phones_drops_rows_without_a_name() -> None:
    rows = [{k: v for k, v in DEVICES[0].items() if k != "deviceModelName"}, DEVICES[1]]
    assert [p.udid for p in parse_phones(rows, NOW, 1800, [])] == ["a55-34"]
