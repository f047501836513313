#!/usr/bin/python3
"""The task wrapper: every Firefox task for a lambda worker runs `./run-task -- /home/ltuser/taskcluster/script.py
<command...>`. setup.sh installs this file at exactly that path (0755); it runs under the system python3, as
run-task does, with the standard library only (adb is run as a program).

In order: reads scriptvars.json (written by setup.sh next to this file); gives the command the task's environment
plus the Android SDK's tools on PATH, NEED_XVFB=false, DEBUG=* and the phone's names from scriptvars; prints the
LambdaTest job number and the job's link; checks that adb sees exactly one USB phone, the job's (after `adb connect`
when DEVICE_SERIAL ends in :5555, the power-test case); cleans the phone; sets its timezone to UTC when it is
rooted (both best effort: a failure is a warning); runs the command, its output streamed as it comes; exits with the
command's exit status.

A host that is not right for the task (no phone, two phones, another phone, no scriptvars.json) prints one
`TEST-UNEXPECTED-FAIL | lambdatest | ...` line and exits 1 without running the command.

`script.py --check-host` applies the same rule and nothing else: it prints DEVICE_SERIAL and exits 0 on a host the
wrapper accepts, else one line on stderr and exits 1. run-worker.sh and setup.sh run it, so that no worker starts
(and claims a task only to fail it) on a host where the wrapper would fail every task.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))  # /home/ltuser/taskcluster on a phone's host
SDK_PATHS = (os.path.join(HERE, "android-sdk-linux", "tools", "bin"),
             os.path.join(HERE, "android-sdk-linux", "platform-tools"))
FROM_SCRIPTVARS = ("DEVICE_NAME", "ANDROID_DEVICE", "DEVICE_SERIAL", "HOST_IP", "DEVICE_IP", "DOCKER_IMAGE_VERSION")
JOB_LINK = "https://hyperexecute.lambdatest.com/hyperexecute/task?jobId={}&taskId={}"
PHONE_PATHS = ("/data/local/tests", "/data/local/tmp/*", "/data/local/tmp/xpcb", "/sdcard/tests",
               "/sdcard/raptor-profile")
ADB_TIMEOUT = 60


class HostProblem(Exception):
    """The host cannot run the task; the message is the one line printed."""


def say(message):
    print("script.py: " + message, flush=True)


def adb(*args, timeout=ADB_TIMEOUT):
    """adb's output; a failure or timeout raises HostProblem."""
    try:
        done = subprocess.run(["adb", *args], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HostProblem("adb {} failed: {}".format(" ".join(args), type(exc).__name__)) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise HostProblem("adb {} exited {}: {}".format(" ".join(args), done.returncode, last))
    return done.stdout


def task_env(scriptvars):
    env = dict(os.environ)
    env["PATH"] = ":".join([env.get("PATH") or "/usr/local/bin:/usr/bin:/bin", *SDK_PATHS])
    env["NEED_XVFB"] = "false"
    for name in FROM_SCRIPTVARS:
        env[name] = scriptvars.get(name, "")
    env["DEBUG"] = "*"
    env.setdefault("HOME", HERE)
    return env


def check_phone(serial):
    """Exactly one phone attached over USB (production counts USB devices only), and it is the job's:
    DEVICE_SERIAL itself, or, for a serial ending in :5555 (power tests: the framework switched the phone to adb
    over tcp), a phone adb then lists at that address too."""
    if not serial:
        raise HostProblem("DEVICE_SERIAL is empty in scriptvars.json")
    network = serial.endswith(":5555")
    if network:
        adb("connect", serial)
    listed, usb = [], []
    for line in adb("devices", "-l").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 2 and fields[1] == "device":
            listed.append(fields[0])
            if any(f.startswith("usb:") for f in fields[2:]):
                usb.append(fields[0])
    if len(usb) != 1:
        raise HostProblem("Must have exactly one connected Android USB device. {} found: {}".format(
            len(usb), " ".join(usb) or "none"))
    if network and serial not in listed:
        raise HostProblem("adb connect {} attached no phone".format(serial))
    if not network and usb[0] != serial:
        raise HostProblem("the attached phone {} is not this job's ({})".format(usb[0], serial))


def prepare_phone(serial):
    """Clean the phone of earlier tasks' files, and set it to UTC when it is rooted."""
    adb("-s", serial, "shell", "rm -rf " + " ".join(PHONE_PATHS))
    if "uid=0(" in adb("-s", serial, "shell", "id"):
        adb("-s", serial, "shell", "setprop persist.sys.timezone UTC")
    elif "uid=0(" in adb("-s", serial, "shell", "su -c id 2>/dev/null || true"):
        adb("-s", serial, "shell", "su -c 'setprop persist.sys.timezone UTC'")
    else:
        say("the phone is not rooted: its timezone is left as it is")


def run(command, env):
    """The command's exit status; its stdout and stderr are this process's, so they stream as they come."""
    say("running command: " + " ".join(command))
    sys.stdout.flush()
    try:
        status = subprocess.call(command, env=env)
    except OSError as exc:
        print("TEST-UNEXPECTED-FAIL | lambdatest | cannot run {}: {}".format(command[0], exc.strerror), flush=True)
        return 127
    say("command finished with status {}".format(status))
    return 128 - status if status < 0 else status  # killed by a signal: the shell's convention


def read_scriptvars():
    path = os.path.join(HERE, "scriptvars.json")
    try:
        with open(path, encoding="utf-8") as vars_file:
            return json.load(vars_file)
    except (OSError, ValueError) as exc:
        raise HostProblem("cannot read {}: {}".format(path, exc)) from None


def check_host():
    """--check-host: the rule main() applies before a task, alone."""
    try:
        serial = read_scriptvars().get("DEVICE_SERIAL", "")
        check_phone(serial)
    except HostProblem as problem:
        print("script.py --check-host: the task wrapper would fail every task here: {}".format(problem),
              file=sys.stderr)
        return 1
    print(serial)
    return 0


def main(argv):
    command = argv[1:]
    if command == ["--check-host"]:
        return check_host()
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("usage: script.py <command> [<argument>...] | script.py --check-host", file=sys.stderr)
        return 2
    try:
        scriptvars = read_scriptvars()
        env = task_env(scriptvars)
        print("LambdaTest job number: {}".format(scriptvars.get("HYE_JOB_NUMBER", "")))
        print("LambdaTest job: " + JOB_LINK.format(scriptvars.get("JOB_ID", ""), scriptvars.get("TASK_ID", "")),
              flush=True)
        serial = env["DEVICE_SERIAL"]
        check_phone(serial)
    except HostProblem as problem:
        print("TEST-UNEXPECTED-FAIL | lambdatest | {}".format(problem), flush=True)
        return 1
    try:
        prepare_phone(serial)
    except HostProblem as problem:  # best effort, as production's: the task may still pass
        say("WARNING: preparing the phone: {}".format(problem))
    return run(command, env)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
