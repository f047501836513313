#!/usr/bin/env bash
# post: removes the worker's credentials, reboots the phone (production's way of handing the next job a clean
# phone) and waits, at most TC_REBOOT_WAIT seconds (default 300), until adb sees it booted again.
# Exits 1 when the phone is not back in time (the credentials are gone by then).
set -uo pipefail
SCRIPT_NAME=cleanup
. "$(dirname "$0")/lib.sh"

remove_credentials
serial="$(phone_serial)" || die "adb sees no phone of this job: not rebooted"
wait_secs="${TC_REBOOT_WAIT:-300}"
deadline=$((SECONDS + wait_secs))
say "rebooting phone $serial"
adb -s "$serial" reboot
timeout "$wait_secs" adb -s "$serial" wait-for-disconnect >/dev/null 2>&1 || true
while true; do
  booted="$(timeout 30 adb -s "$serial" shell getprop sys.boot_completed 2>/dev/null | tr -d '\r' || true)"
  if [ "$booted" = 1 ]; then
    say "phone $serial is back"
    exit 0
  fi
  [ "$SECONDS" -lt "$deadline" ] || die "phone $serial not back within ${wait_secs}s of its reboot"
  sleep 5
done
