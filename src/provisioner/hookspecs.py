"""The hooks a provisioner plugin may implement.

A plugin is a module (or any object) with functions marked ``@provisioner.hookimpl``, registered through
the entry point group ``provisioner``::

    # pyproject.toml of the plugin's distribution
    [project.entry-points.provisioner]
    mycloud = "provisioner_mycloud.plugin"

Role hooks return the implementations the plugin offers (``RoleSpec``: a name, a factory and the options
it accepts). Pools name them in the config. Event hooks are called by the loop; an observer plugin
(metrics, alerting, error reporting) implements only those. A plugin implements any subset.

A plugin imports only what ``provisioner`` exports (``provisioner.__all__``) and tests itself with
``provisioner.testing``; docs/writing-a-plugin.md walks through one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pluggy

from .model import Launch, LaunchResult
from .types import RoleSpec

PROJECT = "provisioner"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class ProvisionerSpecs:
    @hookspec
    def provisioner_queue_sources(self) -> Iterable[RoleSpec]:
        """Queue sources this plugin offers.

        The factory's object implements ``provisioner.QueueSource``. Example::

            @hookimpl
            def provisioner_queue_sources():
                yield RoleSpec(
                    name="taskcluster",
                    factory=TaskclusterQueues,
                    options={"root_url": Option(str, "https://firefox-ci-tc.services.mozilla.com")},
                )
        """

    @hookspec
    def provisioner_device_providers(self) -> Iterable[RoleSpec]:
        """Device providers this plugin offers.

        The factory's object implements ``provisioner.DeviceProvider``. Example::

            @hookimpl
            def provisioner_device_providers():
                yield RoleSpec(name="rack", factory=UsbRack, options={"adb": Option(str, "adb")})
        """

    @hookspec
    def provisioner_job_launchers(self) -> Iterable[RoleSpec]:
        """Job launchers this plugin offers.

        The factory's object implements ``provisioner.JobLauncher``; ``pool_options`` declares the
        keys a pool's ``launch`` table may hold for it. Example::

            @hookimpl
            def provisioner_job_launchers():
                yield RoleSpec(
                    name="hyperexecute",
                    factory=HyperExecuteLauncher,
                    pool_options={"payload": Option(str, help="payload directory or git URL")},
                )
        """

    @hookspec
    def provisioner_observers(self) -> Iterable[RoleSpec]:
        """Observers that take options from their own ``[plugins.<name>]`` table (metrics, alerting).

        The factory gets the validated table and returns an object with ``@hookimpl`` event methods, which the
        host registers, or None to stay off. It must not bind ports or connect: do that at the first event.
        Example::

            @hookimpl
            def provisioner_observers():
                yield RoleSpec("metrics", lambda o, c: Metrics(o["port"]) if o["port"] else None,
                               options={"port": Option(int, 0, "0: off")})
        """

    @hookspec
    def provisioner_commands(self) -> Iterable[Any]:
        """Extra ``provisioner`` subcommands (``click.Command`` objects), e.g. a launcher's maintenance task.

        A name already taken by a built-in command is ignored. Example::

            @hookimpl
            def provisioner_commands():
                @click.command("hyperexecute-update")
                @click.option("-c", "--config", required=True)
                def update(config):
                    ...
                return [update]
        """

    @hookspec
    def provisioner_config_importers(self) -> Iterable[Any]:
        """:class:`provisioner.ConfigImporter` objects: formats of other tools' configuration that
        ``provisioner import-devicepool FILE`` turns into a config.toml. Example::

            @hookimpl
            def provisioner_config_importers():
                yield ConfigImporter("devicepool-lambdatest", "mozilla-bitbar-devicepool's lambdatest.yml",
                                     accepts=lambda doc: isinstance(doc, dict) and "projects" in doc,
                                     convert=convert_lambdatest)
        """

    @hookspec
    def provisioner_cycle(self, report: Any) -> None:
        """A cycle was observed and planned (called before its launches are submitted).

        ``report`` is a ``provisioner.loop.CycleReport``: cycle number, time, the plan with one decision
        per pool, what was unknown, and how long observing and planning took. Example::

            @hookimpl
            def provisioner_cycle(report):
                for d in report.plan.decisions:
                    PENDING.labels(d.pool).set(d.pending or 0)
        """

    @hookspec
    def provisioner_launch_submitted(self, launch: Launch, result: LaunchResult) -> None:
        """A launch was submitted and the launcher reported success (``result.job_id`` names the job)."""

    @hookspec
    def provisioner_launch_failed(self, launch: Launch, result: LaunchResult) -> None:
        """A submission failed; ``result.detail`` says why (secrets redacted)."""

    @hookspec
    def provisioner_launch_running(self, launch: Launch) -> None:
        """A launch's job was first seen running; ``launch.updated_at`` is when it was seen."""

    @hookspec
    def provisioner_launch_ended(self, launch: Launch) -> None:
        """A launch left flight: its job ended (``launch.outcome``), or it was never seen starting in time."""
