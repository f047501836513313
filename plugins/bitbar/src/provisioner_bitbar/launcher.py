"""One launch = one ``POST runs`` (mbd ``runs.run_test_for_project``; facts §2b): ``scheduler: SINGLE`` on a
device group, the framework, the two files mbd sends, and the worker's settings as ``testRunParameters``.

Pinned (the request names a phone): the run goes to that phone's one-device group, so Bitbar can only start it
there (mbd's ``mozilla-gw-test-3`` ran this way for years). Group mode (the request names no phone): the run goes to
the pool's ``launch.device_group`` and Bitbar picks the phone.

The POST is sent once. It is repeated only after one of the two 404s mbd knows (an archived file, a missing
project: the server refused it, so no run started) and only when looking the ids up again gave other ids.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from loguru import logger

from provisioner import ConfigError, LaunchRequest, LaunchResult, Pool, RemoteError, redact

from .api import Answer, BitbarApi, NotSent
from .catalog import Catalog, Catalogs, Missing, Target
from .options import POOL_OPTIONS, filled, problem_text
from .runs import project_name

STALE_IDS = (re.compile(r"FileEntity with id \d* does not exist"), re.compile(r"Project with id \d* does not exist"))
MASK = "***"


def pool_launch(pool: Pool) -> dict[str, Any]:
    """The pool's launch table with defaults (the host fills them for the daemon; a request built by hand may not)."""
    return filled(POOL_OPTIONS, pool.launch, f"pools.{pool.name}.launch")


def worker_type(pool: Pool, launch: Mapping[str, Any]) -> str:
    return launch["worker_type"] or pool.queue.split("/", 1)[-1]


def group_name(request: LaunchRequest, launch: Mapping[str, Any], phone_prefix: str) -> str:
    """The device group a launch runs on: the phone's own group, or (naming no phone) the pool's group."""
    return f"{phone_prefix}{request.udid}" if request.udid else launch["device_group"]


def body(request: LaunchRequest, launch: Mapping[str, Any], ids: Target | None, url: str, token: str,
         phone_prefix: str) -> dict[str, Any]:
    """The JSON body of ``POST runs``; ``ids`` None renders placeholders (a dry run before any look-up)."""
    def ref(value: int | None, what: str) -> int | str:
        return value if value is not None else f"<id of {what}>"

    pool = request.pool
    parameters = {
        "bitbar_cloud_url": url,
        "DOCKER_IMAGE_VERSION": launch["docker_image_version"],
        "TC_WORKER_CONF": launch["worker_conf"],
        "TASKCLUSTER_CLIENT_ID": launch["client_id"],
        "TC_WORKER_TYPE": worker_type(pool, launch),
        **{str(k): str(v) for k, v in launch["env"].items()},
        "TASKCLUSTER_ACCESS_TOKEN": token,  # last: env never replaces it (check refuses such a key anyway)
    }
    return {
        "osType": "ANDROID",
        "projectId": ref(ids and ids.project_id, f"project {project_name(request.labels[0], pool.name)}"),
        "frameworkId": ref(ids and ids.framework_id, f"framework {launch['framework']}"),
        "scheduler": "SINGLE",
        "timeout": launch["timeout"],
        "deviceGroupId": ref(ids and ids.group_id, f"group {group_name(request, launch, phone_prefix)}"),
        "testRunName": ",".join(request.labels),
        "files": [
            {"id": ref(ids and ids.test_file_id, f"file {launch['test_file']}"), "action": "RUN_TEST"},
            {"id": ref(ids and ids.application_file_id, f"file {launch['application_file']}"), "action": "INSTALL"},
        ],
        "testRunParameters": [{"key": k, "value": v} for k, v in parameters.items()],
    }


class Launches:
    """``launch`` and ``render`` for the plugin object."""

    def __init__(self, api: BitbarApi, catalogs: Catalogs, options: Mapping[str, Any], phone_prefix: str) -> None:
        self._api = api
        self._catalogs = catalogs
        self._url: str = options["url"]
        self._key_env: str = options["apikey_env"]
        self._phone_prefix = phone_prefix

    def target(self, catalog: Catalog, request: LaunchRequest, launch: Mapping[str, Any],
               verify: bool = True) -> Target:
        """The ids of the launch; ``verify`` also reads a phone group's members (it must hold only that phone)."""
        group_id = self.target_group(catalog, request, launch, verify)
        return Target(
            catalog.project_id(project_name(request.labels[0], request.pool.name)),
            catalog.framework_id(launch["framework"]), group_id,
            catalog.file_id(launch["test_file"]), catalog.file_id(launch["application_file"]),
        )

    def target_group(self, catalog: Catalog, request: LaunchRequest, launch: Mapping[str, Any],
                     verify: bool = True) -> int:
        """The id of the launch's device group; a phone's own group must hold that phone only."""
        group = group_name(request, launch, self._phone_prefix)
        group_id = catalog.group_id(group)
        if request.udid and verify:
            members = catalog.group_members(self._api, group_id)
            if members != [request.udid]:
                raise Missing(f"device group {group} holds {', '.join(members[:3]) or 'no phone'} instead of only "
                              f"{request.udid}: a run there would not be pinned (bitbar-setup shows the fix)")
        return group_id

    def launch(self, request: LaunchRequest, environ: Mapping[str, str]) -> LaunchResult:
        try:
            launch = pool_launch(request.pool)
        except ConfigError as exc:
            return LaunchResult(False, detail=problem_text(exc))
        if not request.udid and not launch["device_group"]:
            return LaunchResult(False, detail=f"pool {request.pool.name}: a launch naming no phone needs "
                                              "launch.device_group (the group Bitbar picks the phone from)")
        token = environ.get(launch["access_token_env"], "")
        if not token:
            return LaunchResult(False, detail=f"environment variable {launch['access_token_env']} is not set")
        secrets = [token, environ.get(self._key_env, "")]  # what an answer might echo, never shown
        try:
            ids = self._catalogs.resolve(lambda catalog: self.target(catalog, request, launch))
            answer = self._post(request, launch, ids, token)
            if answer.status == 404 and _stale(answer.body):
                generation = self._catalogs.generation
                fresh = self.target(self._catalogs.get(stale=generation)[0], request, launch)
                if fresh == ids:
                    return LaunchResult(False, detail=_detail(answer, secrets, " (the ids looked up again are the "
                                                              "same: upload the file or run bitbar-setup)"))
                logger.info("bitbar: pool {}: {}; ids looked up again, sending once more", request.pool.name,
                            _detail(answer, secrets))
                answer = self._post(request, launch, fresh, token)
        except (Missing, RemoteError, NotSent) as exc:
            return LaunchResult(False, detail=redact(str(exc), secrets))
        return self._result(answer, secrets)

    def _post(self, request: LaunchRequest, launch: Mapping[str, Any], ids: Target, token: str) -> Answer:
        return self._api.write("POST", "runs", json_body=body(request, launch, ids, self._url, token,
                                                               self._phone_prefix))

    def _result(self, answer: Answer, secrets: list[str]) -> LaunchResult:
        if 200 <= answer.status < 300:
            run_id = answer.body.get("id") if isinstance(answer.body, dict) else None
            if isinstance(run_id, int) and not isinstance(run_id, bool):
                link = answer.body.get("uiLink")
                return LaunchResult(True, job_id=str(run_id), url=link if isinstance(link, str) else "")
            return LaunchResult(False, detail=f"POST runs: HTTP {answer.status} without a run id; a run may have "
                                              "started (it would show as a stranger)")
        return LaunchResult(False, detail=_detail(answer, secrets))

    def render(self, request: LaunchRequest) -> str:
        import json

        launch = pool_launch(request.pool)
        ids = None
        catalog = self._catalogs.current
        if catalog is not None:  # what the last look-up found; never a call from a dry run's render
            try:
                ids = self.target(catalog, request, launch, verify=False)
            except Missing:
                ids = None
        text = json.dumps(body(request, launch, ids, self._url, MASK, self._phone_prefix), indent=2)
        return f"POST {self._api.base}runs\n{text}"


def _stale(body: Any) -> bool:
    message = body.get("message") if isinstance(body, dict) else None
    return isinstance(message, str) and any(p.search(message) for p in STALE_IDS)


def _detail(answer: Answer, secrets: list[str], tail: str = "") -> str:
    message = answer.body.get("message") if isinstance(answer.body, dict) else None
    text = " ".join(str(message).split())[:200] if message else "no message"
    hint = " (the API key was refused)" if answer.status == 401 else ""
    return redact(f"POST runs: HTTP {answer.status}{hint}: {text}{tail}", [s for s in secrets if s])
