#!/usr/bin/env bash
# testRunnerCommand: runs one Taskcluster task on this job's phone. Renders worker-runner.yaml.template into
# $TC_DIR/runner.yaml (0600) and runs worker-runner (start-worker, standalone provider), which starts
# generic-worker as worker lambda/<phone UDID>; the worker runs one task (numberOfTasksToRun 1) and exits, or
# exits 68 after TC_IDLE_TIMEOUT seconds without a task. The runner file goes as soon as the worker exits.
#
# start-worker's environment is EXACTLY scriptvars.json's variables (written by setup.sh), nothing of the job's:
# generic-worker's insecure engine copies its whole environment into every task and logs it, so the pool's
# client id, the job's settings and whatever LambdaTest sets would reach every task's log. The worker itself
# needs only HOME (its home), USER and PATH (its tasks find run-task's tools, hg, adb and the SDK there), all
# three scriptvars names; its credentials and settings come from the runner file, not the environment.
#
# Exit status (HyperExecute marks the job by it): 0 when the worker ran its task (whatever the task's result) or
# idled out (generic-worker's 68: no task came; the job ends `completed`, a warm worker's normal end); the
# worker's own code for anything else (64 config not loadable, 69 panic, 73 invalid config: the job ends
# `failed`), read from generic-worker.exit (record-exit.sh: start-worker itself exits 1 for all of them);
# start-worker's status when the worker never started.
#
# Before anything else it applies the task wrapper's own rule (script.py --check-host: exactly one USB phone, and
# it is scriptvars' DEVICE_SERIAL; after `adb connect` for a :5555 serial) and exits 1 without starting the worker
# where the wrapper would fail every task: a worker there would claim a task only to burn it.
#
# Superseded re-run, kept for parity with production's run_gw.py: when the worker exited 0 and its output says
# its task "has been superseded", tasks-resolved-count.txt is removed and the worker started once more (one
# re-run at most; production's is unbounded). It cannot fire on v87: neither generic-worker v87 nor
# worker-runner v87 prints "superseded" (their sources have no such message), and a task's own output goes to
# its task log, not to the worker's. The global_timeout bound does not count a re-run: one at most keeps
# what it leaves out to one more idle wait and task.
#
# Job env: TASKCLUSTER_ROOT_URL, TASKCLUSTER_CLIENT_ID, TASKCLUSTER_ACCESS_TOKEN, TC_WORKER_POOL_ID,
# TC_PROVISIONER_ID, TC_WORKER_TYPE, TC_WORKER_GROUP, TC_WORKER_ID (empty when the launch named no phone: the
# phone's adb serial is used), TC_IDLE_TIMEOUT, TC_GET_SECRETS, TC_WST_AUDIENCE, TC_WST_SERVER_URL.
set -euo pipefail
SCRIPT_NAME=run-worker
. "$(dirname "$0")/lib.sh"
IDLE_OUT=68                                           # generic-worker v87 usage.go: idleTimeoutSecs passed
RUNS_ALLOWED=2                                        # the first run and one superseded re-run

[ -f "$TC_DIR/scriptvars.json" ] || die "no $TC_DIR/scriptvars.json: setup.sh did not finish"
serial="$("$SYSTEM_PYTHON" "$TC_DIR/script.py" --check-host)" ||
  die "no worker started (TC_WORKER_ID '${TC_WORKER_ID:-}')"
export TC_WORKER_ID="${TC_WORKER_ID:-$serial}"
mapfile -d '' worker_env < <("$SYSTEM_PYTHON" -c '
import json, sys
for name, value in json.load(open(sys.argv[1], encoding="utf-8")).items():
    sys.stdout.write(f"{name}={value}\0")' "$TC_DIR/scriptvars.json")
[ "${#worker_env[@]}" -gt 0 ] || die "$TC_DIR/scriptvars.json holds no variable"

adb -s "$serial" shell svc power stayon true
window="$(adb -s "$serial" shell dumpsys window 2>/dev/null | grep mFocusedWindow || true)"
if [ -z "$window" ] || [[ $window == *NotificationShade* ]]; then
  adb -s "$serial" shell input keyevent 82  # the screen sleeps: a menu key press wakes it
fi

output="$(mktemp)"
trap 'remove_credentials; rm -f "$output"' EXIT
# Owner-only for the runner file alone (it holds the token): the worker and its tasks keep the job's umask, as in
# production (files a task writes, and pushes to the phone with adb, keep their usual modes).
(umask 077 && render_runner "$PAYLOAD_DIR/worker-runner.yaml.template" > "$TC_DIR/runner.yaml")
say "worker $TC_WORKER_GROUP/$TC_WORKER_ID of $TC_WORKER_POOL_ID on phone $serial"
cd "$TC_DIR"  # generic-worker keeps tasks-resolved-count.txt in its working directory
runs=0
while true; do
  runs=$((runs + 1))
  rm -f "$TC_DIR/tasks-resolved-count.txt" "$TC_DIR/generic-worker.exit"
  set +e
  env -i "${worker_env[@]}" "$TC_DIR/start-worker" "$TC_DIR/runner.yaml" 2>&1 | tee "$output"
  runner=${PIPESTATUS[0]}
  set -e
  worker="$(cat "$TC_DIR/generic-worker.exit" 2>/dev/null || true)"
  if [ "$worker" = 0 ] && grep -qi "has been superseded" "$output" && [ "$runs" -lt "$RUNS_ALLOWED" ]; then
    say "the task was superseded: starting the worker again (run $((runs + 1)) of at most $RUNS_ALLOWED)"
    continue
  fi
  break
done
case "$worker" in
  0) say "the worker ran its task" ;;
  "$IDLE_OUT") say "idle-out: no task came within idleTimeoutSecs (generic-worker exited $IDLE_OUT); the job ends normally" ;;
  "") echo "run-worker: generic-worker never ran: start-worker exited $runner" >&2
      exit "$([ "$runner" = 0 ] && echo 1 || echo "$runner")" ;;
  *) echo "run-worker: generic-worker exited $worker (64 config not loadable, 69 panic, 73 invalid config)" >&2
     exit "$worker" ;;
esac
