"""What Bitbar's words mean to the host: a phone's state (``admin/devices``) and a run's state and ending
(``admin/runs`` and the run's device sessions). Pure functions; the tables are in the README.

Sources: TDJ ``APIAdminDevice.ComplexState`` and JS ``DeviceState`` (the 8 device states); TDJ ``APITestRun.State``
(WAITING, RUNNING, FINISHED: no outcome, no device); TDJ ``APIDeviceSession.State`` and ``ExcludeReason``
(SINGLE_MODE: "another device has started execution").
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from loguru import logger

from provisioner import JobState, Phone, PhoneState, name_problem

DEVICE_STATES = {
    "ONLINE_FREE": PhoneState.IDLE,
    "ONLINE_TESTING": PhoneState.BUSY,
    "ONLINE_CLEANING": PhoneState.BUSY,  # after a run the framework removes the container and reboots the phone
    "ONLINE_DIRTY": PhoneState.BUSY,
    "OFFLINE_FREE": PhoneState.UNAVAILABLE,
    "OFFLINE_TESTING": PhoneState.UNAVAILABLE,
    "OFFLINE_CLEANING": PhoneState.UNAVAILABLE,
    "OFFLINE_DIRTY": PhoneState.UNAVAILABLE,
}
CLEANUP_STATES = frozenset({"ONLINE_CLEANING", "ONLINE_DIRTY"})  # busy, unless stuck there (stuck_seconds)
LIVE_SESSION_STATES = frozenset({"WAITING", "RUNNING", "FINISHING"})  # TDJ isFinished() is false for these
ENDED_SESSION_STATES = frozenset({"SUCCEEDED", "FAILED", "ABORTED", "TIMEOUT", "WARNING"})

_seen: set[tuple[str, str]] = set()
_seen_lock = threading.Lock()


def once(kind: str, value: str, message: str) -> None:
    """Log ``message`` as a warning the first time ``(kind, value)`` shows up in this process."""
    with _seen_lock:
        if (kind, value) in _seen:
            return
        _seen.add((kind, value))
    logger.warning("bitbar: {}", message)


def epoch_ms(value: Any) -> float | None:
    """Seconds since the epoch of Bitbar's epoch milliseconds, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return float(value) / 1000.0


def model_of(name: str) -> str:
    """A phone's model from its name: ``a55-33`` -> ``a55`` (mbd's ``device_model`` is this prefix)."""
    return name.rsplit("-", 1)[0] if "-" in name else name


def parse_phones(rows: Iterable[Mapping[str, Any]], now: float, stuck_seconds: float,
                 ignore: Iterable[str]) -> list[Phone]:
    """The phones of ``admin/devices`` rows. A phone is named by ``deviceModelName`` (on Mozilla's clouds every
    phone is its own model named like its label, ``a55-33``, which is also the worker's id: facts §3, §4).
    A name two devices share makes both unavailable: a run on that model would not pin a phone."""
    ignored = set(ignore)
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        name = row.get("deviceModelName")
        if not isinstance(name, str) or name in ignored:
            continue
        if name_problem(name, "phone name"):
            once("name", name, f"device {name[:80]!r} has a name the host cannot use as a UDID; skipped")
            continue
        by_name.setdefault(name, []).append(row)
    phones = []
    for name, rows_of in by_name.items():
        if len(rows_of) > 1:
            phones.append(Phone(name, model_of(name), "", PhoneState.UNAVAILABLE, f"model has {len(rows_of)} devices"))
            continue
        state, raw = phone_state(rows_of[0], now, stuck_seconds)
        version = rows_of[0].get("softwareVersion")
        release = version.get("releaseVersion") if isinstance(version, dict) else ""
        phones.append(Phone(name, model_of(name), str(release or ""), state, raw))
    return phones


def phone_state(row: Mapping[str, Any], now: float, stuck_seconds: float) -> tuple[PhoneState, str]:
    """The host's state of one admin device, and the word logged for it."""
    raw = str(row.get("state") or "")
    if row.get("enabled") is False:
        return PhoneState.UNAVAILABLE, "disabled"
    state = DEVICE_STATES.get(raw)
    if state is None:
        once("device-state", raw, f"unknown device state {raw[:40]!r}, taken as unavailable")
        return PhoneState.UNAVAILABLE, raw
    if state is PhoneState.IDLE and row.get("locked") is not False:
        return PhoneState.UNAVAILABLE, f"{raw} locked"  # locked, or a row that does not say
    if raw in CLEANUP_STATES:
        since = epoch_ms(row.get("stateChangeTime"))
        if since is not None and now - since > stuck_seconds:
            return PhoneState.UNAVAILABLE, f"{raw} (stuck {int((now - since) // 60)}m)"
    return state, raw


def run_state(row: Mapping[str, Any]) -> JobState:
    """A run's state from ``admin/runs``: ended once it has an end time (or says FINISHED)."""
    state = row.get("state")
    if epoch_ms(row.get("endTime")) is not None or state == "FINISHED":
        return JobState.ENDED
    if state == "WAITING":
        return JobState.STARTING
    if state == "RUNNING":
        return JobState.RUNNING
    once("run-state", str(state), f"unknown run state {str(state)[:40]!r}, taken as still starting or running")
    return JobState.RUNNING if epoch_ms(row.get("startTime")) is not None else JobState.STARTING


def session_facts(sessions: Iterable[Mapping[str, Any]]) -> tuple[str, str | None]:
    """``(phone, outcome)`` from a run's device sessions. With ``scheduler: SINGLE`` one session runs and the
    others end EXCLUDED (``SINGLE_MODE``). ``phone`` is "" until a session has started on a phone; ``outcome`` is
    None while a session is live, the final state in lower case once one has ended (``succeeded``, ``failed``,
    ...), ``excluded`` when every session was excluded (e.g. ``NO_DEVICE``), ``no_session`` for none."""
    sessions = [s for s in sessions if isinstance(s, Mapping)]
    chosen = [s for s in sessions if s.get("state") != "EXCLUDED"]
    for session in chosen:
        state = str(session.get("state") or "")
        device = session.get("device")
        name = device.get("displayName") if isinstance(device, Mapping) else None
        phone = name if isinstance(name, str) and not name_problem(name) and state != "WAITING" else ""
        if state in LIVE_SESSION_STATES:
            if state != "WAITING":
                return phone, None
            continue
        if state not in ENDED_SESSION_STATES:
            once("session-state", state, f"unknown device-session state {state[:40]!r}, taken as ended")
        return phone, state.lower() or "unknown"
    if any(s.get("state") == "WAITING" for s in chosen):
        return "", None
    return "", "excluded" if sessions else "no_session"
