"""The ``provisioner`` command. Each subcommand lives in its own module."""

from __future__ import annotations

import click

from .. import __version__
from .check import check
from .plugins import plugins
from .run import run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="provisioner")
def cli() -> None:
    """Keeps a fleet of real phones in a device cloud busy with CI tasks."""


cli.add_command(run)
cli.add_command(check)
cli.add_command(plugins)


def main() -> None:
    cli()
