"""The ``provisioner`` command. Each subcommand lives in its own module."""

from __future__ import annotations

import click

from .. import __version__
from ..logs import setup
from .check import check
from .plugins import plugins
from .run import run


class PluginGroup(click.Group):
    """Built-in subcommands, plus those plugins add through ``provisioner_commands`` (loaded only when needed)."""

    _plugin_commands: dict[str, click.Command] | None = None

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Before any plugin is loaded (even for --help): a broken plugin's warning comes out in our one-line format.
        setup("WARNING")
        return super().parse_args(ctx, args)

    def plugin_commands(self) -> dict[str, click.Command]:
        if self._plugin_commands is None:
            from ..manager import plugin_manager

            found: dict[str, click.Command] = {}
            for commands in plugin_manager().hook.provisioner_commands():
                for command in commands or ():
                    if isinstance(command, click.Command) and command.name and command.name not in self.commands:
                        found.setdefault(command.name, command)
            self._plugin_commands = found
        return self._plugin_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.plugin_commands()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) or self.plugin_commands().get(name)


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="provisioner")
def cli() -> None:
    """Keeps a fleet of real phones in a device cloud busy with CI tasks."""


cli.add_command(run)
cli.add_command(check)
cli.add_command(plugins)
cli.add_command(__import__("provisioner.cli.status", fromlist=["status"]).status)  # issue 6
cli.add_command(__import__("provisioner.cli.report", fromlist=["report"]).report)  # issue 6
cli.add_command(__import__("provisioner.cli.phones", fromlist=["phones"]).phones)  # issue 6
cli.add_command(__import__("provisioner.cli.simulate", fromlist=["simulate"]).simulate)  # issue 5
cli.add_command(__import__("provisioner.cli.ledger", fromlist=["ledger_group"]).ledger_group)  # issue 13
cli.add_command(__import__("provisioner.cli.importer", fromlist=["import_devicepool"]).import_devicepool)  # issue 19


def main() -> None:
    cli()
