#!/usr/bin/env bash
# pre: prepares the phone's host as Firefox's Android test tasks expect, installs the Taskcluster worker
# (generic-worker, insecure engine, with worker-runner, livelog and taskcluster-proxy) of release TC_VERSION and
# the task wrapper at /home/ltuser/taskcluster/script.py, and writes scriptvars.json (0600) from the host's
# environment. What it downloads is downloads.txt (for this host's arch); each file must have its sha256 in
# checksums.sha256: a file with none is refused before anything changes (unless the pool sets
# allow_unpinned_downloads), a file whose checksum differs is refused. Where each file goes is said here.
# Job env: TC_VERSION (release without "v"), TC_ALLOW_UNPINNED, TC_WORKER_ID (the phone's UDID, may be empty),
# TC_WORKER_TYPE, TC_WORKER_GROUP; HostIP (set by LambdaTest); the scriptvars names LambdaTest sets.
set -euo pipefail
SCRIPT_NAME=setup
. "$(dirname "$0")/lib.sh"

TC_VERSION="${TC_VERSION:?TC_VERSION is not set}"
PYTHON_VERSION=3.12                                     # the yaml's runtime installs it
MERCURIAL_VERSION=7.0.2
TASK_PYTHON_PACKAGES=(zstandard mozdevice google-cloud-logging)  # production's, in both interpreters
[ "$HOME/taskcluster" = "$TC_DIR" ] ||
  die "HOME is $HOME, not ${TC_DIR%/taskcluster}: Firefox's tasks run $TC_DIR/script.py, so the job must run as ltuser"
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "unsupported machine $(uname -m)" ;;
esac

# destination <name>: where a file of downloads.txt goes (fails for a name setup has no place for).
destination() {
  case "$1" in
    v"$TC_VERSION"/generic-worker-insecure-linux-"$arch") echo "$TC_DIR/generic-worker" ;;
    v"$TC_VERSION"/start-worker-linux-"$arch") echo "$TC_DIR/start-worker" ;;
    v"$TC_VERSION"/livelog-linux-"$arch") echo "$TC_DIR/livelog" ;;
    v"$TC_VERSION"/taskcluster-proxy-linux-"$arch") echo "$TC_DIR/taskcluster-proxy" ;;
    robustcheckout.py | tooltool.py) echo "$HOME/$1" ;;
    commandlinetools-linux-*_latest.zip) echo "$TC_DIR/$1" ;;
    *) return 1 ;;
  esac
}
read_downloads "$TC_VERSION" "$arch"
declare -A dest_of=()
for name in "${DOWNLOADS[@]}"; do
  dest_of[$name]="$(destination "$name")" || die "downloads.txt lists $name, which setup.sh has no place for"
done
for wanted in generic-worker start-worker livelog taskcluster-proxy robustcheckout.py tooltool.py; do
  [[ " ${dest_of[*]} " == *"/$wanted "* ]] || die "downloads.txt lists no $wanted for v$TC_VERSION on $arch"
done
sdk_zip=""
for name in "${DOWNLOADS[@]}"; do [[ $name == *.zip ]] && sdk_zip="${dest_of[$name]}"; done
[ -n "$sdk_zip" ] || die "downloads.txt lists no Android SDK command-line tools zip"
require_pins "${DOWNLOADS[@]}"

serial="$(phone_serial)" || die "adb sees no phone of this job (TC_WORKER_ID '${TC_WORKER_ID:-}')"
[ -n "${HostIP:-}" ] || die "HostIP (set by LambdaTest) is empty: the tasks need HOST_IP"

say "system packages"
as_root apt-get update -y -q
as_root apt-get install -y -q --no-install-recommends gettext-base libgtk-3-0 usbutils

say "python packages of the tasks into $SYSTEM_PYTHON (run-task and fetch-content run under it)"
# PIP_BREAK_SYSTEM_PACKAGES: pip 23+ refuses the system interpreter without it (PEP 668); older pips ignore it.
as_root env PIP_BREAK_SYSTEM_PACKAGES=1 "$SYSTEM_PYTHON" -m pip install --quiet --disable-pip-version-check \
  "${TASK_PYTHON_PACKAGES[@]}"

say "python $PYTHON_VERSION virtualenv $VENV"
python="$(command -v "python$PYTHON_VERSION" || true)"
[ -n "$python" ] || die "python$PYTHON_VERSION is not installed (the yaml's runtime should provide it)"
"$python" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
  "mercurial==$MERCURIAL_VERSION" "${TASK_PYTHON_PACKAGES[@]}"
"$VENV/bin/hg" --version | grep -qF "version $MERCURIAL_VERSION" || die "hg is not mercurial $MERCURIAL_VERSION"
for interpreter in "$SYSTEM_PYTHON" "$VENV/bin/python"; do
  "$interpreter" -c 'import zstandard, mozdevice' >/dev/null 2>&1 ||
    die "$interpreter cannot import zstandard and mozdevice: the tasks' toolchain fetches and adb calls would fail"
done
printf '[extensions]\nsparse =\n' > "$HOME/.hgrc"

say "Taskcluster v$TC_VERSION ($arch) into $TC_DIR, and the other downloads"
mkdir -p "$TC_DIR/tasks" "$TC_DIR/caches" "$TC_DIR/downloads"
chmod 0700 "$TC_DIR"
for name in "${DOWNLOADS[@]}"; do
  download "$name" "${URL_OF[$name]}" "${dest_of[$name]}"
done
if [ ! -f "$TC_DIR/ed25519.key" ]; then
  (umask 077 && "$TC_DIR/generic-worker" new-ed25519-keypair --file "$TC_DIR/ed25519.key")
fi
install -m 0755 "$PAYLOAD_DIR/script.py" "$TC_DIR/script.py"              # the task wrapper, at the fixed path
install -m 0755 "$PAYLOAD_DIR/record-exit.sh" "$TC_DIR/generic-worker-run"  # the runner file's worker.path

say "Android SDK command-line tools into $TC_DIR/android-sdk-linux/tools"
sdk="$TC_DIR/android-sdk-linux/tools"
unpacked="$(mktemp -d)"
"$SYSTEM_PYTHON" -m zipfile -e "$sdk_zip" "$unpacked"
mkdir -p "$sdk/bin" "$sdk/lib"
cp -R "$unpacked/cmdline-tools/bin/." "$sdk/bin/"
cp -R "$unpacked/cmdline-tools/lib/." "$sdk/lib/"
chmod -R u+x "$sdk/bin"
rm -rf "$unpacked"

say "scriptvars.json: the host's variables for the task wrapper and the worker"
export DEVICE_NAME="$serial" DEVICE_SERIAL="$serial" ANDROID_SERIAL="$serial"  # mozdevice picks this phone
export HOST_IP="$HostIP" HOSTNAME="${HOSTNAME:-$(uname -n)}"
export PATH="$TC_DIR:$TC_DIR/android-sdk-linux/tools/bin:$VENV/bin:$PATH"
(umask 077 && "$SYSTEM_PYTHON" - "${SCRIPTVARS[@]}" > "$TC_DIR/scriptvars.json.part" <<'PY'
import json, os, sys
values = {name: os.environ.get(name, "") for name in sys.argv[1:]}
if values["PowerMeterSerial"]:  # power tests pick their USB power meter by this name
    values["USB_POWER_METER_SERIAL_NUMBER"] = values["PowerMeterSerial"]
json.dump(values, sys.stdout, indent=1)
PY
)
mv -f "$TC_DIR/scriptvars.json.part" "$TC_DIR/scriptvars.json"
"$SYSTEM_PYTHON" "$TC_DIR/script.py" --check-host >/dev/null ||  # the wrapper's own rule, as run-worker.sh applies it
  die "phone $serial: the task wrapper would fail every task on this host"

say "phone $serial: kept awake"
adb -s "$serial" shell svc power stayon true
