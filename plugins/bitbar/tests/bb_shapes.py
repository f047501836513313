"""The Bitbar answers the tests replay, built from the shapes the reference facts cite (no Bitbar server was
ever recorded: facts §6), and the cassettes made of them (``python plugins/bitbar/tests/bb_shapes.py`` writes
``cassettes/bitbar/``; ``test_bb_cassettes.py`` holds the files to this script).

Field lists: TDJ ``APIList`` (``data``, ``limit``, ``offset``, ``total``), ``APIAdminDevice`` / JS ``AdminDevice``
(``deviceModelName``, ``state`` ComplexState, ``enabled``, ``locked``, ``stateChangeTime``, ``softwareVersion``),
``APIAdminTestRun`` (``projectName``, ``testRunName``, ``state``, ``createTime``, ``endTime``), ``APIDeviceSession``
(``state``, ``excludeReason``, nested ``device``), ``APIDeviceGroup``, ``APIProject`` (``archiveTime``),
``APIUserFile``, TDJ ``APIExceptionMessage`` (``message``, ``statusCode``); the launch body: mbd
``runs.run_test_for_project``. Labels and versions: mbd ``config/config-v3-server.yml``. Times: epoch ms.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
CASSETTES = REPO / "cassettes" / "bitbar"
BASE = "https://mozilla-v3.bitbar.com/api/v2/"
NOW = 1764979200.0  # 2025-12-06T00:00:00Z
MS = int(NOW * 1000)
MIN = 60_000
TAG = "provisioner"
PINNED, GROUP, MBD = f"{TAG}-bb-a55-perf", f"{TAG}-bb-a55-group", "12345-mozilla-gw-perftest-a55"
PROJECT_IDS = {PINNED: 501, GROUP: 502, MBD: 401}


def device(n: int, name: str, state: str, enabled: bool = True, locked: bool = False, changed: int = 5,
           version: str = "14") -> dict[str, Any]:
    return {"id": 100 + n, "name": name, "serialId": f"R5CX{n:07d}", "deviceModelId": 2000 + n,
            "deviceModelName": name, "enabled": enabled, "locked": locked, "state": state,
            "stateTime": MS - changed * MIN, "stateChangeTime": MS - changed * MIN, "lastOnlineTime": MS - MIN,
            "softwareVersion": {"id": 30 + n, "apiLevel": 34, "releaseVersion": version},
            "testTimeLimit": 0, "initStep": None}


DEVICES = [
    device(1, "a55-33", "ONLINE_FREE"), device(2, "a55-34", "ONLINE_TESTING"),
    device(3, "a55-35", "ONLINE_CLEANING", changed=5), device(4, "a55-52", "ONLINE_DIRTY", changed=180),
    device(5, "a55-57", "OFFLINE_FREE"), device(6, "a55-58", "ONLINE_FREE", locked=True),
    *[device(10 + i, f"pixel6-{n}", state, version="13") for i, (n, state) in enumerate([
        (137, "ONLINE_FREE"), (138, "ONLINE_FREE"), (147, "ONLINE_TESTING"), (148, "ONLINE_TESTING"),
        (151, "ONLINE_FREE"), (153, "OFFLINE_DIRTY"), (165, "ONLINE_FREE"), (169, "OFFLINE_TESTING"),
        (170, "ONLINE_TESTING"), (173, "ONLINE_FREE")])],
    device(30, "s24-01", "ONLINE_FREE"), device(31, "s24-02", "OFFLINE_CLEANING"),
    device(32, "s24-03", "ONLINE_FREE", enabled=False), device(33, "s24-07", "ONLINE_FREE"),
    {**device(34, "s24-07", "ONLINE_TESTING"), "deviceModelId": 2033},  # one model, two phones
    {**device(40, "Docker Builder", "ONLINE_FREE"), "serialId": "Linux 777"},
]
ODD_DEVICES = [device(50, "a55-90", "ONLINE_REBOOTING"), device(51, "Linux 777", "ONLINE_FREE"),
               {k: v for k, v in device(52, "", "ONLINE_FREE").items() if k != "deviceModelName"}]


def run(run_id: int, project: str, name: Any, state: str, created_min: float, ended_min: int | None = None) -> dict:
    return {"id": run_id, "projectId": PROJECT_IDS[project], "projectName": project, "testRunName": name,
            "state": state, "createTime": int(MS - created_min * MIN),
            "startTime": None if state == "WAITING" else int(MS - (created_min - 1) * MIN),
            "endTime": None if ended_min is None else MS - ended_min * MIN, "userName": "relops@mozilla.com",
            "startedById": 12345, "scheduler": "SINGLE", "frameworkId": 41, "frameworkName": "mozilla-usb",
            "priority": 0, "message": None, "successRatio": 0.0, "duration": 0}


RUNS = [
    run(9002, GROUP, f"{TAG},bb-a55-group,", "WAITING", 0.5),
    run(9001, PINNED, f"{TAG},bb-a55-perf,a55-33", "WAITING", 1),
    run(9000, GROUP, f"{TAG},bb-a55-group,", "RUNNING", 10),
    run(8999, MBD, None, "RUNNING", 20),
    run(8998, PINNED, f"{TAG},bb-a55-perf,a55-35", "FINISHED", 40, 7),
    run(8997, PINNED, f"{TAG},bb-a55-perf,a55-52", "FINISHED", 50, 30),
    run(8996, PINNED, "Test Run 12", "FINISHED", 60, 59),  # a name the server made: the project decides
    run(8995, GROUP, f"{TAG},bb-a55-group,", "FINISHED", 100, 5),
    run(8990, PINNED, f"{TAG},bb-a55-perf,a55-34", "FINISHED", 300, 200),  # older than the look-back
]


def session(sid: int, state: str, name: str, reason: str | None = None) -> dict[str, Any]:
    return {"id": sid, "state": state, "excludeReason": reason, "type": "AUTOMATIC", "retryState": "NONE",
            "createTime": MS - 60 * MIN, "startTime": None if state in ("WAITING", "EXCLUDED") else MS - 59 * MIN,
            "endTime": None, "device": {"id": 2000 + int(sid % 100), "displayName": name, "osType": "ANDROID"}}


SESSIONS = {
    9000: [session(9100, "RUNNING", "a55-34"), session(9101, "EXCLUDED", "a55-33", "SINGLE_MODE")],
    8998: [session(8981, "SUCCEEDED", "a55-35")],
    8997: [session(8971, "FAILED", "a55-52")],
    8996: [session(8961, "EXCLUDED", "a55-33", "NO_DEVICE")],
    8995: [session(8951, "TIMEOUT", "a55-57"), session(8952, "EXCLUDED", "a55-58", "SINGLE_MODE")],
}

PROJECTS = [{"id": i, "name": n, "archiveTime": None, "archivingStrategy": "DAYS", "archivingItemCount": 7,
             "createTime": MS - 86400_000, "userId": 12345, "description": ""} for n, i in PROJECT_IDS.items()]
PROJECTS.append({**PROJECTS[0], "id": 300, "archiveTime": MS - 10 * 86400_000})  # an archived namesake
MEMBERS = {601: ["a55-33"], 602: ["a55-34"], 603: ["a55-33", "a55-34", "a55-35", "a55-52", "a55-57", "a55-58"],
           604: ["a55-35", "a55-52"]}
GROUP_NAMES = {601: f"{TAG}-a55-33", 602: f"{TAG}-a55-34", 603: "a55-perf", 604: f"{TAG}-a55-35"}
GROUPS = [{"id": gid, "displayName": name, "name": name, "osType": "ANDROID", "deviceCount": len(MEMBERS[gid]),
           "userId": 12345, "isShared": False} for gid, name in GROUP_NAMES.items()]
FRAMEWORKS = [{"id": 41, "name": "mozilla-usb", "osType": "ANDROID", "type": "GENERIC"},
              {"id": 42, "name": "mozilla-tcp", "osType": "ANDROID", "type": "GENERIC"},
              {"id": 43, "name": "Docker image build", "osType": "ANDROID", "type": "GENERIC"}]


def files(test_id: int = 711) -> list[dict[str, Any]]:
    def f(fid: int, name: str, age_days: int) -> dict[str, Any]:
        return {"id": fid, "name": name, "size": 22, "state": "READY", "direction": "INPUT",
                "createTime": MS - age_days * 86400_000, "fileProperties": [{"key": "virus_scan_status",
                                                                              "value": "safe"}]}
    return [f(701, "v3-empty-test.zip", 20), f(702, "v3-testdroid-sample-app.apk", 3), f(test_id, "v3-empty-test.zip", 2)]


ME = {"id": 12345, "accountId": 1, "mainUserId": 12345, "name": "relops@mozilla.com"}
PUBLIC_DEVICES = [{"id": d["deviceModelId"], "displayName": d["deviceModelName"], "online": True, "locked": False,
                   "enabled": True, "osType": "ANDROID", "softwareVersion": d["softwareVersion"]} for d in DEVICES]


# -- cassette building ----------------------------------------------------------------------------
def exchange(method: str, path: str, status: int, body: Any, params: dict | None = None,
             request: Any = None) -> dict[str, Any]:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    text = body if isinstance(body, str) else json.dumps(body)
    return {"request": {"body": request, "headers": {"Accept": ["application/json"],
                                                     "User-Agent": ["provisioner-bitbar/0.1"]},
                        "method": method, "uri": BASE + path + query},
            "response": {"status": {"code": status, "message": {200: "OK", 201: "Created"}.get(status, "Error")},
                         "headers": {"Content-Type": ["application/json"]}, "body": {"string": text}}}


def listing(path: str, rows: list, page: int = 100, params: dict | None = None) -> list[dict[str, Any]]:
    """The pages a reader asking ``page`` rows at a time gets (``limit``, ``offset``; TDJ APIList)."""
    out = []
    for offset in range(0, max(len(rows), 1), page):
        data = rows[offset:offset + page]
        out.append(exchange("GET", path, 200, {"data": data, "limit": page, "offset": offset, "total": len(rows),
                                               "sort": (params or {}).get("sort")},
                            {**(params or {}), "limit": page, "offset": offset}))
    return out


def runs_and_sessions(page: int = 100, runs: list[dict[str, Any]] = RUNS) -> list[dict[str, Any]]:
    out = listing("admin/runs", runs, page, {"sort": "createTime_d"})
    for run_id, rows in SESSIONS.items():
        project = next(r["projectId"] for r in RUNS if r["id"] == run_id)
        out += listing(f"me/projects/{project}/runs/{run_id}/device-sessions", rows, page)
    return out


def catalog(test_id: int = 711) -> list[dict[str, Any]]:
    return (listing("me/projects", PROJECTS) + listing("me/device-groups", GROUPS) + listing("admin/frameworks", FRAMEWORKS)
            + listing("files", files(test_id), params={"sort": "createTime_a"}))


def members(group_id: int) -> list[dict[str, Any]]:
    return listing(f"device-groups/{group_id}/devices", [{"id": 2000, "displayName": n} for n in MEMBERS[group_id]])


def launch_body(udid: str, group_id: int, test_id: int = 711) -> str:
    pool = "bb-a55-perf" if udid else "bb-a55-group"
    return json.dumps({
        "osType": "ANDROID", "projectId": PROJECT_IDS[f"{TAG}-{pool}"], "frameworkId": 41, "scheduler": "SINGLE",
        "timeout": 0, "deviceGroupId": group_id, "testRunName": f"{TAG},{pool},{udid}",
        "files": [{"id": test_id, "action": "RUN_TEST"}, {"id": 702, "action": "INSTALL"}],
        "testRunParameters": [{"key": k, "value": v} for k, v in [
            ("bitbar_cloud_url", "https://mozilla-v3.bitbar.com"), ("DOCKER_IMAGE_VERSION", "20250304T123621"),
            ("TC_WORKER_CONF", "gecko-t-ap"), ("TASKCLUSTER_CLIENT_ID", "project/autophone/gecko-t-bitbar-perf-a55"),
            ("TC_WORKER_TYPE", "gecko-t-bitbar-gw-perf-a55"), ("TASKCLUSTER_ACCESS_TOKEN", "***")]]})


def posted(status: int, body: Any, udid: str = "a55-33", group_id: int = 601, test_id: int = 711) -> dict:
    return exchange("POST", "runs", status, body, request=launch_body(udid, group_id, test_id))


RUN_GROUP_OK = {"id": 9002, "state": "WAITING", "projectId": 502, "createTime": MS - 30_000, "displayName": "Test Run 4",
                "number": 4, "deviceCount": 6, "uiLink": "https://mozilla-v3.bitbar.com/#testing/test-run/502/9002"}
RUN_OK = {"id": 9001, "state": "WAITING", "projectId": 501, "createTime": MS - MIN, "displayName": "Test Run 9",
          "number": 9, "deviceCount": 1, "uiLink": "https://mozilla-v3.bitbar.com/#testing/test-run/501/9001"}


def error(status: int, message: str) -> dict[str, Any]:
    return {"message": message, "statusCode": status}


def cassettes() -> dict[str, list[dict[str, Any]]]:
    failing = [exchange("GET", "admin/devices", 503, error(503, "Service Unavailable"),
                        {"withDisabled": "true", "limit": 100, "offset": 0})] * 3
    failing += [exchange("GET", "admin/runs", 503, "<html>Service Unavailable</html>",
                         {"sort": "createTime_d", "limit": 100, "offset": 0})] * 3
    before_post = catalog() + members(601)
    return {
        "provider_ok": listing("admin/devices", DEVICES, params={"withDisabled": "true"}) + runs_and_sessions(),
        "runs_two_pages": runs_and_sessions(page=5),
        # a server that ignores sort (Q4): page 1 visibly out of order and ending on a run older than since
        "runs_unsorted": runs_and_sessions(5, [RUNS[i] for i in (0, 2, 1, 3, 8, 4, 5, 6, 7)]),
        "devices_odd": listing("admin/devices", ODD_DEVICES, params={"withDisabled": "true"}),
        "devices_5xx": failing,
        "devices_not_json": [exchange("GET", "admin/devices", 200, "<html>login</html>",
                                      {"withDisabled": "true", "limit": 100, "offset": 0})],
        "devices_401": [exchange("GET", "admin/devices", 401, error(401, "Unauthorized"),
                                 {"withDisabled": "true", "limit": 100, "offset": 0})],
        "launch_ok": before_post + [posted(201, RUN_OK), posted(201, RUN_GROUP_OK, "", 603)] + runs_and_sessions(),
        "launch_404_file_then_ok": before_post + [posted(404, error(404, "FileEntity with id 711 does not exist"))]
        + catalog(712) + members(601) + [posted(201, RUN_OK, test_id=712)],
        "launch_404_file_same_ids": before_post + [posted(404, error(404, "FileEntity with id 711 does not exist"))]
        + catalog() + members(601),
        "launch_wrong_group": catalog() + members(604),
        "launch_404_group": before_post + [posted(404, error(404, "DeviceGroup with id 601 does not exist"))],
        "launch_400": before_post + [posted(400, error(400, "Invalid testRunParameters"))],
        "launch_401": before_post + [posted(401, error(401, "Unauthorized"))],
        "launch_500": before_post + [posted(500, "<html>Internal Server Error</html>")],
        "launch_no_id": before_post + [posted(200, {"state": "WAITING"})],
        "setup": catalog() + [m for g in MEMBERS for m in members(g)] + [exchange("GET", "me", 200, ME)]
        + listing("devices", PUBLIC_DEVICES)
        + [exchange("POST", "users/12345/projects", 201, {**PROJECTS[0], "id": 503, "name": f"{TAG}-bb-s24-perf"},
                    request="name=provisioner-bb-s24-perf&type=APPIUM_ANDROID_SERVER_SIDE"),
           exchange("POST", "users/12345/projects/503", 200, {**PROJECTS[0], "id": 503, "name": f"{TAG}-bb-s24-perf"},
                    request="name=provisioner-bb-s24-perf&archivingStrategy=DAYS&archivingItemCount=7"),
           exchange("POST", "users/12345/device-groups", 201, {**GROUPS[0], "id": 605, "deviceCount": 0,
                                                               "displayName": f"{TAG}-pixel6-137"},
                    request="displayName=provisioner-pixel6-137&osType=ANDROID"),
           exchange("POST", "device-groups/605/devices", 200, {**GROUPS[0], "id": 605, "deviceCount": 1,
                                                               "displayName": f"{TAG}-pixel6-137"},
                    request="deviceIds%5B%5D=2010")],
    }


def render(interactions: list[dict[str, Any]]) -> str:
    import yaml

    return yaml.safe_dump({"interactions": interactions, "version": 1}, sort_keys=False, width=120)


def main() -> int:
    CASSETTES.mkdir(parents=True, exist_ok=True)
    for name, interactions in cassettes().items():
        (CASSETTES / f"{name}.yaml").write_text(render(interactions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
