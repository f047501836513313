"""Payloads: the files uploaded with each job, from a local directory, a git repository at a pinned ref, or
the payload shipped with this plugin.

A payload directory holds ``job-template.json``, the job's hyperexecute.yaml template written as JSON (JSON is
YAML 1.2), plus the files its commands use (setup script, worker configuration template, ...). The launcher
overlays the per-launch fields (phone, env, labels) on the template.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .downloads import ARCHES, DOWNLOADS, downloads, pins
from .environment import base_env
from .render import template_problems

TEMPLATE = "job-template.json"
CHECKSUMS = "checksums.sha256"
RUNNER_TEMPLATE = "worker-runner.yaml.template"  # the worker-runner config run-worker.sh renders (JSON text)
RENDERED = "hyperexecute.yaml"
WRAPPER = "script.py"  # the task wrapper setup.sh installs at WRAPPER_PATH
WRAPPER_PATH = "/home/ltuser/taskcluster/script.py"  # what every Firefox task for a lambda worker runs
MARKER = ".provisioner-payload"  # written in a fetched git payload: the commit it holds
GIT_TIMEOUT = 300.0
SHA = re.compile(r"[0-9a-f]{7,40}")


class PayloadError(Exception):
    """A payload that cannot be used; the message is one line without secret."""


def builtin_payload() -> Path:
    """The payload shipped with the plugin (package data)."""
    return Path(str(resources.files("provisioner_lambdatest") / "payload"))


def safe_location(location: str) -> str:
    """``location`` without any user:password part, for messages."""
    parts = urlsplit(location)
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return location


def load_template(directory: Path) -> dict[str, Any]:
    path = directory / TEMPLATE
    try:
        template = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PayloadError(f"payload {directory}: no {TEMPLATE}") from None
    except (OSError, ValueError) as exc:
        raise PayloadError(f"payload {directory}: {TEMPLATE} is not valid JSON ({exc})") from None
    if not isinstance(template, dict):
        raise PayloadError(f"payload {directory}: {TEMPLATE} is not a JSON object")
    return template


def verify(directory: Path) -> list[str]:
    """Problems of a payload directory, one line each."""
    if not directory.is_dir():
        return [f"payload {directory}: not a directory"]
    try:
        template = load_template(directory)
    except PayloadError as exc:
        return [str(exc)]
    problems = [f"payload {directory}: {TEMPLATE} {problem}" for problem in template_problems(template)]
    if not isinstance(template.get("testRunnerCommand"), str):
        problems.append(f"payload {directory}: {TEMPLATE} has no testRunnerCommand")
    if (directory / RENDERED).exists():
        problems.append(f"payload {directory}: holds a {RENDERED}, which each launch writes itself")
    return problems


def unpinned(directory: Path, tc_version: str) -> str:
    """Why the payload's ``pre`` would refuse to run on the phone ("" when it would not): the rule of setup.sh,
    which needs a checksum for every name downloads.txt gives for its host's arch. The daemon cannot know the
    host's arch, so it requires every name without ``{arch}`` and a complete set for at least one of ``ARCHES``;
    it names what is missing. A payload without downloads.txt downloads nothing that needs a pin.
    The shipped list comes with no checksum filled in (see the plugin's README)."""
    if not (directory / DOWNLOADS).is_file():
        return ""
    try:
        per_arch = {arch: [d.name for d in downloads(directory, tc_version, (arch,))] for arch in ARCHES}
    except (OSError, ValueError) as exc:
        return f"payload {directory}: {DOWNLOADS}: {exc}"
    pinned = pins(directory)
    common = [name for name in per_arch[ARCHES[0]] if all(name in names for names in per_arch.values())]
    lacking = {arch: [n for n in names if n not in common and n not in pinned] for arch, names in per_arch.items()}
    missing = [name for name in common if name not in pinned]
    if not any(not names for names in lacking.values()):
        missing.append("a complete set for one arch (" + "; ".join(
            f"{arch} lacks {', '.join(names)}" for arch, names in lacking.items()) + ")")
    if not missing:
        return ""
    return (f"payload {directory}: {CHECKSUMS} lacks checksums its setup needs for Taskcluster v{tc_version}: "
            f"{'; '.join(missing)} (pin them, or set allow_unpinned_downloads)")


def copy_private(source: Path, target: Path) -> None:
    """Copy the payload's files into ``target`` (already made, 0700): dirs 0700, files 0600 (0700 if executable).

    Symbolic links and ``.git`` are left out: a link could carry a file of this host into the upload.
    """
    for root, dirs, files in os.walk(source):
        dirs[:] = [d for d in dirs if d != ".git" and not os.path.islink(os.path.join(root, d))]
        relative = Path(root).relative_to(source)
        for name in dirs:
            (target / relative / name).mkdir(mode=0o700)
        for name in files:
            src = Path(root, name)
            if name == MARKER or src.is_symlink():
                continue
            dst = target / relative / name
            mode = 0o700 if os.access(src, os.X_OK) else 0o600
            fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
                shutil.copyfileobj(inp, out)


class PayloadCache:
    """Resolves a pool's payload to a local directory; git payloads are fetched once into ``root``."""

    def __init__(self, root: Path, environ: Mapping[str, str] | None = None,
                 where: Callable[[Path], Path] = Path) -> None:
        self.root = root
        self._environ = os.environ if environ is None else environ
        self._env = git_env(self._environ)
        self._where = where  # a payload directory's path as the config means it (``PluginContext.resolve``)
        self._lock = threading.Lock()

    def resolve(self, location: str, ref: str, fetch: bool = True) -> Path | None:
        """The payload's directory. None when it is a git payload not fetched yet and ``fetch`` is False."""
        if not location:
            if ref:
                raise PayloadError("payload_ref is set but payload names no git repository")
            return builtin_payload()
        if not ref:
            if "://" in location or location.startswith("git@"):
                raise PayloadError(f"payload {safe_location(location)}: a git payload needs payload_ref (tag or commit)")
            return self._where(Path(location).expanduser())
        target = self.root / hashlib.sha256(f"{location}\0{ref}".encode()).hexdigest()[:20]
        with self._lock:
            if (target / MARKER).is_file():
                return target
            if not fetch:
                return None
            self._fetch(location, ref, target)
            return target

    @contextlib.contextmanager
    def resolved(self, location: str, ref: str) -> Iterator[Path]:
        """The payload's directory, leaving the cache as it is: a git payload not fetched yet is fetched into a
        temporary directory, removed on exit (for dry runs and checks, which write nothing that stays)."""
        path = self.resolve(location, ref, fetch=False)
        if path is not None:
            yield path
            return
        with tempfile.TemporaryDirectory(prefix="provisioner-payload-") as tmp:
            fetched = PayloadCache(Path(tmp), self._environ, self._where).resolve(location, ref)
            assert fetched is not None
            yield fetched

    def _fetch(self, repo: str, ref: str, target: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=self.root))
        try:
            clone = work / "clone"
            _git(self._env, repo, "clone", "--quiet", "--no-checkout", "--", repo, str(clone))
            commit = _pinned_commit(self._env, repo, clone, ref)
            _git(self._env, repo, "-C", str(clone), "checkout", "--quiet", "--detach", commit)
            files = work / "files"
            files.mkdir(mode=0o700)
            copy_private(clone, files)
            (files / MARKER).write_text(f"{safe_location(repo)} {ref} {commit}\n", encoding="utf-8")
            os.replace(files, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _pinned_commit(env: Mapping[str, str], repo: str, clone: Path, ref: str) -> str:
    """The commit of ``ref``, a tag or a commit SHA; a branch is refused (a version is a commit, not a branch)."""
    where = safe_location(repo)
    tag = _git_quiet(env, clone, f"refs/tags/{ref}^{{commit}}")
    if tag:
        return tag
    if _git_quiet(env, clone, f"refs/remotes/origin/{ref}"):
        raise PayloadError(f"payload {where}: payload_ref {ref!r} is a branch; pin a tag or a commit SHA")
    commit = _git_quiet(env, clone, f"{ref}^{{commit}}") if SHA.fullmatch(ref) else ""
    if not commit:
        raise PayloadError(f"payload {where}: payload_ref {ref!r} is neither a tag nor a commit of the repository")
    return commit


def git_env(environ: Mapping[str, str]) -> dict[str, str]:
    """git's environment: ``base_env`` (PATH, HOME, locale, proxies, TLS), git's own CA settings and the ssh
    agent's socket (for ``git@`` payloads), never prompting; none of the daemon's secrets, no other ``GIT_*``."""
    env = base_env(environ, "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "SSH_AUTH_SOCK")
    env.update(GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true", SSH_ASKPASS="true", GCM_INTERACTIVE="never",
               GIT_SSH_COMMAND="ssh -o BatchMode=yes", LC_ALL="C")
    return env


def _git(env: Mapping[str, str], repo: str, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=GIT_TIMEOUT, env=env, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PayloadError(f"payload {safe_location(repo)}: git {args[0]} failed ({type(exc).__name__})") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise PayloadError(f"payload {safe_location(repo)}: git {args[0]} failed: {last.replace(repo, safe_location(repo))}")
    return done.stdout.strip()


def _git_quiet(env: Mapping[str, str], clone: Path, name: str) -> str:
    """The object id ``name`` resolves to in ``clone``, or "" when it does not."""
    done = subprocess.run(
        ["git", "-C", str(clone), "rev-parse", "--verify", "--quiet", name],
        capture_output=True, text=True, timeout=GIT_TIMEOUT, env=env, stdin=subprocess.DEVNULL,
    )
    return done.stdout.strip() if done.returncode == 0 else ""
