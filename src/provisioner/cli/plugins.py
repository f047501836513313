"""``provisioner plugins``: what is installed, what it offers, what failed to load."""

from __future__ import annotations

import json

import click

from ..manager import ROLES, plugin_manager


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List installed plugins: name, version, roles offered, hooks, load errors."""
    manager = plugin_manager()
    rows = [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "builtin": info.builtin,
            "roles": {role: sorted(names) for role, names in info.roles.items()},
            "hooks": info.hooks,
            "error": info.error or None,
        }
        for info in manager.infos
    ]
    duplicates = []
    for role in ROLES:
        for name, offers in manager.all_specs()[role].items():
            if len(offers) > 1:
                duplicates.append(
                    f"{role.replace('_', ' ')} {name!r} is offered by both "
                    + " and ".join(f"{o.distribution} ({o.plugin})" for o in offers)
                )
    if as_json:
        click.echo(json.dumps({"plugins": rows, "conflicts": duplicates}, indent=2))
        return
    table = [("PLUGIN", "DISTRIBUTION", "VERSION", "OFFERS", "STATUS")]
    for r in rows:
        offers = "; ".join(f"{role.replace('_', ' ')}: {', '.join(names)}" for role, names in r["roles"].items())
        if not offers and r["hooks"]:
            offers = "observer: " + ", ".join(h.removeprefix("provisioner_") for h in r["hooks"])
        status = f"error: {r['error']}" if r["error"] else ("built-in" if r["builtin"] else "ok")
        table.append((r["name"], r["distribution"], r["version"], offers or "-", status))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[4])
    for line in duplicates:
        click.echo(f"conflict: {line}", err=True)
