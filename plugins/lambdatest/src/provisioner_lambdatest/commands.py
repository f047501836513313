"""``provisioner hyperexecute-update``: the CLI's self-update, as an explicit step, never during a launch."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from provisioner import ConfigError, plugin_options

from .launcher import update_cli
from .options import LAUNCHER_OPTIONS


@click.command("hyperexecute-update")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The config file (TOML); its [plugins.hyperexecute] table names the CLI.")
def hyperexecute_update(config_path: Path) -> None:
    """Update the hyperexecute CLI in place, waiting until no launch is running it (a lock in the state dir)."""
    try:
        options, context = plugin_options(config_path, "hyperexecute", LAUNCHER_OPTIONS)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(2)
    ok, message = update_cli(options, context)
    click.echo(message, err=not ok)
    sys.exit(0 if ok else 1)


@click.command("hyperexecute-pin")
@click.option("--tc-version", required=True, help="Taskcluster release whose worker binaries to pin, e.g. 87.0.0.")
@click.option("--arch", default="amd64,arm64", show_default=True, help="Phone-host architectures, comma-separated.")
@click.option("--payload", "target", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write: new, empty, or a previous pin's output. Pools name it in `payload`.")
@click.option("--trust-on-first-use", is_flag=True,
              help="Also pin files with no publisher digest (robustcheckout.py, tooltool.py, the SDK zip) as downloaded.")
def hyperexecute_pin(tc_version: str, arch: str, target: Path, trust_on_first_use: bool) -> None:
    """Write a payload directory with every download's sha256: Taskcluster assets checked against GitHub's digests.

    Nothing is written when any file cannot be pinned. GITHUB_TOKEN, if set, is sent to api.github.com only."""
    import datetime
    import os

    from .downloads import ARCHES
    from .payload import builtin_payload
    from .pin import PinError, pin

    arches = tuple(dict.fromkeys(a.strip() for a in arch.split(",") if a.strip()))
    if not arches or any(a not in ARCHES for a in arches):
        click.echo(f"hyperexecute-pin: --arch {arch!r}: give one or more of {', '.join(ARCHES)}", err=True)
        sys.exit(2)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    try:
        pinned = pin(builtin_payload(), target, tc_version, arches, trust_on_first_use, os.environ, today)
    except (PinError, OSError, ValueError) as exc:
        click.echo(f"hyperexecute-pin: nothing written: {exc}", err=True)
        sys.exit(1)
    trusted = [p for p in pinned if not p.publisher]
    click.echo(f"pinned {len(pinned)} files into {target} ({len(pinned) - len(trusted)} by the publisher's digest, "
               f"{len(trusted)} on trust on first use)")
    for p in trusted:
        click.echo(f"review: {p.download.name} sha256 {p.sha256} from {p.download.url}")
