#!/usr/bin/env bash
# pre: installs the Taskcluster worker (generic-worker, insecure engine) and worker-runner for this job.
# Inputs (job env): TC_VERSION (Taskcluster release, without "v"), TC_DIR (default ~/taskcluster).
set -euo pipefail
TC_VERSION="${TC_VERSION:?TC_VERSION is not set}"
TC_DIR="${TC_DIR:-$HOME/taskcluster}"
TC_BIN="$TC_DIR/v$TC_VERSION"
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "setup: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
base="https://github.com/taskcluster/taskcluster/releases/download/v$TC_VERSION"
mkdir -p "$TC_BIN" "$TC_DIR/tasks" "$TC_DIR/caches" "$TC_DIR/downloads"
chmod 0700 "$TC_DIR"

fetch() {  # fetch <release asset prefix> <installed name>
  local dest="$TC_BIN/$2"
  [ -x "$dest" ] && return 0
  curl -fsSL --retry 3 -o "$dest.part" "$base/$1-linux-$arch"
  chmod 0755 "$dest.part"
  mv "$dest.part" "$dest"
}
fetch generic-worker-insecure generic-worker
fetch start-worker start-worker
fetch livelog livelog
fetch taskcluster-proxy taskcluster-proxy

[ -f "$TC_DIR/ed25519.key" ] || "$TC_BIN/generic-worker" new-ed25519-keypair --file "$TC_DIR/ed25519.key"
"$TC_BIN/generic-worker" --short-version
adb devices || true
