"""A sandbox to run the shipped payload's scripts for real with bash: a temporary HOME, a copy of the job
directory, and stand-ins on PATH for everything that would reach the network or a phone (curl, wget, apt-get,
sudo, python3.12's venv and pip, adb). The "downloads" are served from a local directory; among them the
start-worker stand-in, which validates the runner file it is given as worker-runner and generic-worker would.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path

from provisioner import LaunchRequest, Pool
from provisioner_lambdatest.options import POOL_OPTIONS, with_defaults
from provisioner_lambdatest.payload import builtin_payload
from provisioner_lambdatest.render import worker_env

UDID = "R5CXC1HZK0W"
TOKEN = "tc-secret-token-abcdefghij"
HOST_IP = "10.1.2.3"
ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "amd64")
RELEASE = "https://github.com/taskcluster/taskcluster/releases/download/v87.0.0/"
ASSETS = {"generic-worker": "generic-worker-insecure", "start-worker": "start-worker", "livelog": "livelog",
          "taskcluster-proxy": "taskcluster-proxy"}
SDK_ZIP = "commandlinetools-linux-13114758_latest.zip"

# worker-runner's documented top-level keys, and every key generic-worker knows (worker-config.md).
RUNNER_KEYS = {"provider", "worker", "workerConfig", "logging", "getSecrets", "cacheOverRestarts"}
GW_KEYS = set("""accessToken allowedHighMemoryDurationSecs availabilityZone cachesDir capacity certificate
cleanUpTaskDirs clientId createObjectArtifacts disableOOMProtection disableReboots downloadsDir
ed25519SigningKeyLocation enableChainOfTrust enableInteractive enableLiveLog enableMetadata enableMounts
enableOSGroups enableResourceMonitor enableTaskclusterProxy idleTimeoutSecs instanceId instanceType
interactivePort livelogExecutable livelogExposePort livelogPortBase maxMemoryUsagePercent maxTaskRunTime
minAvailableMemoryBytes numberOfTasksToRun privateIP provisionerId publicIP region requiredDiskSpaceMegabytes
rootURL runAfterUserCreation sentryProject shutdownMachineOnIdle shutdownMachineOnInternalError
taskclusterProxyExecutable taskclusterProxyPort tasksDir workerGroup workerId workerLocation workerType
workerTypeMetadata wstAudience wstServerURL""".split())
GW_REQUIRED = ("accessToken", "cachesDir", "clientId", "downloadsDir", "ed25519SigningKeyLocation",
               "livelogExecutable", "provisionerId", "rootURL", "tasksDir", "workerGroup", "workerId", "workerType")

START_WORKER = r'''#!{python}
"""start-worker stand-in: refuses a runner file worker-runner or generic-worker would refuse (or that would not
serve a task on a phone), exactly as the project's reference describes them; records it when it passes."""
import json, os, stat, sys
from pathlib import Path

RUNNER_KEYS = set({runner_keys})
GW_KEYS = set({gw_keys})
GW_REQUIRED = {gw_required}
expect = json.loads(Path(os.environ["SANDBOX"], "expect.json").read_text())
path = Path(sys.argv[1])
problems = []
if stat.S_IMODE(path.stat().st_mode) & 0o077:
    problems.append("runner file readable by others")
try:
    runner = json.loads(path.read_text())  # JSON is YAML 1.2
except ValueError as exc:
    print(f"start-worker stand-in: not JSON: {{exc}}", file=sys.stderr)
    sys.exit(3)
problems += [f"unknown top-level key {{k}}" for k in sorted(set(runner) - RUNNER_KEYS)]
provider, worker, config = runner.get("provider") or {{}}, runner.get("worker") or {{}}, runner.get("workerConfig")
if provider.get("providerType") != "standalone":
    problems.append("providerType is not standalone")
for key in ("rootURL", "clientID", "accessToken", "workerPoolID", "workerGroup", "workerID"):
    if not provider.get(key):
        problems.append(f"provider.{{key}} empty")
if provider.get("workerGroup") != "lambda":
    problems.append("workerGroup is not lambda")
if provider.get("workerID") != expect["worker_id"]:
    problems.append(f"workerID {{provider.get('workerID')!r}} is not the phone's UDID")
if provider.get("workerPoolID") != expect["pool"]:
    problems.append("workerPoolID is not the pool's queue")
if worker.get("implementation") != "generic-worker" or not os.access(worker.get("path", ""), os.X_OK):
    problems.append("worker is not an executable generic-worker")
if not worker.get("configPath"):
    problems.append("worker.configPath empty")
if runner.get("getSecrets", True) is not False:
    problems.append("getSecrets is not false (worker-runner then dies on a 403 reading worker-pool secrets)")
if not isinstance(config, dict):
    problems.append("no workerConfig")
    config = {{}}
problems += [f"workerConfig.{{k}} is not a generic-worker setting" for k in sorted(set(config) - GW_KEYS)]
problems += [f"workerConfig.{{k}} is empty" for k in GW_REQUIRED if config.get(k) in (None, "")]
if config.get("capacity", 1) < 1:
    problems.append("capacity < 1")
base = config.get("livelogPortBase", 60098)
ports = [base, base + 1, config.get("interactivePort", 53654), config.get("taskclusterProxyPort", 80)]
ports += [config["livelogExposePort"]] if config.get("livelogExposePort") else []
if len(set(ports)) != len(ports):
    problems.append(f"ports collide: {{ports}}")
for key, value in expect["config"].items():
    if config.get(key) != value:
        problems.append(f"workerConfig.{{key}} is {{config.get(key)!r}}, not {{value!r}}")
for key in ("ed25519SigningKeyLocation", "livelogExecutable", "taskclusterProxyExecutable"):
    if config.get(key) and not Path(config[key]).is_file():
        problems.append(f"workerConfig.{{key}}: no such file")
for name, value in expect["env"].items():
    if os.environ.get(name) != value:
        problems.append(f"env {{name}} is {{os.environ.get(name)!r}}, not {{value!r}}")
for part in expect["path"]:
    if part not in os.environ["PATH"].split(":"):
        problems.append(f"{{part}} not on PATH")
if problems:
    print("start-worker stand-in: " + "; ".join(problems), file=sys.stderr)
    sys.exit(3)
Path(os.environ["SANDBOX"], "runner-seen.json").write_text(json.dumps(runner))
print("start-worker stand-in: worker ran one task")
'''

CURL = r'''#!/usr/bin/env bash
# curl stand-in: serves "$SANDBOX/served/<last path part of the URL>"; records the URL.
echo "curl $*" >> "$SANDBOX/calls.log"
out="" url=""
while [ $# -gt 0 ]; do
  case "$1" in -o) out=$2; shift 2 ;; --retry) shift 2 ;; -*) shift ;; *) url=$1; shift ;; esac
done
src="$SANDBOX/served/${url##*/}"
[ -f "$src" ] || { echo "curl: (22) 404 $url" >&2; exit 22; }
cp "$src" "$out"
'''

ADB = r'''#!/usr/bin/env bash
# adb stand-in: the phones of $ADB_SERIALS; $ADB_MODE=never-back: a rebooted phone never comes back.
echo "adb $*" >> "$SANDBOX/calls.log"
[ "$1" = -s ] && shift 2
case "$*" in
  devices) echo "List of devices attached"; for s in $ADB_SERIALS; do printf '%s\tdevice\n' "$s"; done ;;
  "shell getprop sys.boot_completed") [ "${ADB_MODE:-}" = never-back ] || printf '1\r\n' ;;
  "shell dumpsys window") echo "  mCurrentFocus=null" ;;
esac
exit 0
'''

LOGGED = '''#!/usr/bin/env bash
echo "{name} $*" >> "$SANDBOX/calls.log"
{body}
'''

PYTHON312 = r'''#!/usr/bin/env bash
# python3.12 stand-in: `-m venv DIR` makes a venv whose pip only records and whose hg is mercurial 7.0.2.
echo "python3.12 $*" >> "$SANDBOX/calls.log"
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"
  printf '#!/usr/bin/env bash\necho "pip $*" >> "$SANDBOX/calls.log"\n' > "$3/bin/pip"
  printf '#!/usr/bin/env bash\necho "Mercurial Distributed SCM (version 7.0.2)"\n' > "$3/bin/hg"
  chmod +x "$3/bin/pip" "$3/bin/hg"
  exit 0
fi
exit 1
'''

GENERIC_WORKER = r'''#!/usr/bin/env bash
# generic-worker stand-in (served as the release asset)
case "$1" in
  new-ed25519-keypair) echo "ed25519 private key" > "$3" ;;
  --short-version) echo 87.0.0 ;;
  *) exit 1 ;;
esac
'''


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _sdk_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cmdline-tools/bin/sdkmanager", "#!/bin/sh\necho sdkmanager\n")
        archive.writestr("cmdline-tools/lib/sdkmanager-classpath.jar", "jar")
        archive.writestr("cmdline-tools/source.properties", "Pkg.Revision=19.0\n")
    return buffer.getvalue()


def job_env(udid: str = UDID, **launch: object) -> dict[str, str]:
    """The job env the launcher puts in the yaml, for a pool of queue proj-autophone/gecko-t-lambda-perf-a55."""
    pool = Pool(name="a55-perf", queue="proj-autophone/gecko-t-lambda-perf-a55", queue_source="q",
                device_provider="d", launcher="hyperexecute", udids=(UDID,) if udid else (),
                targeting="pinned" if udid else "selector")
    request = LaunchRequest(launch_id="L1", pool=pool, udid=udid, labels=("provisioner", pool.name, udid))
    return worker_env(request, with_defaults(POOL_OPTIONS, launch), "project/autophone/a55", TOKEN)


class Sandbox:
    """One phone host: ``run(script)`` runs a payload script as HyperExecute would, in the job directory."""

    def __init__(self, root: Path, serials: str = UDID) -> None:
        self.root = root
        self.home = root / "home"
        self.job = root / "job"
        self.bin = root / "bin"
        self.served = root / "served"
        for directory in (self.home, self.bin, self.served):
            directory.mkdir(parents=True)
        shutil.copytree(builtin_payload(), self.job)
        self.serials = serials
        self._stand_ins()
        self._serve()

    @property
    def tc_dir(self) -> Path:
        return self.home / "taskcluster"

    def _stand_ins(self) -> None:
        _executable(self.bin / "curl", CURL)
        _executable(self.bin / "wget", LOGGED.format(name="wget", body="exit 1  # the payload uses curl"))
        _executable(self.bin / "adb", ADB)
        _executable(self.bin / "apt-get", LOGGED.format(name="apt-get", body="exit 0"))
        _executable(self.bin / "sudo", LOGGED.format(name="sudo", body='[ "$1" = -n ] && shift; exec "$@"'))
        _executable(self.bin / "python3.12", PYTHON312)
        _executable(self.bin / "pip", LOGGED.format(name="pip-outside-the-venv", body="exit 1"))
        _executable(self.bin / "python3", f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')

    def _serve(self) -> None:
        start_worker = START_WORKER.format(python=sys.executable, runner_keys=sorted(RUNNER_KEYS),
                                           gw_keys=sorted(GW_KEYS), gw_required=GW_REQUIRED)
        contents = {
            f"generic-worker-insecure-linux-{ARCH}": GENERIC_WORKER.encode(),
            f"start-worker-linux-{ARCH}": start_worker.encode(),
            f"livelog-linux-{ARCH}": b"#!/bin/sh\n",
            f"taskcluster-proxy-linux-{ARCH}": b"#!/bin/sh\n",
            "robustcheckout.py": b"# robustcheckout\n",
            "tooltool.py": b"# tooltool\n",
            SDK_ZIP: _sdk_zip(),
        }
        for name, data in contents.items():
            (self.served / name).write_bytes(data)

    def pin_all(self, wrong: str = "") -> None:
        """Fill checksums.sha256 (keeping its comments) with the served files' checksums; ``wrong``: a bad one."""
        lines = [(self.job / "checksums.sha256").read_text()]
        for path in sorted(self.served.iterdir()):
            name = f"v87.0.0/{path.name}" if path.name.endswith(ARCH) else path.name
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            lines.append(f"{'0' * 64 if name == wrong else digest}  {name}\n")
        (self.job / "checksums.sha256").write_text("".join(lines))

    def expect(self, worker_id: str = UDID, serial: str = UDID, **config: object) -> None:
        tc = str(self.tc_dir)
        (self.root / "expect.json").write_text(json.dumps({
            "worker_id": worker_id,
            "pool": "proj-autophone/gecko-t-lambda-perf-a55",
            "config": {
                "certificate": "", "idleTimeoutSecs": 600, "numberOfTasksToRun": 1, "publicIP": "127.0.0.1",
                "requiredDiskSpaceMegabytes": 6500, "taskclusterProxyPort": 8099, "wstAudience": "firefoxcitc",
                "wstServerURL": "https://firefoxci-websocktunnel.services.mozilla.com/",
                "provisionerId": "proj-autophone", "workerType": "gecko-t-lambda-perf-a55", "workerId": worker_id,
                "workerGroup": "lambda", **config,
            },
            "env": {"ANDROID_SERIAL": serial, "DEVICE_SERIAL": serial, "HOST_IP": HOST_IP},
            "path": [tc, f"{tc}/android-sdk-linux/tools/bin", str(self.home / "venv" / "bin")],
        }))

    def run(self, script: str, env: Mapping[str, str], **extra: str) -> subprocess.CompletedProcess[str]:
        full = {
            "PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.home), "SANDBOX": str(self.root),
            "ADB_SERIALS": self.serials, "HostIP": HOST_IP, "LANG": "C.UTF-8", **env, **extra,
        }
        return subprocess.run(["bash", script], cwd=self.job, env=full, capture_output=True, text=True, timeout=60)

    def calls(self) -> list[str]:
        log = self.root / "calls.log"
        return log.read_text().splitlines() if log.exists() else []
