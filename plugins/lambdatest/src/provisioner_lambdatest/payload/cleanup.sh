#!/usr/bin/env bash
# post: removes the worker's credentials, reboots the phone (production's way of handing the next job a clean
# phone) and waits until adb sees it booted again. A task may leave the phone rebooting or offline, so adb is
# asked again for it with back-off (2, 4, 8, ... at most 30 s between tries). Finding the phone and its reboot
# share one deadline: TC_REBOOT_WAIT seconds (default 300; the pool's reboot_wait, a term of the global_timeout
# bound). Exits 1 when the phone is not found or not back in time (the credentials are gone by then).
set -uo pipefail
SCRIPT_NAME=cleanup
. "$(dirname "$0")/lib.sh"

remove_credentials
wait_secs="${TC_REBOOT_WAIT:-300}"
started=$SECONDS slept=0
# left: seconds until the deadline. The time slept counts as well as the clock, so the wait ends even where a
# sleep returns at once (the payload's sandbox tests put a recording sleep on PATH).
left() {
  local used=$((SECONDS - started))
  [ "$slept" -gt "$used" ] && used=$slept
  echo $((wait_secs - used))
}
# pause <secs>: sleeps, never past the deadline.
pause() {
  local secs=$1 remaining
  remaining="$(left)"
  [ "$secs" -gt "$remaining" ] && secs=$remaining
  [ "$secs" -gt 0 ] || return 0
  sleep "$secs"
  slept=$((slept + secs))
}

delay=2
until serial="$(phone_serial)"; do
  [ "$(left)" -gt 0 ] || die "adb listed no phone of this job within ${wait_secs}s (TC_REBOOT_WAIT): not rebooted"
  say "adb lists no phone of this job (rebooting or offline?): asking again in ${delay}s"
  pause "$delay"
  delay=$((delay * 2 > 30 ? 30 : delay * 2))
done
say "rebooting phone $serial"
adb -s "$serial" reboot
remaining="$(left)"
timeout "$((remaining > 0 ? remaining : 1))" adb -s "$serial" wait-for-disconnect >/dev/null 2>&1 || true
while true; do
  booted="$(timeout 30 adb -s "$serial" shell getprop sys.boot_completed 2>/dev/null | tr -d '\r' || true)"
  if [ "$booted" = 1 ]; then
    say "phone $serial is back"
    exit 0
  fi
  [ "$(left)" -gt 0 ] || die "phone $serial not back from its reboot within ${wait_secs}s (TC_REBOOT_WAIT)"
  pause 5
done
