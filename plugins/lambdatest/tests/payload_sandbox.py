"""A sandbox to run the shipped payload's scripts for real with bash: a temporary directory standing for / (the
payload's test-only PAYLOAD_TEST_ROOT), so the host's fixed paths /home/ltuser/taskcluster and /usr/bin/python3 lie
under it; a copy of the job directory; and stand-ins on PATH for everything that would reach the network or a phone
(curl, wget, apt-get, sudo, the system python3's pip, python3.12's venv and pip, adb, sleep, Firefox's run-task).

The "downloads" are served from a local directory under their checksums.sha256 names; among them stand-ins of
start-worker (validates the runner file as worker-runner and generic-worker would, against the key set of the
generic-worker release installed next to it, then runs worker.path as worker-runner v87 does) and generic-worker
(runs what ``worker-plan`` says: a task through run-task and the installed task wrapper, an idle-out, a superseded
task, an exit code).
Stand-ins that run under start-worker's allow-listed environment have the sandbox's path written into them.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import stat
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path

from provisioner import LaunchRequest, Pool
from provisioner_lambdatest.options import POOL_OPTIONS, with_defaults
from provisioner_lambdatest.payload import builtin_payload
from provisioner_lambdatest.render import worker_env
from provisioner_lambdatest.workerconfig import GENERIC_WORKER_KEYS, REQUIRED, RUNNER_KEYS

UDID = "R5CXC1HZK0W"
TOKEN = "tc-secret-token-abcdefghij"
HOST_IP = "10.1.2.3"
LT_ENV = {"JOB_ID": "9b6a1f2e-job", "TASK_ID": "lt-task-7", "HYE_JOB_NUMBER": "4242", "LT_BUILD_SECRET": "lt-only",
          "ANDROID_DEVICE": "a55-lt", "DEVICE_IP": "10.1.9.9", "DOCKER_IMAGE_VERSION": "lt-20261201"}
JOB_UMASK = 0o022  # HyperExecute's job umask is not documented: the common default
ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "amd64")
RELEASE = "https://github.com/taskcluster/taskcluster/releases/download/v87.0.0/"
VERSIONS = ("87.0.0", "106.0.0")
SDK_ZIP = "commandlinetools-linux-13114758_latest.zip"
IDLE_OUT = 68

START_WORKER = r'''#!{python}
"""start-worker stand-in: refuses (exit 3) a runner file worker-runner or generic-worker would refuse, or that would
not serve a task on a phone, as the project's reference describes them; else writes the worker's config file and
runs worker.path as worker-runner v87 does (tools/worker-runner/worker/genericworker/runmethod.go): `<path> run
--config <configPath> --with-worker-runner`, stdin and stdout pipes of the worker protocol, stderr passed through,
the environment inherited; lines on the protocol pipe that are not protocol messages (`~{{...}}`) are logged to
stderr (workerproto/pipe.go). Exits 1 when the worker exits non-zero (run.go)."""
import json, os, stat, subprocess, sys
from pathlib import Path

SANDBOX = Path({root!r})
with open(SANDBOX / "calls.log", "a") as calls:
    calls.write("start-worker " + " ".join(sys.argv[1:]) + "\n")
RUNNER_KEYS = set({runner_keys})
KEYS = {keys}
GW_REQUIRED = {gw_required}
expect = json.loads(Path(SANDBOX, "expect.json").read_text())
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
worker_path = Path(worker.get("path", "/nonexistent"))
if worker.get("implementation") != "generic-worker" or not os.access(worker_path, os.X_OK):
    problems.append("worker is not an executable generic-worker")
if not worker.get("configPath"):
    problems.append("worker.configPath empty")
if runner.get("getSecrets", True) is not False:
    problems.append("getSecrets is not false (worker-runner then dies on a 403 reading worker-pool secrets)")
if not isinstance(config, dict):
    problems.append("no workerConfig")
    config = {{}}
version = subprocess.run([str(worker_path.parent / "generic-worker"), "--short-version"], capture_output=True,
                         text=True).stdout.strip()
known = set(KEYS.get(version, ()))
problems += [f"workerConfig.{{k}} is not a generic-worker v{{version}} setting" for k in sorted(set(config) - known)]
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
if problems:
    print("start-worker stand-in: " + "; ".join(problems), file=sys.stderr)
    sys.exit(3)
Path(SANDBOX, "runner-seen.json").write_text(json.dumps(runner))
Path(SANDBOX, "runner-mode").write_text(oct(stat.S_IMODE(path.stat().st_mode)))
Path(worker["configPath"]).write_text(json.dumps(config))
worker_proc = subprocess.Popen([str(worker_path), "run", "--config", worker["configPath"], "--with-worker-runner"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
for line in worker_proc.stdout:
    line = line.strip()
    if not (line.startswith(b"~{{") and line.endswith(b"}}")):
        sys.stderr.buffer.write(line + b"\n")
        sys.stderr.flush()
code = worker_proc.wait()
worker_proc.stdin.close()
sys.exit(1 if code else 0)
'''

GENERIC_WORKER = r'''#!{python}
"""generic-worker v{version} stand-in (served as the release asset). `run` does the next step of the sandbox's
worker-plan (default "task 0"): `task N` runs a task whose command exits N, as Firefox's lambda tasks run it
(run-task -- <TC_DIR>/script.py <command>), with the worker's environment plus the task's, and exits 0 as a worker
that ran its one task; `idle` exits 68; `superseded` prints production's "has been superseded" line (a line
generic-worker v87 never prints: it stands for what production's re-run looks for); `exit N` exits N. `run`
records its argv, whether stdin and stdout are pipes, and its umask in worker-call.json. The task's own
environment (its payload's env) names the phone's variables with stale values: the wrapper must set them from
scriptvars.json."""
import json, os, stat, subprocess, sys
from pathlib import Path

PHONE_NAMES = ("DEVICE_NAME", "DEVICE_SERIAL", "HOST_IP", "ANDROID_DEVICE", "DEVICE_IP", "DOCKER_IMAGE_VERSION")

SANDBOX = Path({root!r})
if sys.argv[1:2] == ["--short-version"]:
    print("{version}")
    sys.exit(0)
if sys.argv[1:2] == ["new-ed25519-keypair"]:
    Path(sys.argv[3]).write_text("ed25519 private key\n")
    sys.exit(0)
if sys.argv[1:3] != ["run", "--config"]:
    sys.exit(64)
umask = os.umask(0)
os.umask(umask)
Path(SANDBOX, "worker-call.json").write_text(json.dumps({{
    "argv": sys.argv[1:], "umask": umask,
    "stdin_pipe": stat.S_ISFIFO(os.fstat(0).st_mode), "stdout_pipe": stat.S_ISFIFO(os.fstat(1).st_mode)}}))
config = json.loads(Path(sys.argv[3]).read_text())
Path(SANDBOX, "worker-env.json").write_text(json.dumps(dict(os.environ)))
count = Path("tasks-resolved-count.txt")  # kept in the worker's working directory
if count.exists() and int(count.read_text() or 0) >= config["numberOfTasksToRun"]:
    print("generic-worker: already resolved its tasks; exiting")
    sys.exit(0)
plan_file = SANDBOX / "worker-plan"
plan = plan_file.read_text().splitlines() if plan_file.exists() else []
step = plan.pop(0) if plan else "task 0"
plan_file.write_text("".join(line + "\n" for line in plan))
with open(SANDBOX / "worker-runs.log", "a") as runs:
    runs.write(step + "\n")
kind, _, arg = step.partition(" ")
if kind == "idle":
    print("generic-worker: no task claimed within idleTimeoutSecs")
    sys.exit(68)
if kind == "exit":
    sys.exit(int(arg))
if kind == "superseded":
    print("Task T1 has been superseded by task T2")
    count.write_text("1")
    sys.exit(0)
task_dir = Path(config["tasksDir"], "task_1")
task_dir.mkdir(parents=True, exist_ok=True)
wrapper = str(Path(config["tasksDir"]).parent / "script.py")  # /home/ltuser/taskcluster/script.py on a host
command = "env > {root}/command-env.txt; echo command-output; echo command-stderr >&2; exit " + arg
env = dict(os.environ, TASK_ID="TCtask0001", RUN_ID="0", TASKCLUSTER_ROOT_URL=config["rootURL"],
           **{{name: "stale-" + name for name in PHONE_NAMES}})
with open(SANDBOX / "task-log.txt", "w") as log:
    done = subprocess.run(["run-task", "--", wrapper, "bash", "-c", command], cwd=task_dir, env=env,
                          stdout=log, stderr=subprocess.STDOUT)
(SANDBOX / "task-exit").write_text(str(done.returncode))
count.write_text("1")
print(f"generic-worker: task TCtask0001 resolved with exit code {{done.returncode}}")
sys.exit(0)
'''

CURL = r'''#!/usr/bin/env bash
# curl stand-in: serves "@SANDBOX@/served/<name>", the checksums.sha256 name of the URL; records the URL.
echo "curl $*" >> "@SANDBOX@/calls.log"
out="" url=""
while [ $# -gt 0 ]; do
  case "$1" in -o) out=$2; shift 2 ;; --retry) shift 2 ;; -*) shift ;; *) url=$1; shift ;; esac
done
case "$url" in */releases/download/*) rest="${url%/*}"; name="${rest##*/}/${url##*/}" ;; *) name="${url##*/}" ;; esac
src="@SANDBOX@/served/$name"
[ -f "$src" ] || { echo "curl: (22) 404 $url" >&2; exit 22; }
cp "$src" "$out"
'''

ADB = r'''#!/usr/bin/env bash
# adb stand-in: USB phones listed in @SANDBOX@/adb-serials; `connect S` attaches S over the network; a file
# adb-root makes the phone rooted; ADB_MODE (or the file adb-mode) never-back: a rebooted phone never comes back;
# adb-hidden holding N: the next N `devices` list no phone (a phone rebooting or offline). Every call is recorded
# with its `-s SERIAL`; one naming a serial not attached fails as adb's does.
echo "adb $*" >> "@SANDBOX@/calls.log"
box="@SANDBOX@"
usb="$(cat "$box/adb-serials" 2>/dev/null)"
net="$(cat "$box/adb-net" 2>/dev/null)"
if [ "$1" = -s ]; then
  [[ " $(echo $usb $net) " == *" $2 "* ]] || { echo "adb: device '$2' not found" >&2; exit 1; }
  shift 2
fi
hidden="$(cat "$box/adb-hidden" 2>/dev/null)"
if [ "${hidden:-0}" -gt 0 ] && [ "$1" = devices ]; then
  echo $((hidden - 1)) > "$box/adb-hidden"
  usb="" net=""
fi
case "$*" in
  devices) echo "List of devices attached"; for s in $usb $net; do printf '%s\tdevice\n' "$s"; done ;;
  "devices -l")
    echo "List of devices attached"
    for s in $usb; do printf '%s\tdevice usb:1-1 product:a55xnsxx model:SM_A556E transport_id:1\n' "$s"; done
    for s in $net; do printf '%s\tdevice product:a55xnsxx model:SM_A556E transport_id:2\n' "$s"; done ;;
  connect*) echo "$2" >> "$box/adb-net"; echo "connected to $2" ;;
  "shell id") if [ -e "$box/adb-root" ]; then echo "uid=0(root) gid=0(root)"; else echo "uid=2000(shell)"; fi ;;
  "shell getprop sys.boot_completed") [ "${ADB_MODE:-$(cat "$box/adb-mode" 2>/dev/null)}" = never-back ] || printf '1\r\n' ;;
  "shell dumpsys window") echo "  mCurrentFocus=null" ;;
esac
exit 0
'''

LOGGED = '''#!/usr/bin/env bash
echo "{name} $*" >> "@SANDBOX@/calls.log"
{body}
'''

# pip stand-in: records, and "installs" each package as an importable module into SITE (unless BROKEN exists).
PIP_INSTALL = r'''echo "{name} $*" >> "@SANDBOX@/calls.log"
[ -e "{broken}" ] && exit 0
mkdir -p "{site}"
for arg in "$@"; do
  case "$arg" in -* | install) ;; *) module="${{arg%%==*}}"; echo "# stand-in" > "{site}/${{module//-/_}}.py" ;; esac
done
exit 0
'''

SYSTEM_PYTHON = r'''#!/usr/bin/env bash
# /usr/bin/python3 stand-in: `-m pip` installs into @SANDBOX@/system-site; anything else runs python with it.
if [ "$1 $2" = "-m pip" ]; then
  shift 2
{pip}fi
PYTHONPATH="@SANDBOX@/system-site" exec "{python}" "$@"
'''

PYTHON312 = r'''#!/usr/bin/env bash
# python3.12 stand-in: `-m venv DIR` makes a venv whose pip installs stand-in modules into DIR/site, whose python
# imports them and whose hg is mercurial 7.0.2.
echo "python3.12 $*" >> "@SANDBOX@/calls.log"
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"
  cat > "$3/bin/pip" <<PIP
#!/usr/bin/env bash
{pip}PIP
  printf '#!/usr/bin/env bash\nPYTHONPATH="%s/site" exec "{python}" "$@"\n' "$3" > "$3/bin/python"
  printf '#!/usr/bin/env bash\necho "Mercurial Distributed SCM (version 7.0.2)"\n' > "$3/bin/hg"
  chmod +x "$3/bin/pip" "$3/bin/hg" "$3/bin/python"
  exit 0
fi
exit 1
'''

SLEEP = '''#!/usr/bin/env bash
# sleep stand-in: records and returns at once (no test sleeps).
echo "sleep $*" >> "@SANDBOX@/calls.log"
'''

RUN_TASK = '''#!/usr/bin/env bash
# run-task stand-in (Firefox's own checks out the source first): runs what follows "--".
while [ $# -gt 0 ] && [ "$1" != -- ]; do shift; done
shift
exec "$@"
'''


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
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
        self.home = root / "home" / "ltuser"
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

    @property
    def serials(self) -> str:
        return (self.root / "adb-serials").read_text()

    @serials.setter
    def serials(self, value: str) -> None:
        (self.root / "adb-serials").write_text(value)

    def _text(self, template: str, **values: str) -> str:
        return template.format(**values).replace("@SANDBOX@", str(self.root))

    def _stand_ins(self) -> None:
        python = sys.executable
        _executable(self.bin / "curl", CURL.replace("@SANDBOX@", str(self.root)))
        _executable(self.bin / "adb", ADB.replace("@SANDBOX@", str(self.root)))
        _executable(self.bin / "run-task", RUN_TASK)
        _executable(self.bin / "sleep", SLEEP.replace("@SANDBOX@", str(self.root)))
        _executable(self.bin / "wget", self._text(LOGGED, name="wget", body="exit 1  # the payload uses curl"))
        _executable(self.bin / "apt-get", self._text(LOGGED, name="apt-get", body="exit 0"))
        _executable(self.bin / "sudo", self._text(LOGGED, name="sudo", body='[ "$1" = -n ] && shift; exec "$@"'))
        _executable(self.bin / "pip", self._text(LOGGED, name="pip-outside-the-venv", body="exit 1"))
        system_pip = PIP_INSTALL.format(name="system-python3 -m pip", broken=self.root / "pip-broken-system",
                                        site=self.root / "system-site")
        _executable(self.root / "usr" / "bin" / "python3", self._text(SYSTEM_PYTHON, pip=system_pip, python=python))
        venv_pip = PIP_INSTALL.format(name="pip", broken=self.root / "pip-broken-venv", site="$(dirname $0)/../site")
        _executable(self.bin / "python3.12", self._text(PYTHON312, pip=venv_pip.replace("$", "\\$"), python=python))

    def _serve(self) -> None:
        start_worker = START_WORKER.format(
            python=sys.executable, root=str(self.root), runner_keys=sorted(RUNNER_KEYS), gw_required=REQUIRED,
            keys={version: sorted(keys) for version, keys in GENERIC_WORKER_KEYS.items()})
        contents = {"robustcheckout.py": b"# robustcheckout\n", "tooltool.py": b"# tooltool\n", SDK_ZIP: _sdk_zip()}
        for version in VERSIONS:
            contents.update({
                f"v{version}/generic-worker-insecure-linux-{ARCH}": GENERIC_WORKER.format(
                    python=sys.executable, root=str(self.root), version=version).encode(),
                f"v{version}/start-worker-linux-{ARCH}": start_worker.encode(),
                f"v{version}/livelog-linux-{ARCH}": b"#!/bin/sh\n",
                f"v{version}/taskcluster-proxy-linux-{ARCH}": b"#!/bin/sh\n",
            })
        for name, data in contents.items():
            (self.served / name).parent.mkdir(parents=True, exist_ok=True)
            (self.served / name).write_bytes(data)

    def served_names(self) -> list[str]:
        return sorted(str(p.relative_to(self.served)) for p in self.served.rglob("*") if p.is_file())

    def pin(self, names: list[str], wrong: str = "") -> None:
        """Add the served files ``names`` to checksums.sha256 (keeping it); ``wrong``: a name given a bad sum."""
        lines = [(self.job / "checksums.sha256").read_text()]
        for name in names:
            digest = hashlib.sha256((self.served / name).read_bytes()).hexdigest()
            lines.append(f"{'0' * 64 if name == wrong else digest}  {name}\n")
        (self.job / "checksums.sha256").write_text("".join(lines))

    def pin_all(self, wrong: str = "") -> None:
        """Pin every served file (both releases) with its checksum; ``wrong``: one with a bad one."""
        self.pin(self.served_names(), wrong)

    def plan(self, *steps: str) -> None:
        """What the generic-worker stand-in does on its next runs (see GENERIC_WORKER)."""
        (self.root / "worker-plan").write_text("".join(step + "\n" for step in steps))

    def expect(self, worker_id: str = UDID, serial: str = UDID, **config: object) -> None:
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
        }))

    def run(self, script: str, env: Mapping[str, str], **extra: str) -> subprocess.CompletedProcess[str]:
        full = {
            "PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.home), "SANDBOX": str(self.root),
            "PAYLOAD_TEST_ROOT": str(self.root), "HostIP": HOST_IP, "LANG": "C.UTF-8", **LT_ENV, **env, **extra,
        }
        return subprocess.run(["bash", script], cwd=self.job, env=full, capture_output=True, text=True, timeout=60,
                              umask=JOB_UMASK)

    def json(self, name: str) -> dict:
        return json.loads((self.root / name).read_text())

    def calls(self) -> list[str]:
        log = self.root / "calls.log"
        return log.read_text().splitlines() if log.exists() else []
