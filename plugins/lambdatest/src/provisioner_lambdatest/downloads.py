"""The one list of what a payload's setup downloads (``downloads.txt``) and what its ``checksums.sha256`` pins.

setup.sh on the phone's host, the daemon's check and ``provisioner hyperexecute-pin`` all read these two files, so
that what the daemon accepts is exactly what setup will run with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOWNLOADS = "downloads.txt"
CHECKSUMS = "checksums.sha256"
ARCHES = ("amd64", "arm64")
TASKCLUSTER_RELEASES = "https://github.com/taskcluster/taskcluster/releases/download/"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Download:
    name: str  # as checksums.sha256 lists it, e.g. v87.0.0/start-worker-linux-amd64
    url: str

    @property
    def release_asset(self) -> str:
        """The GitHub release asset's name for a Taskcluster binary ("" for a file with no publisher digest)."""
        return self.url.rsplit("/", 1)[1] if self.url.startswith(TASKCLUSTER_RELEASES) else ""


def downloads(directory: Path, version: str, arches: tuple[str, ...] = ARCHES) -> list[Download]:
    """The payload's downloads for Taskcluster ``version`` on each of ``arches`` (a name without ``{arch}`` once)."""
    out: dict[str, Download] = {}
    lines = (directory / DOWNLOADS).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].startswith("https://"):
            raise ValueError(f"{directory / DOWNLOADS}:{number}: expected '<name> <https URL>'")
        for arch in arches:
            name, url = (p.replace("{version}", version).replace("{arch}", arch) for p in parts)
            out.setdefault(name, Download(name, url))
    return list(out.values())


def pins(directory: Path) -> dict[str, str]:
    """name -> sha256 from the payload's checksums.sha256 (``<64 hex>  <name>`` lines; ``#`` starts a comment)."""
    path = directory / CHECKSUMS
    if not path.is_file():
        return {}
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and _SHA256.fullmatch(parts[0]):
            found.setdefault(parts[1], parts[0])
    return found
