"""The HyperExecute job launcher: one job directory per launch, one run of the CLI, secrets never left behind."""

from __future__ import annotations

import hashlib
import os
import shlex
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from loguru import logger

from provisioner import LaunchRequest, LaunchResult, PluginContext, Pool, monotonic, redact

from . import cli
from .http import credentials
from .jobdirs import LOG_NAME, JobDirs, forget_cli, opened_dir, record_cli, redact_file, scrub
from .options import LAUNCHER_OPTIONS, POOL_OPTIONS, with_defaults
from .payload import RENDERED, RUNNER_TEMPLATE, WRAPPER, WRAPPER_PATH, PayloadCache, PayloadError, copy_private, load_template, unpinned, verify
from .render import RenderError, dump, fill_runner, job_document, launch_problems, worker_env
from .udid import valid_udid
from .workerconfig import template_keys, unknown_keys, version_problem

CLEAN_INTERVAL = 600.0  # seconds between two sweeps of old job directories
MASK = "***"
NO_VALIDATE = "no --validate"
# How a CLI says it has no such flag (the HyperExecute CLI's wording is not known: common CLI libraries' forms).
UNKNOWN_FLAG = re.compile(r"unknown (shorthand )?(flag|option)|flag provided but not defined|no such option|"
                          r"unrecognized (argument|option)", re.IGNORECASE)


class LaunchError(Exception):
    """A launch that cannot go on; the message is one line (redacted before it leaves the launcher)."""


class HyperExecuteLauncher:
    """``JobLauncher`` that submits one HyperExecute job per launch with the ``hyperexecute`` CLI."""

    def __init__(self, options: Mapping[str, Any], context: PluginContext) -> None:
        self._options = with_defaults(LAUNCHER_OPTIONS, options)
        self._context = context
        self._jobs_root = context.state_dir / "jobs"
        self._job_dirs = JobDirs(self._jobs_root)
        self._payloads = PayloadCache(context.state_dir / "payloads", context.environ, context.resolve)
        self._timeout = float(self._options["cli_timeout"])
        self._max_age = float(self._options["job_dir_max_age_days"]) * 86400.0
        self._clean_lock = threading.Lock()
        self._last_clean: float | None = None
        self._recovered = False  # start() recovers what a killed launcher left (not the factory: `provisioner
        # check` and `status` build the launcher too, and must change nothing)

    # -- launching ----------------------------------------------------------------------------
    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Submit one job; with ``request.dry_run``, nothing is submitted and the detail is ``render(request)``."""
        secrets: list[str] = []
        try:
            if request.dry_run:
                return LaunchResult(ok=True, detail=self.render(request))
            return self._launch(request, secrets)
        except (LaunchError, PayloadError, RenderError) as exc:
            detail = redact(str(exc), secrets)
        except OSError as exc:  # the job directory could not be written
            detail = redact(f"job directory: {exc}", secrets)
        logger.warning("hyperexecute: launch {} for pool {} failed: {}", request.launch_id, request.pool.name, detail)
        return LaunchResult(ok=False, detail=detail)

    def render(self, request: LaunchRequest) -> str:
        """The dry run of ``launch(request)``: the exact command line, then the job's hyperexecute.yaml, then the
        worker-runner config as the payload's run-worker.sh renders it on the phone's host; secrets masked.

        Nothing is submitted, and nothing is written but a git payload not fetched yet, which goes into a
        temporary directory removed before returning. Works without the secrets' variables (a missing client id
        shows as ``<NAME is not set>``). Raises ``LaunchError``, ``PayloadError`` or ``RenderError`` (one line)
        for what would fail the launch itself: a bad request, payload or launch table.
        """
        _check_request(request)
        launch = with_defaults(POOL_OPTIONS, request.pool.launch)
        env = self._worker_env(request, launch, [], masked=True)
        with self._payloads.resolved(launch["payload"], launch["payload_ref"]) as payload:
            document = self._document(payload, request, launch, env)
            runner = runner_preview(payload, env, request.udid)
            wrapper = wrapper_preview(payload)
        config = self._jobs_root / request.launch_id / RENDERED
        return (
            f"dry run: launch {request.launch_id} for pool {request.pool.name} on {request.udid or 'any matching phone'}\n"
            f"command: {shlex.join(self._argv(request, config))}\n"
            f"--- task wrapper ---\n{wrapper}"
            f"--- {RENDERED} (secrets masked) ---\n{dump(document)}"
            f"--- worker-runner config, as run-worker.sh renders it on the phone's host (secrets masked) ---\n{runner}"
        )

    def _launch(self, request: LaunchRequest, secrets: list[str]) -> LaunchResult:
        launch = with_defaults(POOL_OPTIONS, request.pool.launch)
        environ = self._context.environ
        self.clean_job_dirs()  # first: recovering changes the mtime of the directories it cleans
        self.recover([environ.get(self._options["access_key_env"], ""), environ.get(launch["access_token_env"], "")])
        # (a no-op once start() ran; for a host that does not call start())
        _check_request(request)
        username, access_key = self._lt_credentials()
        secrets.append(access_key)
        env = self._worker_env(request, launch, secrets, masked=False)
        payload = self._payloads.resolve(launch["payload"], launch["payload_ref"])
        assert payload is not None  # resolve() fetches when asked to
        if not launch["allow_unpinned_downloads"] and (why := unpinned(payload, launch["tc_version"])):
            raise LaunchError(why)  # no job that can only fail on the phone
        document = self._document(payload, request, launch, env)
        job_dir = self._job_dir(request.launch_id)
        try:
            copy_private(payload, job_dir)
            _write_private(job_dir / RENDERED, dump(document))
            argv = self._argv(request, job_dir / RENDERED)
            logger.info("hyperexecute: launch {} for pool {}: {}", request.launch_id, request.pool.name, shlex.join(argv))
            secret_env = [self._options["access_key_env"]]
            secret_env += [] if launch["access_token_secret"] else [launch["access_token_env"]]
            return self._submit(argv, job_dir, cli.cli_env(environ, username, access_key), secrets, secret_env)
        finally:
            with opened_dir(job_dir) as fd:
                scrub(fd, secrets)  # the yaml goes, the CLI's logs are redacted: only then is its record dropped
            forget_cli(job_dir)

    def _document(
        self, payload: Path, request: LaunchRequest, launch: Mapping[str, Any], env: Mapping[str, str]
    ) -> dict[str, Any]:
        problems = verify(payload)
        if problems:
            raise LaunchError(problems[0])
        return job_document(load_template(payload), request, launch, env)

    def _argv(self, request: LaunchRequest, config: Path) -> list[str]:
        labels = ",".join(label for label in request.labels if label)  # a selector launch names no phone
        return [self._cli_path(), "--no-track", "--disable-updates", "--labels", labels,
                "--config", str(config)]

    def _submit(self, argv: list[str], job_dir: Path, env: Mapping[str, str], secrets: Sequence[str],
                secret_env: Sequence[str]) -> LaunchResult:
        """Run the CLI, its process group recorded in ``cli.pid`` (with the names of ``secret_env``) while it runs."""
        try:
            with cli.cli_lock(self._context.state_dir, exclusive=False):
                done = cli.run(argv, job_dir, env, self._timeout, job_dir / LOG_NAME,
                               on_start=lambda pid: record_cli(job_dir, pid, argv[0], secret_env))
        except OSError as exc:
            raise LaunchError(f"cannot run {argv[0]}: {exc.strerror or type(exc).__name__}") from None
        tail = redact(done.tail(), secrets)
        if done.returncode is None:
            raise LaunchError(f"hyperexecute killed after {self._timeout:g}s without finishing: {tail}")
        if done.returncode != 0:
            suffix = f" (job {done.job_id})" if done.job_id else ""
            raise LaunchError(f"hyperexecute exited with status {done.returncode}{suffix}: {tail}")
        if not done.job_id:
            raise LaunchError(f"no job id in the CLI's output: {tail}")
        logger.info("hyperexecute: job {} submitted: {}", done.job_id, done.job_url)
        return LaunchResult(ok=True, job_id=done.job_id, detail=f"job {done.job_id} submitted", url=done.job_url)

    def _lt_credentials(self) -> tuple[str, str]:
        try:
            return credentials(self._context.environ, self._options["username_env"], self._options["access_key_env"])
        except KeyError as missing:
            raise LaunchError(f"environment variable {missing.args[0]} is not set") from None

    def _worker_env(
        self, request: LaunchRequest, launch: Mapping[str, Any], secrets: list[str], masked: bool
    ) -> dict[str, str]:
        """The worker's environment in the job yaml; ``masked``: the token is ``***`` and nothing is required."""
        environ = self._context.environ
        client_id = environ.get(launch["client_id_env"], "")
        if not client_id:
            if not masked:
                raise LaunchError(f"environment variable {launch['client_id_env']} is not set")
            client_id = f"<{launch['client_id_env']} is not set>"
        if launch["access_token_secret"]:
            token = "${{ .secrets.%s }}" % launch["access_token_secret"]
        elif masked:
            token = MASK
        else:
            token = environ.get(launch["access_token_env"], "")
            if not token:
                raise LaunchError(f"environment variable {launch['access_token_env']} is not set")
            secrets.append(token)
        return worker_env(request, launch, client_id, token)

    def _cli_path(self) -> str:
        return shutil.which(self._options["cli"]) or self._options["cli"]

    def _job_dir(self, launch_id: str) -> Path:
        if not launch_id or launch_id in (".", "..") or "/" in launch_id:
            raise LaunchError(f"launch id {launch_id!r} cannot name a directory")
        if self._jobs_root.is_symlink():
            raise LaunchError(f"{self._jobs_root} is a symbolic link: no job directory is written through it")
        self._jobs_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        job_dir = self._jobs_root / launch_id
        try:
            job_dir.mkdir(mode=0o700)
        except FileExistsError:
            raise LaunchError(f"job directory {job_dir} already exists") from None
        return job_dir

    # -- housekeeping -------------------------------------------------------------------------
    def start(self) -> None:
        """Called once by the daemon before its first cycle (``Runtime.start``): recover what a killed launcher
        left, so that no orphaned CLI or secret outlives a crash until the next launch, which may be hours away.
        A dry run changes nothing."""
        if not self._context.dry_run:
            self.clean_job_dirs()
            self.recover([self._context.environ.get(self._options["access_key_env"], "")])

    def recover(self, known: Sequence[str]) -> None:
        """Once per process: end the CLIs a killed launcher left running, remove their job directories, delete
        other directories' secret files and redact their CLI logs (see ``jobdirs``). ``known``: secrets known."""
        with self._clean_lock:
            if not self._recovered:
                self._recovered = True
                self._job_dirs.recover(known, self._context.environ)

    def clean_job_dirs(self, force: bool = False) -> None:
        """Remove job directories older than ``job_dir_max_age_days`` (at most every CLEAN_INTERVAL s)."""
        now, mono = self._context.clock.now(), monotonic(self._context.clock)  # files' ages: wall; the interval: not
        with self._clean_lock:
            if not force and self._last_clean is not None and mono - self._last_clean < CLEAN_INTERVAL:
                return
            self._last_clean = mono
            self._job_dirs.remove_old(now, self._max_age)

    def check(self, pools: Sequence[Pool], network: bool) -> list[str]:
        """Problems, one line each. With ``network``, the CLI's own ``--validate`` also reads each pool's yaml."""
        problems = []
        cli_name = self._options["cli"]
        if not shutil.which(cli_name):
            problems.append(f"hyperexecute: CLI {cli_name!r} is missing or not executable (option cli)")
        for key in ("username_env", "access_key_env"):
            if not self._context.environ.get(self._options[key]):
                problems.append(f"hyperexecute: environment variable {self._options[key]} ({key}) is not set")
        if self._jobs_root.is_symlink():
            problems.append(f"hyperexecute: {self._jobs_root} is a symbolic link: launches refuse to write through it")
        checked = [(pool, self._check_pool(pool, network)) for pool in pools]
        for pool, lines in checked:
            problems.extend(f"pool {pool.name}: {line}" for line in lines)
        if network and not problems:
            for pool, _ in checked:
                line = self._validate(pool)
                if line == NO_VALIDATE:
                    logger.warning("hyperexecute: the CLI has no --validate flag: the rendered yaml was not validated")
                    break
                if line:
                    problems.append(f"pool {pool.name}: {line}")
        return problems

    def _check_pool(self, pool: Pool, network: bool) -> list[str]:
        launch = with_defaults(POOL_OPTIONS, pool.launch)
        keys = ["client_id_env"] + ([] if launch["access_token_secret"] else ["access_token_env"])
        problems = [
            f"environment variable {launch[key]} (launch.{key}) is not set"
            for key in keys
            if not self._context.environ.get(launch[key])
        ]
        problems.extend(launch_problems(launch, pool))
        try:
            payload = self._payloads.resolve(launch["payload"], launch["payload_ref"], fetch=network)
        except PayloadError as exc:
            return [*problems, str(exc)]
        if payload is not None:
            problems.extend(verify(payload))
            if not launch["allow_unpinned_downloads"] and (why := unpinned(payload, launch["tc_version"])):
                problems.append(why)  # launches are refused too: no job that can only fail on the phone
            problems.extend(runner_problems(payload, launch["tc_version"]))
        return problems

    def _validate(self, pool: Pool) -> str:
        """Runs ``hyperexecute --validate`` on the pool's yaml, rendered with its token masked, in a temporary
        directory (removed). Returns "" when it passes, NO_VALIDATE when the CLI has no such flag, else a line."""
        udid = pool.udids[0] if pool.udids else ""
        request = LaunchRequest(launch_id="check", pool=pool, udid=udid, labels=(self._context.job_tag, pool.name, udid))
        launch = with_defaults(POOL_OPTIONS, pool.launch)
        access_key = ""
        try:
            username, access_key = self._lt_credentials()
            with self._payloads.resolved(launch["payload"], launch["payload_ref"]) as payload:
                document = self._document(payload, request, launch, self._worker_env(request, launch, [], masked=True))
                with tempfile.TemporaryDirectory(prefix="hyperexecute-validate-") as tmp:
                    work = Path(tmp)
                    copy_private(payload, work)
                    _write_private(work / RENDERED, dump(document))
                    argv = [self._cli_path(), "--disable-updates", "--validate", "--config", str(work / RENDERED)]
                    with cli.cli_lock(self._context.state_dir, exclusive=False):
                        done = cli.run(argv, work, cli.cli_env(self._context.environ, username, access_key),
                                       self._timeout, work / LOG_NAME)
        except (LaunchError, PayloadError, RenderError) as exc:
            return str(exc)
        except OSError as exc:
            return f"hyperexecute --validate could not run: {exc.strerror or type(exc).__name__}"
        tail = redact(done.tail(), [access_key])
        if done.returncode == 0:
            return ""
        if UNKNOWN_FLAG.search(done.output):
            return NO_VALIDATE
        status = "timed out" if done.returncode is None else f"exited with status {done.returncode}"
        return f"hyperexecute --validate {status} on the rendered yaml: {tail}"

    def close(self) -> None:
        """Nothing to release: each launch cleans up after itself."""


def update_cli(options: Mapping[str, Any], context: PluginContext) -> tuple[bool, str]:
    """Run ``hyperexecute update`` while no launch runs the CLI (an exclusive file lock in ``state_dir``).

    Launches always pass ``--disable-updates`` and hold the lock shared, so the binary is never replaced
    under a launch. ``options`` is the launcher's ``[plugins.hyperexecute]`` table. Returns (ok, one line).
    """
    options = with_defaults(LAUNCHER_OPTIONS, options)
    path = shutil.which(options["cli"])
    if not path:
        return False, f"hyperexecute: CLI {options['cli']!r} is missing or not executable"
    try:
        username, access_key = credentials(context.environ, options["username_env"], options["access_key_env"])
    except KeyError as missing:
        return False, f"hyperexecute: environment variable {missing.args[0]} is not set"
    context.state_dir.mkdir(parents=True, exist_ok=True)
    log = context.state_dir / "hyperexecute-update.log"
    with cli.cli_lock(context.state_dir, exclusive=True):
        done = cli.run([path, "update"], context.state_dir, cli.cli_env(context.environ, username, access_key),
                       float(options["cli_timeout"]), log)
    redact_file(None, log, [access_key])
    tail = redact(done.tail(), [access_key])
    if done.returncode == 0:
        return True, f"hyperexecute: updated: {tail}"
    return False, f"hyperexecute: update failed ({'timed out' if done.returncode is None else done.returncode}): {tail}"


def wrapper_preview(payload: Path) -> str:
    """Which task wrapper the payload's setup.sh installs where every task runs it."""
    script = payload / WRAPPER
    if not script.is_file():
        return f"(the payload has no {WRAPPER}: its tasks would fail at once)\n"
    digest = hashlib.sha256(script.read_bytes()).hexdigest()
    return f"{WRAPPER_PATH} <- the payload's {WRAPPER} (sha256 {digest})\n"


def runner_preview(payload: Path, env: Mapping[str, str], udid: str) -> str:
    """The worker-runner config run-worker.sh would write on the phone's host, from the (masked) job env."""
    template = payload / RUNNER_TEMPLATE
    if not template.is_file():
        return f"(the payload has no {RUNNER_TEMPLATE})\n"
    host = {**env, "TC_DIR": str(PurePosixPath(WRAPPER_PATH).parent), "TC_WORKER_ID": udid or "<the phone's adb serial>"}
    return fill_runner(template.read_text(encoding="utf-8"), host)


def runner_problems(payload: Path, tc_version: str) -> list[str]:
    """The payload's runner template's keys that worker-runner or generic-worker ``tc_version`` does not know."""
    template = payload / RUNNER_TEMPLATE
    if not template.is_file() or version_problem(tc_version):
        return []
    try:
        unknown = unknown_keys(template_keys(template.read_text(encoding="utf-8")), tc_version)
    except (OSError, ValueError) as exc:
        return [f"payload {payload}: {RUNNER_TEMPLATE} is not JSON with @NAME@ placeholders ({exc})"]
    return [f"payload {payload}: {RUNNER_TEMPLATE} sets {key}, which generic-worker v{tc_version} does not know "
            "(it would exit 64 at start-up)" for key in unknown]


def _check_request(request: LaunchRequest) -> None:
    if any("," in label for label in request.labels):
        raise LaunchError(f"labels {request.labels!r} hold a comma, which --labels cannot carry")
    if request.udid and not valid_udid(request.udid):
        raise LaunchError(f"udid {request.udid!r} is not a UDID (1-128 of A-Z a-z 0-9 . _ -, not starting with - or .)")
    if request.pool.targeting == "pinned" and not request.udid:  # a group pool: launch_problems says why
        raise LaunchError(f"pool {request.pool.name} pins phones but the launch names no udid")


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
