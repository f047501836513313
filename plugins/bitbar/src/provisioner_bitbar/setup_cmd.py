"""``provisioner bitbar-setup -c FILE [--apply]``: what the config's Bitbar pools need on the server (their
projects, and a one-phone group per pinned phone), shown, and created only with ``--apply``. The daemon never
does this. It never edits or deletes what it finds: a group holding other phones is reported, not changed;
the framework and the files are reported, not made (frameworks are the vendor's: mbd README.bb.md).

Writes (mbd ``configuration.py``; facts §2a): ``POST users/{me}/projects`` (form ``name``, ``type``), then
``POST users/{me}/projects/{id}`` (``archivingStrategy``, ``archivingItemCount``); ``POST users/{me}/device-groups``
(``displayName``, ``osType=ANDROID``); ``POST device-groups/{id}/devices`` (``deviceIds[]``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from provisioner import ConfigError, Pool, RemoteError, plugin_options

from .api import NotSent
from .catalog import Catalog, Missing
from .cloud import Bitbar
from .launcher import pool_launch
from .options import OPTIONS
from .runs import project_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Step:
    text: str
    run: Callable[[], str] | None = None  # None: only reported (nothing this command may do about it)


def bitbar_pools(path: Path) -> list[Pool]:
    """The config's pools whose launcher is ``bitbar`` (the host's loader has already accepted the file)."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    defaults = raw.get("defaults", {})
    pools = []
    for name, table in raw.get("pools", {}).items():
        merged = {**defaults, **table, "launch": {**defaults.get("launch", {}), **table.get("launch", {})}}
        if merged.get("launcher") != "bitbar":
            continue
        udids = tuple(merged.get("udids", ())) + ((merged["udid"],) if "udid" in merged else ())
        pools.append(Pool(name, merged["queue"], "taskcluster", "bitbar", "bitbar", udids=udids,
                          targeting=merged.get("targeting", "pinned"), launch=merged["launch"]))
    return pools


def plan(bitbar: Bitbar, pools: Sequence[Pool], job_tag: str) -> list[Step]:
    """What the pools need on the server, in order; a step with ``run`` is one this command may take."""
    api, catalog = bitbar.api, bitbar.catalogs.get(stale=bitbar.catalogs.generation)[0]
    me = api.get("me").get("id")
    if not isinstance(me, int):
        raise RemoteError("GET me: no user id in the answer")
    devices = {row.get("displayName"): row.get("id") for row in api.rows("devices")}
    steps: list[Step] = []
    for pool in pools:
        launch = pool_launch(pool)
        project = project_name(job_tag, pool.name)
        if project not in catalog.projects:
            steps.append(Step(f"create project {project} (type {launch['project_type']}, archiving "
                              f"{launch['archiving_strategy']} {launch['archiving_item_count']})",
                              lambda p=project, lt=launch: _create_project(bitbar, me, p, lt)))
        for lookup in (lambda: catalog.framework_id(launch["framework"]),
                       lambda: catalog.file_id(launch["test_file"]), lambda: catalog.file_id(launch["application_file"])):
            try:
                lookup()
            except Missing as exc:
                steps.append(Step(f"pool {pool.name}: {exc}"))
        if pool.targeting == "group":
            if launch["device_group"] not in catalog.groups:
                steps.append(Step(f"pool {pool.name}: device group {launch['device_group']} not found: group mode "
                                  "uses an existing group (make it in Bitbar or keep it in mbd's sync)"))
            continue
        steps += [_phone_group(bitbar, catalog, me, udid, devices, pool.name) for udid in pool.udids]
    return [step for step in steps if step is not None]


def _phone_group(bitbar: Bitbar, catalog: Catalog, me: int, udid: str, devices: Mapping[Any, Any],
                 pool: str) -> Step | None:
    group = f"{bitbar.phone_prefix}{udid}"
    device = devices.get(udid)
    if not isinstance(device, int):
        return Step(f"pool {pool}: phone {udid} is not among the server's devices (GET devices)")
    if group in catalog.groups:
        members = catalog.group_members(bitbar.api, catalog.group_id(group))
        if members == [udid]:
            return None
        if members:
            return Step(f"pool {pool}: device group {group} holds {', '.join(members)}, not only {udid}: fix it by hand")
    elsewhere = [name for name, row in catalog.groups.items() if name != group
                 and udid in catalog.group_members(bitbar.api, row["id"])]
    if elsewhere:
        return Step(f"pool {pool}: phone {udid} is still in device group(s) {', '.join(elsewhere)}: remove it there "
                    "first (from mbd's YAML, then restart mbd) so that one tool runs it")
    verb = "add" if group in catalog.groups else "create device group"
    return Step(f"{verb} {group} holding only {udid} (device id {device})",
                lambda: _make_group(bitbar, catalog, me, group, device))


def _create_project(bitbar: Bitbar, me: int, name: str, launch: Mapping[str, Any]) -> str:
    made = _ok(bitbar.api.write("POST", f"users/{me}/projects", form={"name": name, "type": launch["project_type"]}))
    _ok(bitbar.api.write("POST", f"users/{me}/projects/{made['id']}", form={
        "name": name, "archivingStrategy": launch["archiving_strategy"],
        "archivingItemCount": launch["archiving_item_count"]}))
    return f"project {name}: id {made['id']}"


def _make_group(bitbar: Bitbar, catalog: Catalog, me: int, group: str, device: int) -> str:
    if group in catalog.groups:
        group_id = catalog.group_id(group)
    else:
        group_id = _ok(bitbar.api.write("POST", f"users/{me}/device-groups",
                                        form={"displayName": group, "osType": "ANDROID"}))["id"]
    _ok(bitbar.api.write("POST", f"device-groups/{group_id}/devices", form={"deviceIds[]": [device]}))
    return f"device group {group}: id {group_id}"


def _ok(answer: Any) -> dict[str, Any]:
    if not 200 <= answer.status < 300 or not isinstance(answer.body, dict) or not isinstance(answer.body.get("id"), int):
        message = answer.body.get("message") if isinstance(answer.body, dict) else ""
        raise RemoteError(f"HTTP {answer.status}: {' '.join(str(message or 'no id in the answer').split())[:200]}")
    return answer.body


@click.command("bitbar-setup")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The config file (TOML) with the Bitbar pools.")
@click.option("--apply", is_flag=True, help="Create what is missing (without it: only show it).")
def bitbar_setup(config_path: Path, apply: bool) -> None:
    """Show (and with --apply create) the Bitbar projects and one-phone groups the config's pools need."""
    try:
        options, context = plugin_options(config_path, "bitbar", OPTIONS)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(2)
    bitbar = Bitbar(options, context)
    try:
        steps = plan(bitbar, bitbar_pools(config_path), context.job_tag)
        if not steps:
            click.echo("bitbar-setup: the server holds everything the pools need")
        failed = False
        for step in steps:
            if step.run is None:
                click.echo(f"needs a hand: {step.text}")
                failed = True
            elif not apply:
                click.echo(f"would {step.text}")
            else:
                click.echo(f"done: {step.run()}")
        if steps and not apply and any(s.run for s in steps):
            click.echo("(nothing changed: run again with --apply)")
    except (RemoteError, NotSent) as exc:
        click.echo(f"bitbar-setup: {exc}", err=True)
        sys.exit(1)
    finally:
        bitbar.close()
    sys.exit(1 if failed else 0)
