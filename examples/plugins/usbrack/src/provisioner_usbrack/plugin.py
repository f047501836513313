"""The module behind the ``usbrack`` entry point of the ``provisioner`` group: one object is both the device
provider and the job launcher (the same factory for both roles, so the host builds it once)."""

from __future__ import annotations

from collections.abc import Iterator

from provisioner import Option, RoleSpec, hookimpl

from .rack import UsbRack

OPTIONS = {
    "adb": Option(str, "adb", "path of adb, or a name looked up on PATH"),
    "adb_timeout": Option((int, float), 10.0, "seconds one adb call may take", min=1, max=300),
    "worker": Option(list, help="the worker's command line; {udid}, {pool}, {queue} and {launch_id} are filled in"),
    "phones_file": Option(str, "", "only the UDIDs listed in this file (one a line; relative to the config)"),
    "stop_timeout": Option((int, float), 10.0, "seconds the workers get to exit when the daemon stops", min=0, max=600),
}


@hookimpl
def provisioner_device_providers() -> Iterator[RoleSpec]:
    yield RoleSpec("usbrack", UsbRack, OPTIONS, description="phones on a local USB rack (adb devices -l)")


@hookimpl
def provisioner_job_launchers() -> Iterator[RoleSpec]:
    yield RoleSpec("usbrack", UsbRack, OPTIONS, description="one local worker process per launch, supervised")
