#!/usr/bin/env bash
# testRunnerCommand: runs one Taskcluster task on this job's phone. Renders worker-runner.yaml.template into
# $TC_DIR/runner.yaml (0600) and runs worker-runner (start-worker, standalone provider), which starts
# generic-worker as worker lambda/<phone UDID>; the worker runs one task (numberOfTasksToRun 1) and exits, or
# exits after TC_IDLE_TIMEOUT seconds without a task. The runner file goes as soon as the worker exits.
# Job env: TASKCLUSTER_ROOT_URL, TASKCLUSTER_CLIENT_ID, TASKCLUSTER_ACCESS_TOKEN, TC_WORKER_POOL_ID,
# TC_PROVISIONER_ID, TC_WORKER_TYPE, TC_WORKER_GROUP, TC_WORKER_ID (empty when the launch named no phone: the
# phone's adb serial is used), TC_IDLE_TIMEOUT, TC_GET_SECRETS, TC_WST_AUDIENCE, TC_WST_SERVER_URL; HostIP
# (set by LambdaTest).
set -euo pipefail
SCRIPT_NAME=run-worker
. "$(dirname "$0")/lib.sh"

serial="$(phone_serial)" || die "adb sees no phone of this job (TC_WORKER_ID '${TC_WORKER_ID:-}')"
export TC_WORKER_ID="${TC_WORKER_ID:-$serial}"
export ANDROID_SERIAL="$serial" DEVICE_SERIAL="$serial"  # mozdevice picks this phone when several are attached
[ -n "${HostIP:-}" ] || die "HostIP (set by LambdaTest) is empty: the tasks need HOST_IP"
export HOST_IP="$HostIP"
export PATH="$TC_DIR:$TC_DIR/android-sdk-linux/tools/bin:$VENV/bin:$PATH"

adb -s "$serial" shell svc power stayon true
window="$(adb -s "$serial" shell dumpsys window 2>/dev/null | grep mFocusedWindow || true)"
if [ -z "$window" ] || [[ $window == *NotificationShade* ]]; then
  adb -s "$serial" shell input keyevent 82  # the screen sleeps: a menu key press wakes it
fi

trap remove_credentials EXIT
umask 077
render_runner "$PAYLOAD_DIR/worker-runner.yaml.template" > "$TC_DIR/runner.yaml"
say "worker $TC_WORKER_GROUP/$TC_WORKER_ID of $TC_WORKER_POOL_ID on phone $serial"
"$TC_DIR/start-worker" "$TC_DIR/runner.yaml"
