#!/usr/bin/env bash
# pre: prepares the phone's host as Firefox's Android test tasks expect and installs the Taskcluster worker
# (generic-worker, insecure engine, with worker-runner, livelog and taskcluster-proxy) of release TC_VERSION.
# Every download must have its sha256 in checksums.sha256: a file with none is refused before anything changes
# (unless the pool sets allow_unpinned_downloads), a file whose checksum differs is refused.
# Job env: TC_VERSION (release without "v"), TC_ALLOW_UNPINNED, TC_WORKER_ID (the phone's UDID, may be empty).
set -euo pipefail
SCRIPT_NAME=setup
. "$(dirname "$0")/lib.sh"

TC_VERSION="${TC_VERSION:?TC_VERSION is not set}"
PYTHON_VERSION=3.12                                     # the yaml's runtime installs it
MERCURIAL_VERSION=7.0.2
# Production's sources; robustcheckout.py at a fixed mozilla-central revision.
ROBUSTCHECKOUT_URL="https://hg.mozilla.org/mozilla-central/raw-file/260e22f03e984e0ced16b6c5ff63201cdef0a1f6/testing/mozharness/external_tools/robustcheckout.py"
TOOLTOOL_URL="https://raw.githubusercontent.com/mozilla-platform-ops/mozilla-bitbar-docker/refs/heads/master/scripts/tooltool.py"
SDK_ZIP=commandlinetools-linux-13114758_latest.zip
SDK_URL="https://dl.google.com/android/repository/$SDK_ZIP"
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "unsupported machine $(uname -m)" ;;
esac
release="https://github.com/taskcluster/taskcluster/releases/download/v$TC_VERSION"
declare -A binaries=(  # installed name -> release asset
  [generic-worker]="generic-worker-insecure-linux-$arch" [start-worker]="start-worker-linux-$arch"
  [livelog]="livelog-linux-$arch" [taskcluster-proxy]="taskcluster-proxy-linux-$arch"
)
names=(robustcheckout.py tooltool.py "$SDK_ZIP")
for binary in "${!binaries[@]}"; do names+=("v$TC_VERSION/${binaries[$binary]}"); done
require_pins "${names[@]}"

say "system packages"
as_root apt-get update -y -q
as_root apt-get install -y -q --no-install-recommends gettext-base libgtk-3-0 usbutils

say "python $PYTHON_VERSION virtualenv $VENV"
python="$(command -v "python$PYTHON_VERSION" || true)"
[ -n "$python" ] || die "python$PYTHON_VERSION is not installed (the yaml's runtime should provide it)"
"$python" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
  "mercurial==$MERCURIAL_VERSION" zstandard mozdevice google-cloud-logging
"$VENV/bin/hg" --version | grep -qF "version $MERCURIAL_VERSION" || die "hg is not mercurial $MERCURIAL_VERSION"
printf '[extensions]\nsparse =\n' > "$HOME/.hgrc"

say "robustcheckout.py, tooltool.py"
download robustcheckout.py "$ROBUSTCHECKOUT_URL" "$HOME/robustcheckout.py"
download tooltool.py "$TOOLTOOL_URL" "$HOME/tooltool.py"

say "Taskcluster v$TC_VERSION ($arch) into $TC_DIR"
mkdir -p "$TC_DIR/tasks" "$TC_DIR/caches" "$TC_DIR/downloads"
chmod 0700 "$TC_DIR"
for binary in "${!binaries[@]}"; do
  download "v$TC_VERSION/${binaries[$binary]}" "$release/${binaries[$binary]}" "$TC_DIR/$binary"
done
if [ ! -f "$TC_DIR/ed25519.key" ]; then
  (umask 077 && "$TC_DIR/generic-worker" new-ed25519-keypair --file "$TC_DIR/ed25519.key")
fi

say "Android SDK command-line tools into $TC_DIR/android-sdk-linux/tools"
sdk="$TC_DIR/android-sdk-linux/tools"
download "$SDK_ZIP" "$SDK_URL" "$TC_DIR/$SDK_ZIP"
unpacked="$(mktemp -d)"
python3 -m zipfile -e "$TC_DIR/$SDK_ZIP" "$unpacked"
mkdir -p "$sdk/bin" "$sdk/lib"
cp -R "$unpacked/cmdline-tools/bin/." "$sdk/bin/"
cp -R "$unpacked/cmdline-tools/lib/." "$sdk/lib/"
chmod -R u+x "$sdk/bin"
rm -rf "$unpacked"

serial="$(phone_serial)" || die "adb sees no phone of this job"
say "phone $serial: kept awake"
adb -s "$serial" shell svc power stayon true
