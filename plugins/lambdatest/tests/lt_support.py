"""Constants and the fake ``hyperexecute`` CLI shared by the LambdaTest plugin's tests."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
NOW = 1746763200.0  # 2025-05-09T04:00:00Z, just after the reference jobs
LT_USER = "lt-test-user"
LT_KEY = "lt-secret-key-0123456789"
TC_CLIENT = "project/autophone/a55"
TC_TOKEN = "tc-secret-token-abcdefghij"
SECRETS = (LT_KEY, TC_TOKEN)
ENVIRON = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOME": "/nonexistent-home",
    # real credentials only when re-recording cassettes (LT_RECORD=1), never by accident
    "LT_USERNAME": os.environ["LT_USERNAME"] if os.environ.get("LT_RECORD") else LT_USER,
    "LT_ACCESS_KEY": os.environ["LT_ACCESS_KEY"] if os.environ.get("LT_RECORD") else LT_KEY,
    "TC_CLIENT_A55": TC_CLIENT,
    "TC_TOKEN_A55": TC_TOKEN,
    "UNRELATED_SECRET": "must-not-reach-the-cli",
}



FAKE_CLI = r'''#!{python}
"""A stand-in for the hyperexecute CLI: records what it was given and behaves as ./mode says."""
import fcntl, json, os, sys
from pathlib import Path

here = Path(__file__).parent
mode = (here / "mode").read_text().strip()
argv = sys.argv[1:]
config = argv[argv.index("--config") + 1] if "--config" in argv else None
lock = os.open((here / "lockpath").read_text(), os.O_RDONLY)
try:
    fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    lock_state = "free"
except BlockingIOError:
    lock_state = "held"
record = {
    "argv": sys.argv, "env": dict(os.environ), "cwd": os.getcwd(), "files": sorted(os.listdir(".")),
    "yaml": Path(config).read_text() if config else None, "lock": lock_state,
}
(here / "record.json").write_text(json.dumps(record))
key = os.environ.get("LT_ACCESS_KEY", "")
link = "https://hyperexecute.lambdatest.com/hyperexecute/task?jobId=0f8fad5b-d9cb-469f-a165-70867728950e"
if "--validate" in argv:
    if mode == "no-validate":
        print("Error: unknown flag: --validate", file=sys.stderr)
        sys.exit(1)
    if mode == "invalid":
        print(f"Error: invalid yaml: framework.args.region; key {key}", file=sys.stderr)
        sys.exit(1)
    print("hyperexecute.yaml is valid")
    sys.exit(0)
if mode in ("hang", "hang-stubborn"):  # stays this script (its path in /proc/<pid>/cmdline) until killed
    import signal, time
    if mode == "hang-stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ready", flush=True)
    time.sleep(30)
if mode == "ok":
    print("\x1b[32mUploading job files\x1b[0m")
    print("Job ID: 0f8fad5b-d9cb-469f-a165-70867728950e")
    print("Job Link: https://hyperexecute.lambdatest.com/hyperexecute/task?jobId=0f8fad5b-d9cb-469f-a165-70867728950e")
elif mode == "numbered":  # a new job id on each launch
    count = here / "count"
    number = int(count.read_text()) + 1 if count.exists() else 1
    count.write_text(str(number))
    print(f"Job Link: https://hyperexecute.lambdatest.com/hyperexecute/task?jobId=0f8fad5b-d9cb-469f-a165-{number:012d}")
elif mode == "link":  # the form third-party wrappers parse: only the dashboard link
    print("Uploading job files ... done")
    print(f"Job link: {link}")
elif mode == "ansi":  # colour codes around the id and the link
    print("\x1b[1mJob ID:\x1b[0m \x1b[36m0f8fad5b-d9cb-469f-a165-70867728950e\x1b[0m")
    print(f"\x1b[4m{link}\x1b[24m")
elif mode == "ansi-link":
    print(f"See \x1b[1;34m{link}\x1b[0m")
elif mode == "fail":
    token = json.loads(record["yaml"])["env"]["TASKCLUSTER_ACCESS_TOKEN"]
    Path("hyperexecute-cli.log").write_text(f"auth with {key} and {token}\n")
    print(f"Error: access key {key} refused; env token {token}", file=sys.stderr)
    sys.exit(2)
elif mode == "fail-with-id":
    print("Job ID: 11111111-2222-3333-4444-555555555555")
    print("Error: upload interrupted")
    sys.exit(1)
elif mode == "nojob":
    print("Validating yaml ... done")
elif mode == "update":
    print("HyperExecute CLI updated to 1.2.3")
elif mode == "update-fail":
    print(f"update failed for {key}")
    sys.exit(3)
'''


class FakeCli:
    """The fake CLI: ``mode`` says how it behaves, ``record()`` tells what it was given."""

    def __init__(self, directory: Path, lock_path: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "hyperexecute"
        self.path.write_text(FAKE_CLI.replace("{python}", sys.executable))
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR)
        (directory / "lockpath").write_text(str(lock_path))
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock_path.touch()
        self.mode = "ok"

    @property
    def mode(self) -> str:
        return (self.path.parent / "mode").read_text()

    @mode.setter
    def mode(self, value: str) -> None:
        (self.path.parent / "mode").write_text(value)

    def ran(self) -> bool:
        return (self.path.parent / "record.json").exists()

    def record(self) -> dict[str, Any]:
        return json.loads((self.path.parent / "record.json").read_text())
