"""Reading ``adb devices -l``."""

from __future__ import annotations

import subprocess

from provisioner import Phone, PhoneState, RemoteError, name_problem


def parse_devices(text: str) -> list[Phone]:
    """The phones of ``adb devices -l``'s output: ``device`` is idle, any other state (offline, unauthorized,
    recovery, ...) unavailable; a serial that cannot be a UDID is skipped."""
    phones: dict[str, Phone] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or line.startswith(("List of devices", "*")):
            continue
        udid, state, extra = fields[0], fields[1], dict(f.split(":", 1) for f in fields[2:] if ":" in f)
        if name_problem(udid, "UDID") is not None:
            continue
        phones.setdefault(udid, Phone(
            udid, model=extra.get("model", "").replace("_", " "),
            state=PhoneState.IDLE if state == "device" else PhoneState.UNAVAILABLE, raw_state=state,
        ))
    return list(phones.values())


def list_devices(adb: str, timeout: float, env: dict[str, str]) -> list[Phone]:
    """The rack's phones; ``RemoteError`` when adb cannot tell (missing, failing, hung)."""
    try:
        done = subprocess.run([adb, "devices", "-l"], capture_output=True, text=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise RemoteError(f"adb devices: no answer in {timeout:g} s") from None
    except OSError as exc:
        raise RemoteError(f"adb devices: cannot run {adb}: {exc.strerror or type(exc).__name__}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise RemoteError(f"adb devices: exit status {done.returncode}: {last}")
    return parse_devices(done.stdout)
