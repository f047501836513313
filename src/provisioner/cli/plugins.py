"""``provisioner plugins``: what is installed, what it offers, its hooks, what failed to load, what conflicts."""

from __future__ import annotations

import json

import click

from ..manager import ROLES, plugin_manager
from .status import render


def _label(role: str) -> str:
    return "observer" if role == "events" else role.replace("_", " ")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List installed plugins: name, version, roles offered, hooks, status (load errors, conflicts)."""
    manager = plugin_manager()
    conflicts: dict[str, list[str]] = {}  # plugin -> its conflicts, one line each
    lines = []
    for role, name, holders in manager.conflicts():
        offers = manager.all_specs()[role][name]
        line = f"{_label(role)} {name!r} is offered by both " + " and ".join(f"{o.distribution} ({o.plugin})" for o in offers)
        lines.append(line)
        for plugin in holders:
            conflicts.setdefault(plugin, []).append(line)
    rows = [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "builtin": info.builtin,
            "roles": {role: sorted(names) for role, names in info.roles.items()},
            "kinds": info.kinds,
            "hooks": info.hooks,
            "error": info.error or None,
            "conflicts": conflicts.get(info.name, []),
        }
        for info in manager.infos
    ]
    if as_json:
        click.echo(json.dumps({"plugins": rows, "conflicts": lines}, indent=2))
        return
    table = []
    for r in rows:
        offers = [f"{_label(role)}: {', '.join(names)}" for role, names in r["roles"].items()]
        offers += [_label(kind) for kind in r["kinds"] if kind not in r["roles"] and (kind not in ROLES or r["error"])]
        status = f"error: {r['error']}" if r["error"] else ("built-in" if r["builtin"] else "ok")
        status = "; ".join([status] + [f"conflict: {c}" for c in r["conflicts"]])
        hooks = ", ".join(h.removeprefix("provisioner_") for h in r["hooks"])
        table.append((r["name"], r["distribution"], r["version"], "; ".join(offers) or "-", hooks or "-", status))
    for line in render(("PLUGIN", "DISTRIBUTION", "VERSION", "OFFERS", "HOOKS", "STATUS"), table):
        click.echo(line)
    for line in lines:
        click.echo(f"conflict: {line}: uninstall one")
