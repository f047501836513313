"""The module behind the ``bitbar`` entry point of the ``provisioner`` group."""

from __future__ import annotations

from collections.abc import Iterable

from provisioner import ConfigImporter, RoleSpec, hookimpl

from .cloud import Bitbar
from .importer import accepts, convert
from .options import OPTIONS, POOL_OPTIONS


@hookimpl
def provisioner_device_providers() -> Iterable[RoleSpec]:
    yield RoleSpec(name="bitbar", factory=Bitbar, options=OPTIONS,
                   description="phones of a Bitbar private cloud (admin/devices) and the runs of our projects")


@hookimpl
def provisioner_job_launchers() -> Iterable[RoleSpec]:
    yield RoleSpec(name="bitbar", factory=Bitbar, options=OPTIONS, pool_options=POOL_OPTIONS,
                   description="one Bitbar test run (POST runs, scheduler SINGLE) per launch")


@hookimpl
def provisioner_commands() -> Iterable[object]:
    from .setup_cmd import bitbar_setup

    return [bitbar_setup]


@hookimpl
def provisioner_config_importers() -> Iterable[ConfigImporter]:
    yield ConfigImporter("devicepool-bitbar", "mozilla-bitbar-devicepool's Bitbar config (config-v3-server.yml)",
                         accepts=accepts, convert=convert)
