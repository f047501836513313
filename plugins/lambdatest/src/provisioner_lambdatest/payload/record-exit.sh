#!/bin/bash
# The runner file's worker.path (setup.sh installs it as $TC_DIR/generic-worker-run): runs generic-worker with
# worker-runner's arguments and records the worker's own exit code in generic-worker.exit next to it. start-worker
# exits 1 for ANY non-zero worker exit, so run-worker.sh could not tell an idle-out (68) from a crash (69) or a
# refused config (64, 73) without it (generic-worker v87 usage.go). The exit code is generic-worker's documented
# interface; its log wording is not, so the output is not parsed for this. stdin and stdout stay generic-worker's
# (worker-runner talks to it over them). Not `exec`: the code is written after the worker exits.
dir="$(dirname "$0")"
"$dir/generic-worker" "$@"
code=$?
echo "$code" > "$dir/generic-worker.exit"
exit "$code"
