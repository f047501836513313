"""``provisioner hyperexecute-pin``: a payload directory the operator owns, with every download's sha256 filled in.

What is downloaded comes from the payload's ``downloads.txt`` (see downloads.py). For each Taskcluster release
asset the sha256 comes from the publisher: GitHub's "Get a release by tag name" answer
(``GET https://api.github.com/repos/taskcluster/taskcluster/releases/tags/v<version>``) lists each asset with
``name``, ``size``, ``browser_download_url`` and, for assets uploaded since June 2025, ``digest: "sha256:<hex>"``
(https://docs.github.com/en/rest/releases/releases#get-a-release-by-tag-name). The asset is downloaded too, and
the two must agree. Files with no publisher digest (robustcheckout.py, tooltool.py, the Android SDK zip, each
at a fixed commit or versioned URL) are hashed on download: trust on first use, only with the operator's consent.

All or nothing: any problem (a missing asset, an asset without digest, a mismatch, a 404, a redirect outside
``HOSTS``, a non-https URL, a body over the cap, a timeout) is one line naming the file, and nothing is written.
Bodies are hashed while streamed and never kept. The output is built in a temporary directory beside the target
and renamed into place at the end. The target must be absent, empty, or a previous pin's output: only files the
shipped payload has, plus a ``checksums.sha256`` that starts with ``HEADER``; anything else is refused, so a
file of the operator's is never deleted.

A GitHub token (``GITHUB_TOKEN``, optional: only for the API's rate limit) goes on the one API request, which
follows no redirect; it is never sent to a download host nor shown.

Test-only: ``PROVISIONER_PIN_MIRROR=https://127.0.0.1:<port>`` sends every download to that loopback https
server instead, as ``/<original host>/<original path>`` (the API request is unchanged). It is refused for any host
that is not loopback, so it cannot point a real pin at another server.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests
from provisioner import BodyTooLarge, DeadlineAdapter, deadline, is_loopback, read_capped, redirect_target

from .downloads import CHECKSUMS, Download, downloads

RELEASE_API = "https://api.github.com/repos/taskcluster/taskcluster/releases/tags/v{version}"
API_HOST = "api.github.com"
# Where downloads.txt's URLs and GitHub's download redirects lead: release downloads on github.com redirect to
# its asset storage, objects.githubusercontent.com until 2025 and release-assets.githubusercontent.com since
# (PyGithub issue #3315, July 2025); the scripts come from raw.githubusercontent.com, the SDK from dl.google.com.
HOSTS = frozenset({"github.com", "objects.githubusercontent.com", "release-assets.githubusercontent.com",
                   "raw.githubusercontent.com", "dl.google.com"})
MIRROR_ENV = "PROVISIONER_PIN_MIRROR"
TOKEN_ENV = "GITHUB_TOKEN"
HEADER = "# Pinned by `provisioner hyperexecute-pin`"
API_CAP = 8 * 1024 * 1024  # the release's JSON (a few hundred assets) is well under 1 MiB
FILE_CAP = 1024 * 1024 * 1024  # the SDK zip is ~150 MiB; a Taskcluster asset is capped at its listed size
MAX_REDIRECTS = 5
TIMEOUT = (15.0, 60.0)  # connect, and each read
API_SECONDS = 60.0
FILE_SECONDS = 1800.0  # one whole download, headers and body
VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")


class PinError(Exception):
    """Why nothing was pinned: one line, no secret."""


@dataclass(frozen=True)
class Asset:
    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Pinned:
    download: Download
    sha256: str
    publisher: bool  # the publisher's digest matched; False: trust on first use


def pin(source: Path, target: Path, version: str, arches: tuple[str, ...], trust_on_first_use: bool,
        environ: Mapping[str, str], today: datetime.date) -> list[Pinned]:
    """Write ``target`` (the files of payload ``source`` plus a filled checksums.sha256); PinError writes nothing."""
    if not VERSION.fullmatch(version):
        raise PinError(f"--tc-version {version!r}: expected a release number like 87.0.0")
    target_problem(source, target)
    wanted = downloads(source, version, arches)
    unreviewed = [d.name for d in wanted if not d.release_asset]
    if unreviewed and not trust_on_first_use:
        raise PinError(f"{', '.join(unreviewed)}: no publisher digest; review these files and pass "
                       f"--trust-on-first-use to pin what is downloaded now")
    mirror = _mirror(environ)
    with requests.Session() as session:
        session.mount("https://", DeadlineAdapter())
        needed = any(d.release_asset for d in wanted)
        assets = release_assets(session, version, environ.get(TOKEN_ENV, "")) if needed else {}
        for item in wanted:  # every asset listed with a digest before anything is downloaded
            asset = assets.get(item.release_asset)
            if item.release_asset and asset is None:
                raise PinError(f"{item.name}: Taskcluster release v{version} on GitHub lists no asset "
                               f"{item.release_asset}")
            if item.release_asset and asset is not None and not asset.sha256:
                raise PinError(f"{item.name}: GitHub lists no sha256 digest (or no size) for this release asset")
        pinned = []
        for item in wanted:
            asset = assets.get(item.release_asset) if item.release_asset else None
            got = fetch(session, item, mirror, asset.size if asset else FILE_CAP)
            if asset and got != asset.sha256:
                raise PinError(f"{item.name}: downloaded sha256 {got} differs from the publisher's digest "
                               f"{asset.sha256}")
            pinned.append(Pinned(item, got, asset is not None))
    write(source, target, checksums_text(pinned, version, arches, today))
    return pinned


def target_problem(source: Path, target: Path) -> None:
    """Refuse a target that exists and is neither empty nor a previous pin's output."""
    if not target.exists():
        if not target.parent.is_dir():
            raise PinError(f"--payload {target}: its parent directory does not exist")
        return
    if not target.is_dir() or target.is_symlink():
        raise PinError(f"--payload {target}: exists and is not a directory")
    present = _files(target)
    if not present:
        return
    checksums = target / CHECKSUMS
    if CHECKSUMS not in present or not checksums.read_text(encoding="utf-8", errors="replace").startswith(HEADER):
        raise PinError(f"--payload {target}: not empty and not a previous pin's output (no pinned {CHECKSUMS}); "
                       f"give a new or empty directory")
    extra = sorted(present - _files(source) - {CHECKSUMS})
    if extra:
        raise PinError(f"--payload {target}: holds {extra[0]}, which the payload does not ship: move it out first "
                       f"(the pin replaces the whole directory)")


def release_assets(session: requests.Session, version: str, token: str) -> dict[str, Asset]:
    """name -> Asset from GitHub's release API; an asset without a sha256 digest is an error when used."""
    url = RELEASE_API.format(version=version)
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    if token:
        headers["Authorization"] = f"Bearer {token}"  # only here: api.github.com, no redirect followed
    where = f"GitHub's release API ({url})"
    try:
        with deadline(API_SECONDS):
            response = session.get(url, headers=headers, timeout=TIMEOUT, stream=True, allow_redirects=False)
            body = read_capped(response, API_CAP) if response.status_code == 200 else b""
    except BodyTooLarge:
        raise PinError(f"{where}: answer larger than {API_CAP} bytes") from None
    except requests.RequestException as exc:
        raise PinError(f"{where}: {type(exc).__name__}") from None
    if response.status_code == 404:
        raise PinError(f"{where}: no release v{version} (HTTP 404)")
    if response.status_code != 200:
        raise PinError(f"{where}: HTTP {response.status_code}{redirect_target(response)}")
    try:
        listed = json.loads(body)["assets"]
        if not isinstance(listed, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise PinError(f"{where}: answer is not a release with an assets list") from None
    assets: dict[str, Asset] = {}
    for entry in listed:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            match = _DIGEST.fullmatch(str(entry.get("digest") or ""))
            size = entry.get("size")
            ok = match is not None and isinstance(size, int) and not isinstance(size, bool) and size >= 0
            assets[entry["name"]] = Asset(entry["name"], match.group(1) if ok and match else "", size if ok else 0)
    return assets


def fetch(session: requests.Session, item: Download, mirror: str, cap: int) -> str:
    """The sha256 of ``item``'s body, streamed over https from allowed hosts only, at most ``cap`` bytes."""
    url = _via(item.url, mirror)
    allowed = {urllib.parse.urlsplit(mirror).hostname} if mirror else HOSTS
    how = "its URL"
    with deadline(FILE_SECONDS):
        for _ in range(MAX_REDIRECTS + 1):
            parts = urllib.parse.urlsplit(url)
            host = parts.hostname or ""
            if parts.scheme != "https":
                raise PinError(f"{item.name}: {how} is {parts.scheme}://{host}, not https")
            if host not in allowed:
                raise PinError(f"{item.name}: {how} leads to https://{host}, which is not an allowed download host")
            try:
                response = session.get(url, timeout=TIMEOUT, stream=True, allow_redirects=False)
                with response:
                    if response.is_redirect:
                        url, how = urllib.parse.urljoin(url, response.headers["Location"]), "a redirect"
                        continue
                    if response.status_code != 200:
                        missing = " (not found)" if response.status_code == 404 else ""
                        raise PinError(f"{item.name}: HTTP {response.status_code}{missing} from {host}")
                    return _digest(response, cap, item.name)
            except (requests.RequestException, OSError) as exc:
                raise PinError(f"{item.name}: {type(exc).__name__} while downloading from {host}") from None
    raise PinError(f"{item.name}: more than {MAX_REDIRECTS} redirects")


def _digest(response: requests.Response, cap: int, name: str) -> str:
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > cap:
        raise PinError(f"{name}: {length} bytes, more than the {cap} expected")
    sha, size = hashlib.sha256(), 0
    for chunk in response.iter_content(1024 * 1024):
        size += len(chunk)
        if size > cap:
            raise PinError(f"{name}: more than the {cap} bytes expected")
        sha.update(chunk)
    return sha.hexdigest()


def _mirror(environ: Mapping[str, str]) -> str:
    value = environ.get(MIRROR_ENV, "")
    if not value:
        return ""
    parts = urllib.parse.urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or not is_loopback(parts.hostname):
        raise PinError(f"{MIRROR_ENV} is for tests only: an https URL on a loopback address, or unset")
    return f"https://{parts.netloc}"


def _via(url: str, mirror: str) -> str:
    if not mirror:
        return url
    parts = urllib.parse.urlsplit(url)
    return f"{mirror}/{parts.hostname}{parts.path}"


def checksums_text(pinned: list[Pinned], version: str, arches: tuple[str, ...], today: datetime.date) -> str:
    day = today.isoformat()
    lines = [f"{HEADER} on {day}, Taskcluster v{version} ({', '.join(arches)}).",
             "# sha256 of every file setup.sh downloads (downloads.txt), in sha256sum's format: <64 hex>  <name>.",
             "# setup.sh refuses a download whose sha256 differs. Review the diff against the previous pin, then",
             "# commit."]
    published = [p for p in pinned if p.publisher]
    if published:
        lines += ["#", "# From the publisher: each asset's sha256 digest in GitHub's release API",
                  f"# ({RELEASE_API.format(version=version)}); the download matched it."]
        lines += [f"{p.sha256}  {p.download.name}" for p in published]
    trusted = [p for p in pinned if not p.publisher]
    if trusted:
        lines += ["#", f"# Trust on first use ({day}): no publisher digest; hashed as downloaded from its URL in",
                  "# downloads.txt (a fixed commit or a versioned file name). Review each file before relying on it."]
        lines += [f"{p.sha256}  {p.download.name}" for p in trusted]
    return "\n".join(lines) + "\n"


def write(source: Path, target: Path, checksums: str) -> None:
    """The payload's files plus ``checksums`` into ``target``, built beside it and renamed into place."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.pin-", dir=target.parent))
    aside = None
    try:
        for relative in sorted(_files(source) - {CHECKSUMS}):
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / relative, staging / relative)  # keeps the mode: setup.sh stays executable
        (staging / CHECKSUMS).write_text(checksums, encoding="utf-8")
        staging.chmod(0o755)
        if target.exists() and any(target.iterdir()):
            aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rename(target, aside / "payload")
        os.rename(staging, target)  # replaces an empty directory
    except BaseException:
        if aside is not None and not target.exists():
            os.rename(aside / "payload", target)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)


def _files(directory: Path) -> set[str]:
    """Relative paths of the files under ``directory`` (``__pycache__`` left out)."""
    found = set()
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        found.update(Path(root, name).relative_to(directory).as_posix() for name in files)
    return found
