#!/usr/bin/env bash
# post: removes the worker's credentials and the task directories left on the host.
TC_DIR="${TC_DIR:-$HOME/taskcluster}"
rm -f "$TC_DIR/runner.yaml" "$TC_DIR/generic-worker.json"
rm -rf "$TC_DIR/tasks" "$TC_DIR/downloads"
exit 0
