"""The module behind the ``lambdatest`` entry point of the ``provisioner`` group."""

from __future__ import annotations

from collections.abc import Iterable

from provisioner import RoleSpec, hookimpl

from .devices import LambdaTestDevices
from .launcher import HyperExecuteLauncher
from .options import LAUNCHER_OPTIONS, POOL_OPTIONS, PROVIDER_OPTIONS


@hookimpl
def provisioner_device_providers() -> Iterable[RoleSpec]:
    yield RoleSpec(
        name="lambdatest",
        factory=LambdaTestDevices,
        options=PROVIDER_OPTIONS,
        description="phones of a LambdaTest private real-device cloud, and our HyperExecute jobs",
    )


@hookimpl
def provisioner_job_launchers() -> Iterable[RoleSpec]:
    yield RoleSpec(
        name="hyperexecute",
        factory=HyperExecuteLauncher,
        options=LAUNCHER_OPTIONS,
        pool_options=POOL_OPTIONS,
        description="one HyperExecute job per launch through the hyperexecute CLI",
    )


@hookimpl
def provisioner_commands() -> Iterable[object]:
    from .commands import hyperexecute_pin, hyperexecute_update

    return [hyperexecute_update, hyperexecute_pin]


@hookimpl
def provisioner_config_importers() -> Iterable[object]:
    from .devicepool import IMPORTER

    return [IMPORTER]
