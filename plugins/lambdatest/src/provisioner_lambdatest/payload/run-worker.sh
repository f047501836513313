#!/usr/bin/env bash
# testRunnerCommand: renders worker-runner.yaml.template and runs worker-runner (standalone provider), which
# starts generic-worker to claim one task of the pool's queue as worker lambda/<phone UDID>.
# Inputs (job env): TASKCLUSTER_ROOT_URL, TASKCLUSTER_CLIENT_ID, TASKCLUSTER_ACCESS_TOKEN, TC_WORKER_POOL_ID,
# TC_WORKER_GROUP, TC_WORKER_ID (empty for a selector launch: the phone's adb serial is used), TC_VERSION,
# TC_IDLE_TIMEOUT (seconds without a task before the worker exits).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export TC_DIR="${TC_DIR:-$HOME/taskcluster}"
export TC_BIN="$TC_DIR/v${TC_VERSION:?TC_VERSION is not set}"
export TC_IDLE_TIMEOUT="${TC_IDLE_TIMEOUT:-300}"
export TC_WORKER_GROUP="${TC_WORKER_GROUP:-lambda}"
if [ -z "${TC_WORKER_ID:-}" ]; then
  TC_WORKER_ID="${ANDROID_SERIAL:-$(adb get-serialno 2>/dev/null || true)}"
fi
export TC_WORKER_ID
[ -n "$TC_WORKER_ID" ] || { echo "run-worker: no phone UDID (TC_WORKER_ID, ANDROID_SERIAL, adb)" >&2; exit 1; }
export ANDROID_SERIAL="${ANDROID_SERIAL:-$TC_WORKER_ID}"

config="$(cat "$here/worker-runner.yaml.template")"
for name in TASKCLUSTER_ROOT_URL TASKCLUSTER_CLIENT_ID TASKCLUSTER_ACCESS_TOKEN TC_WORKER_POOL_ID \
    TC_WORKER_GROUP TC_WORKER_ID TC_DIR TC_BIN TC_IDLE_TIMEOUT; do
  value="${!name:?$name is not set}"
  config="${config//@${name}@/"$value"}"
done
umask 077
printf '%s\n' "$config" > "$TC_DIR/runner.yaml"
echo "run-worker: worker $TC_WORKER_GROUP/$TC_WORKER_ID of $TC_WORKER_POOL_ID"
exec "$TC_BIN/start-worker" "$TC_DIR/runner.yaml"
