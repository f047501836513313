"""The importer of the production tool's LambdaTest configuration, for ``provisioner import-devicepool FILE``.

The file is mozilla-bitbar-devicepool's ``config/lambdatest.yml``, read there by
``mozilla_bitbar_devicepool/configuration_lt.py``. What that code does with it, and what we carry over:

- ``projects.defaults`` fills each project's missing keys (``apply_dict_defaults``); the defaults' values ending in
  ``-set-me`` are placeholders. A project runs only when "fully configured": phones in the device group of its
  name, ``TC_WORKER_TYPE``, ``TASKCLUSTER_CLIENT_ID`` and ``USER_SCRIPTS_VERSION``. Each such project becomes a pool
  of the same name: queue ``proj-autophone/<TC_WORKER_TYPE>`` (production's worker-runner template sets
  ``workerPoolID: "proj-autophone/${TC_WORKER_TYPE}"``), ``priority``, ``disabled`` (no job starter runs for it).
- ``device_groups.<project>``: UDIDs as mapping keys (values are comments), a list, or one space-separated string;
  an empty group leaves the project without phones (production never runs it).
- The Taskcluster client id is not secret but config.toml names variables, not values; production reads the
  access token from the variable named by ``TC_WORKER_TYPE`` with ``-`` made ``_``. Each pool names
  ``TC_<POOL>_CLIENT_ID`` and ``TC_<POOL>_ACCESS_TOKEN`` and a line says what to put in them.
- ``global.contract_device_count``: production only divides busy phones by it in a log line. It becomes
  ``[provisioner] max_starting``: never more launches starting than phones under contract.
- LambdaTest credentials come from ``LT_USERNAME`` / ``LT_ACCESS_KEY`` in production too.

Anything else (``USER_SCRIPTS_VERSION``, ``priority_group``, unknown keys) gets one line saying why it is left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from provisioner import ConfigImporter, ImportResult, name_problem

PROVISIONER_ID = "proj-autophone"
PROJECT_KEYS = {"USER_SCRIPTS_VERSION", "TASKCLUSTER_CLIENT_ID", "TC_WORKER_TYPE", "disabled", "priority_group",
                "priority"}
PLACEHOLDER = "-set-me"
UDIDS_PER_LINE = 6


def accepts(document: Any) -> bool:
    """A lambdatest.yml: projects (with their keys at the top, not Bitbar's ``additional_parameters``) and device
    groups."""
    if not isinstance(document, Mapping) or not isinstance(document.get("projects"), Mapping):
        return False
    if "device_groups" not in document or not isinstance(document["device_groups"], (Mapping, type(None))):
        return False
    projects = [p for p in document["projects"].values() if isinstance(p, Mapping)]
    bitbar = any("additional_parameters" in p or "device_group_name" in p for p in projects)
    return not bitbar and any("TC_WORKER_TYPE" in p for p in projects)


def convert(document: Mapping[str, Any], source: str) -> ImportResult:
    lines: list[str] = []
    projects = document["projects"]
    groups = document.get("device_groups") or {}
    defaults = projects.get("defaults") if isinstance(projects.get("defaults"), Mapping) else {}
    for key in document:
        if key not in ("global", "projects", "device_groups"):
            lines.append(f"{key}: not read by production's LambdaTest runner; not carried over")
    contract, more = _global(document.get("global"))
    lines += more
    lines += [f"projects.defaults.{k}: unknown setting; not carried over" for k in defaults if k not in PROJECT_KEYS]
    if defaults.get("USER_SCRIPTS_VERSION"):
        lines.append(f"projects.defaults.USER_SCRIPTS_VERSION ({defaults['USER_SCRIPTS_VERSION']}): production's user "
                     f"scripts are not imported; pools run the lambdatest plugin's payload (pin one with "
                     f"`provisioner hyperexecute-pin`, name it in launch.payload)")
    if "priority_group" in defaults:
        lines.append("projects.*.priority_group: no equivalent (production's LambdaTest runner does not use it); "
                     "pools that share phones are served by priority")
    pools: list[str] = []
    for name, own in projects.items():
        if name == "defaults":
            continue
        project = {**defaults, **own} if isinstance(own, Mapping) else dict(defaults)
        pool, more = _pool(str(name), project, own if isinstance(own, Mapping) else {}, groups.get(name))
        lines += more
        if pool:
            pools.append(pool)
    for name in groups:
        if name not in projects:
            lines.append(f"device_groups.{name}: no project of that name ({len(_udids(groups[name]))} phones); "
                         f"not carried over")
    head = [f"# Imported by `provisioner import-devicepool` from {source} (mozilla-bitbar-devicepool's LambdaTest",
            "# configuration). Secrets stay in the environment: each *_env key names the variable that holds one.",
            ""]
    if contract is not None:
        head += ["[provisioner]",
                 f"max_starting = {contract}  # global.contract_device_count: no more launches starting than phones "
                 "under contract", ""]
    tail = ["[plugins.lambdatest]", 'username_env = "LT_USERNAME"', 'access_key_env = "LT_ACCESS_KEY"', "",
            "[plugins.hyperexecute]", 'username_env = "LT_USERNAME"', 'access_key_env = "LT_ACCESS_KEY"', ""]
    return ImportResult("\n".join(head + pools + tail), tuple(lines))


def _global(table: Any) -> tuple[int | None, list[str]]:
    if table is None:
        return None, []
    if not isinstance(table, Mapping):
        return None, ["global: not a mapping; not carried over"]
    lines = [f"global.{k}: unknown setting; not carried over" for k in table if k != "contract_device_count"]
    count = table.get("contract_device_count")
    if count is None:
        return None, lines
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 100_000:
        return None, lines + [f"global.contract_device_count: {count!r} is not a phone count; not carried over"]
    return count, lines


def _pool(name: str, project: Mapping[str, Any], own: Mapping[str, Any], group: Any) -> tuple[str, list[str]]:
    where = f"projects.{name}"
    lines = [f"{where}.{k}: unknown setting; not carried over" for k in own if k not in PROJECT_KEYS]
    udids = []
    for udid in _udids(group):
        if why := name_problem(udid, "UDID"):
            lines.append(f"device_groups.{name}: {why}; that phone is not carried over")
        else:
            udids.append(udid)
    worker_type, client_id = project.get("TC_WORKER_TYPE"), project.get("TASKCLUSTER_CLIENT_ID")
    missing = [what for what, ok in (
        ("phones in device_groups", udids), ("TC_WORKER_TYPE", _set(worker_type)),
        ("TASKCLUSTER_CLIENT_ID", _set(client_id)), ("USER_SCRIPTS_VERSION", project.get("USER_SCRIPTS_VERSION")),
    ) if not ok]
    if missing:
        return "", lines + [f"{where}: production never runs it (no {', '.join(missing)}); not carried over"]
    if why := name_problem(name, "pool name"):
        return "", lines + [f"{where}: {why}; not carried over"]
    if why := name_problem(str(worker_type), "worker type"):
        return "", lines + [f"{where}.TC_WORKER_TYPE: {why}; not carried over"]
    priority, disabled = project.get("priority", 0), project.get("disabled", False)
    if not isinstance(priority, int) or isinstance(priority, bool):
        lines.append(f"{where}.priority: {priority!r} is not a whole number; not carried over")
        priority = 0
    if not isinstance(disabled, bool):
        lines.append(f"{where}.disabled: {disabled!r} is not true or false; the pool is imported disabled")
        disabled = True
    if "USER_SCRIPTS_VERSION" in own:
        lines.append(f"{where}.USER_SCRIPTS_VERSION ({own['USER_SCRIPTS_VERSION']}): production's user scripts are "
                     f"not imported; the pool runs the lambdatest plugin's payload")
    variable = "TC_" + re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")
    lines.append(f"{where}: set {variable}_CLIENT_ID to {client_id} and {variable}_ACCESS_TOKEN to the token "
                 f"production reads from {str(worker_type).replace('-', '_')} (config.toml names variables, not "
                 f"values; the client id is not carried over as a value)")
    out = [f"[pools.{name}]", f"queue = {json.dumps(f'{PROVISIONER_ID}/{worker_type}')}", f"priority = {priority}"]
    if disabled:
        out.append("disabled = true")
    out.append("udids = [")
    for start in range(0, len(udids), UDIDS_PER_LINE):
        out.append("    " + " ".join(f"{json.dumps(u)}," for u in udids[start:start + UDIDS_PER_LINE]))
    launch = f'client_id_env = "{variable}_CLIENT_ID", access_token_env = "{variable}_ACCESS_TOKEN"'
    out += ["]", f"launch = {{ {launch} }}", ""]
    return "\n".join(out), lines


def _udids(group: Any) -> list[str]:
    """A device group's UDIDs in file order, without repeats (mapping keys, a list, or a space-separated string)."""
    if isinstance(group, str):
        group = group.split()
    if not isinstance(group, (Mapping, list)):
        return []
    return list(dict.fromkeys(str(u) for u in group if u is not None and str(u).strip()))


def _set(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and not value.endswith(PLACEHOLDER)


IMPORTER = ConfigImporter(
    "devicepool-lambdatest", "mozilla-bitbar-devicepool's config/lambdatest.yml (its LambdaTest projects)",
    accepts=accepts, convert=convert,
)
