"""The plugin object: device provider ``bitbar`` and launcher ``bitbar`` in one (one ``[plugins.bitbar]`` table,
one session, one id cache)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from provisioner import (
    ConfigError, LaunchRequest, LaunchResult, Phone, PluginContext, Pool, RemoteError, RemoteJob,
)

from .api import BitbarApi
from .catalog import Catalogs, Missing
from .launcher import Launches, pool_launch
from .options import IMAGE_IDLE_TIMEOUT, OPTIONS, OWN_PARAMETERS, QUEUE_PREFIX, filled, problem_text
from .runs import RunReader, project_name
from .states import parse_phones

IMAGE_VERSION = re.compile(r"^\d{8}T\d{6}$")  # mbd's DOCKER_IMAGE_VERSION form, e.g. 20250304T123621


class Bitbar:
    """``DeviceProvider`` and ``JobLauncher`` for a Bitbar private cloud. Reads the network only when called
    (never in the factory); writes nothing but ``POST runs``."""

    def __init__(self, options: Mapping[str, Any], context: PluginContext) -> None:
        options = filled(OPTIONS, options)
        self._options = options
        self._context = context
        self.api = BitbarApi(options, context)
        self.catalogs = Catalogs(self.api, context, float(options["resolve_every"]))
        self.phone_prefix = options["phone_group_prefix"] or f"{context.job_tag}-"
        self._runs = RunReader(self.api, context, int(options["session_reads"]))
        self._launches = Launches(self.api, self.catalogs, options, self.phone_prefix)

    # -- device provider -----------------------------------------------------------------------
    def phones(self) -> list[Phone]:
        rows = self.api.rows("admin/devices", {"withDisabled": "true"})
        return parse_phones(rows, self._context.clock.now(), float(self._options["stuck_seconds"]),
                            self._options["ignore_devices"])

    def jobs(self, since: float) -> list[RemoteJob]:
        return self._runs.jobs(since)

    # -- launcher ------------------------------------------------------------------------------
    def launch(self, request: LaunchRequest) -> LaunchResult:
        return self._launches.launch(request, self._context.environ)

    def render(self, request: LaunchRequest) -> str:
        return self._launches.render(request)

    # -- host hooks ----------------------------------------------------------------------------
    def check(self, pools: Sequence[Pool], network: bool) -> list[str]:
        problems = [f"bitbar: {self.api.refused}"] if self.api.refused else []
        if not self._context.environ.get(self._options["apikey_env"]):
            problems.append(f"bitbar: environment variable {self._options['apikey_env']} (apikey_env) is not set")
        owner: dict[str, str] = {}
        for pool in pools:
            problems += [f"bitbar: pool {pool.name}: {p}" for p in self.pool_problems(pool)]
            for udid in pool.udids:
                if owner.setdefault(udid, pool.name) != pool.name:
                    problems.append(f"bitbar: phone {udid} is in pools {owner[udid]} and {pool.name}: "
                                    "a phone belongs to one pool (one group)")
        if network and not problems:
            problems += [f"bitbar: {p}" for p in self.network_problems(pools)]
        return problems

    def pool_problems(self, pool: Pool) -> list[str]:
        """What is wrong with a pool for this plugin, without the network."""
        if pool.launcher != "bitbar":
            return []
        try:
            launch = pool_launch(pool)
        except ConfigError as exc:
            return [problem_text(exc)]
        problems = []
        if not pool.queue.startswith(QUEUE_PREFIX):
            problems.append(f"queue {pool.queue} is not under {QUEUE_PREFIX}: the image's workers serve only "
                            "proj-autophone/<TC_WORKER_TYPE>")
        if pool.idle_timeout != IMAGE_IDLE_TIMEOUT:
            problems.append(f"set idle_timeout = {IMAGE_IDLE_TIMEOUT}: the image's workers wait that long for a "
                            "task (idleTimeoutSecs, fixed in the docker image)")
        if pool.targeting == "selector":
            problems.append('targeting "selector" is not offered: pin phones, or use targeting "group" with '
                            "launch.device_group")
        if pool.targeting == "group" and not launch["device_group"]:
            problems.append('targeting "group" needs launch.device_group')
        if not IMAGE_VERSION.match(launch["docker_image_version"]):
            problems.append(f"launch.docker_image_version {launch['docker_image_version'][:40]!r} is not of the "
                            "form 20250304T123621")
        problems += [f"launch.env sets {key}, which the launcher sets itself" for key in launch["env"]
                     if key in OWN_PARAMETERS]
        if not self._context.environ.get(launch["access_token_env"]):
            problems.append(f"environment variable {launch['access_token_env']} (launch.access_token_env) is not set")
        return problems

    def network_problems(self, pools: Sequence[Pool]) -> list[str]:
        """Every id the pools need that the server does not hold, one line each."""
        try:
            names = {phone.udid for phone in self.phones()}
            self.jobs(self._context.clock.now() - 3600)
            catalog, _ = self.catalogs.get(stale=self.catalogs.generation)
        except RemoteError as exc:
            return [str(exc)]
        problems = []
        for pool in pools:
            if pool.launcher != "bitbar":
                continue
            launch = pool_launch(pool)
            problems += [f"pool {pool.name}: phone {u} is not among the server's devices" for u in pool.udids
                         if u not in names]
            tag = self._context.job_tag
            lookups = [
                lambda: catalog.project_id(project_name(tag, pool.name)),
                lambda: catalog.framework_id(launch["framework"]),
                lambda: catalog.file_id(launch["test_file"]),
                lambda: catalog.file_id(launch["application_file"]),
            ]
            for udid in pool.udids if pool.targeting != "group" else ():
                request = LaunchRequest("check", pool, udid, (tag, pool.name, udid))
                lookups.append(lambda r=request: self._launches.target_group(catalog, r, launch))
            if pool.targeting == "group":
                lookups.append(lambda: catalog.group_id(launch["device_group"]))
            for lookup in lookups:
                try:
                    lookup()
                except (Missing, RemoteError) as exc:
                    problems.append(f"pool {pool.name}: {exc}")
            if pool.targeting == "group" and launch["device_group"] in catalog.groups:
                members = catalog.group_members(self.api, catalog.group_id(launch["device_group"]))
                if sorted(members) != sorted(pool.udids):
                    problems.append(f"pool {pool.name}: device group {launch['device_group']} holds "
                                    f"{', '.join(members) or 'no phone'}, the pool names {', '.join(pool.udids)}")
        return list(dict.fromkeys(problems))  # a missing framework or file is one line, not one per phone

    def close(self) -> None:
        self.api.close()
