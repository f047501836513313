# Shared by setup.sh (pre), run-worker.sh (testRunnerCommand) and cleanup.sh (post); sourced, never run.
# Job env it reads: TC_WORKER_ID (the phone's UDID; empty when the launch named no phone), TC_ALLOW_UNPINNED.
PAYLOAD_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Fixed paths of the phone's host: every Firefox task for a lambda worker runs
# /home/ltuser/taskcluster/script.py (LambdaTest's host user is ltuser), and run-task runs under /usr/bin/python3.
# PAYLOAD_TEST_ROOT is for the payload's sandbox tests ONLY (plugins/lambdatest/tests/payload_sandbox.py): a
# temporary directory standing for /, under which these paths then lie. The launcher refuses it in a pool's env.
ROOT="${PAYLOAD_TEST_ROOT:-}"
export TC_DIR="$ROOT/home/ltuser/taskcluster"         # worker binaries, config, key, tasks, script.py (on PATH)
SYSTEM_PYTHON="$ROOT/usr/bin/python3"                  # run-task's and fetch-content's interpreter
VENV="$ROOT/home/ltuser/venv"                          # python 3.12 virtualenv of the tasks' tools (hg, mozdevice)
CHECKSUMS="$PAYLOAD_DIR/checksums.sha256"
# The host's variables setup.sh writes into scriptvars.json (production's names): the task wrapper reads them,
# and they are start-worker's whole environment (run-worker.sh).
SCRIPTVARS=(ANDROID_DEVICE ANDROID_SERIAL DEVICE_IP DEVICE_NAME DEVICE_SERIAL DOCKER_IMAGE_VERSION HOME HOST_IP
  HOSTNAME HYE_JOB_NUMBER JOB_ID ORIGINAL_TASK_ID PATH PYTHONIOENCODING TASK_ID TC_WORKER_GROUP TC_WORKER_TYPE USER
  UserPorts PowerMeterSerial)

die() { echo "${SCRIPT_NAME:-payload}: $*" >&2; exit 1; }
say() { echo "${SCRIPT_NAME:-payload}: $*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

# phone_serial: the adb serial of the job's phone: TC_WORKER_ID when adb lists it, else the only phone adb
# lists. Unverified: that LambdaTest's UDID is the phone's adb serial; several phones and none ours fails.
# setup.sh finds the phone with it (then holds the host to the wrapper's rule, script.py --check-host), cleanup.sh
# finds the phone to reboot; run-worker.sh applies the wrapper's rule alone.
phone_serial() {
  local serials
  serials="$(adb devices 2>/dev/null | awk 'NR > 1 && $2 == "device" { print $1 }')"
  if [ -n "${TC_WORKER_ID:-}" ] && grep -qxF -- "$TC_WORKER_ID" <<<"$serials"; then
    echo "$TC_WORKER_ID"
  elif [ -n "$serials" ] && [ "$(grep -c . <<<"$serials")" = 1 ]; then
    echo "$serials"
  else
    return 1
  fi
}

# pinned_sum <name>: the sha256 checksums.sha256 lists for <name> (lines "<64 hex>  <name>"; # starts a comment).
pinned_sum() {
  awk -v name="$1" '$1 !~ /^#/ && length($1) == 64 && $1 ~ /^[0-9a-f]+$/ && $2 == name { print $1; exit }' "$CHECKSUMS"
}

# require_pins <name>...: refuses (before anything is changed) when a download has no checksum, unless the pool
# set allow_unpinned_downloads (TC_ALLOW_UNPINNED=true).
require_pins() {
  local name missing=()
  for name in "$@"; do [ -n "$(pinned_sum "$name")" ] || missing+=("$name"); done
  [ "${#missing[@]}" = 0 ] && return 0
  if [ "${TC_ALLOW_UNPINNED:-false}" = true ]; then
    echo "${SCRIPT_NAME:-payload}: WARNING: not pinned by checksums.sha256 (allow_unpinned_downloads): ${missing[*]}" >&2
    return 0
  fi
  die "no checksum in checksums.sha256 for: ${missing[*]}; refusing to download (fill them from the release's own checksums)"
}

# read_downloads <version> <arch>: downloads.txt's lines for them ({version}, {arch} filled in) into DOWNLOADS
# (names, in order) and URL_OF (name -> URL). The daemon reads the same file (provisioner_lambdatest.downloads).
declare -a DOWNLOADS=()
declare -A URL_OF=()
read_downloads() {
  local name url rest
  while read -r name url rest || [ -n "$name" ]; do  # a last line without newline counts too
    [[ -z $name || $name == \#* ]] && continue
    [[ -z $rest && $url == https://* ]] || die "downloads.txt: expected '<name> <https URL>', not: $name $url $rest"
    name="${name//\{version\}/$1}" url="${url//\{version\}/$1}"
    name="${name//\{arch\}/$2}" url="${url//\{arch\}/$2}"
    [ -n "${URL_OF[$name]+set}" ] || DOWNLOADS+=("$name")
    URL_OF[$name]="$url"
  done < "$PAYLOAD_DIR/downloads.txt"
}

sha256_of() { sha256sum "$1" | cut -d ' ' -f 1; }

# download <name> <url> <dest>: fetches <url> into <dest> (0755) unless <dest> already has the pinned checksum;
# a file whose checksum differs from the pinned one is refused.
download() {
  local name=$1 url=$2 dest=$3 want
  want="$(pinned_sum "$name")"
  if [ -n "$want" ] && [ -f "$dest" ] && [ "$(sha256_of "$dest")" = "$want" ]; then return 0; fi
  curl -fsSL --retry 3 -o "$dest.part" "$url" || { rm -f "$dest.part"; die "download of $name failed"; }
  if [ -n "$want" ] && [ "$(sha256_of "$dest.part")" != "$want" ]; then
    rm -f "$dest.part"
    die "checksum of $name differs from checksums.sha256: refused"
  fi
  chmod 0755 "$dest.part"
  mv -f "$dest.part" "$dest"
}

# render_runner <template>: the worker-runner config with every @NAME@ replaced by the variable's value escaped
# for a JSON string, and every @json:NAME@ by the value as a bare JSON literal (digits, true or false); in one
# pass, so a value is never read as a placeholder. provisioner_lambdatest.render.fill_runner does the same for
# the dry run; a test keeps the two in step.
render_runner() {
  local rest out="" name value placeholder
  rest="$(<"$1")"
  while [[ $rest =~ @(json:)?([A-Z][A-Z0-9_]*)@ ]]; do
    placeholder="${BASH_REMATCH[0]}" name="${BASH_REMATCH[2]}"
    [ -n "${!name+set}" ] || die "variable $name is not set"
    value="${!name}"
    [[ $value != *[[:cntrl:]]* ]] || die "variable $name holds a control character"
    if [ -n "${BASH_REMATCH[1]}" ]; then
      [[ $value =~ ^([0-9]+|true|false)$ ]] || die "variable $name must be digits, true or false"
    else
      value="${value//\\/\\\\}"
      value="${value//\"/\\\"}"
    fi
    out+="${rest%%"$placeholder"*}$value"
    rest="${rest#*"$placeholder"}"
  done
  printf '%s\n' "$out$rest"
}

# remove_credentials: the files holding the worker's Taskcluster token, and what its tasks left on this host.
remove_credentials() {
  rm -f "$TC_DIR/runner.yaml" "$TC_DIR/generic-worker.json" "$TC_DIR/generic-worker.exit"
  rm -rf "$TC_DIR/tasks" "$TC_DIR/downloads"
}
