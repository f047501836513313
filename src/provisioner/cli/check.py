"""``provisioner check``: validate everything, start nothing."""

from __future__ import annotations

import click

from ..config import ConfigProblem
from ..logs import setup
from .common import config_option, fail, load_all


@click.command()
@config_option
@click.option("--network", is_flag=True, help="Also reach the remote services (a ping each).")
def check(config_path, network: bool) -> None:
    """Validate the config, the variables it names, the plugins and their prerequisites. Starts nothing.

    Exits 0 when all is well, or 2 with one line per problem: file, key path, reason.
    """
    setup("WARNING")
    loaded, problems = load_all(config_path)
    if loaded is None or problems:
        fail(problems)
    assert loaded is not None
    file = str(loaded.config.path)
    for role, name, obj in loaded.runtime.each():
        check_fn = getattr(obj, "check", None)
        if not callable(check_fn):
            continue
        pools = [p for p in loaded.runtime.pools if name in (p.queue_source, p.device_provider, p.launcher)]
        try:
            lines = list(check_fn(pools, network) or ())
        except Exception as exc:  # noqa: BLE001
            lines = [f"check failed: {type(exc).__name__}: {exc}".splitlines()[0]]
        problems += [ConfigProblem(file, f"plugins.{name}", line) for line in lines]
    loaded.runtime.close()
    if problems:
        fail(problems)
    pools = loaded.runtime.pools
    click.echo(f"{file}: ok ({len(pools)} pools, {sum(len(p.udids) for p in pools)} phones named by UDID)")
