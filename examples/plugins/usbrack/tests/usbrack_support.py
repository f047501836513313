"""The fake ``adb`` and the fake worker the usbrack plugin's tests run (scripts written into a directory)."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

DEVICES = """List of devices attached
R5CX10AAA01            device usb:1-1 product:a55xnsxx model:SM_A556B device:a55x transport_id:1
R5CX10AAA02            device usb:1-2 product:a55xnsxx model:SM_A556B device:a55x transport_id:2
1A2B3C4D5E             device usb:1-3 product:oriole model:Pixel_6 device:oriole transport_id:3
EMULATOR-BAD!          device transport_id:4
ZY22ABCDEF             unauthorized usb:1-4 transport_id:5
"""

FAKE_ADB = r'''#!{python}
"""A stand-in for adb: ``devices -l`` prints ./devices.txt; a ./fail file makes it fail."""
import sys
from pathlib import Path
here = Path(__file__).parent
if (here / "fail").exists():
    print("error: could not connect to daemon", file=sys.stderr)
    sys.exit(1)
assert sys.argv[1:] == ["devices", "-l"], sys.argv
print((here / "devices.txt").read_text(), end="")
'''

FAKE_WORKER = r'''#!{python}
"""A stand-in for the worker: records its arguments and ANDROID_SERIAL, then behaves as ./worker-mode says."""
import json, os, sys, time
from pathlib import Path
here = Path(__file__).parent
(here / "runs").mkdir(exist_ok=True)
(here / "runs" / (sys.argv[1] + ".json")).write_text(json.dumps({"argv": sys.argv[1:], "serial": os.environ.get("ANDROID_SERIAL")}))
mode = (here / "worker-mode").read_text().strip()
if mode == "block":  # a worker waiting for tasks: runs until it is told to stop
    time.sleep(3600)
sys.exit(0 if mode == "exit0" else 3)
'''


def script(path: Path, text: str) -> Path:
    path.write_text(text.replace("{python}", sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


class Rack:
    """The fake adb and worker in ``directory``."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.adb = script(directory / "adb", FAKE_ADB)
        self.worker = script(directory / "worker", FAKE_WORKER)
        (directory / "devices.txt").write_text(DEVICES)
        self.mode = "exit0"

    @property
    def mode(self) -> str:
        return (self.dir / "worker-mode").read_text()

    @mode.setter
    def mode(self, value: str) -> None:
        (self.dir / "worker-mode").write_text(value)

    def fail(self) -> None:
        (self.dir / "fail").write_text("")

    def options(self, **changes: Any) -> dict[str, Any]:
        return {"adb": str(self.adb), "worker": [str(self.worker), "{launch_id}", "{pool}", "{udid}", "{queue}"],
                "stop_timeout": 10.0, **changes}

    def run(self, launch_id: str) -> dict[str, Any]:
        return json.loads((self.dir / "runs" / f"{launch_id}.json").read_text())
