"""``provisioner run``: the daemon."""

from __future__ import annotations

import fcntl
import os
import signal
import threading
from pathlib import Path

import click
from loguru import logger

from .. import notify
from ..config import Settings
from ..ledger import Ledger
from ..ledger.leadership import Lease
from ..ledger.select import open_daemon_ledger
from ..logs import redact, setup
from ..values import one_line
from ..loop import Provisioner
from ..runtime import settle_collector
from .common import config_option, fail, validate

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR2)


def hold_state_dir(state_dir: Path):
    """One daemon per state directory: a second would cancel the first's queued launches and book its phones."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = open(state_dir / "daemon.lock", "a")  # noqa: SIM115 - held for the life of the process
    except OSError as exc:
        fail([f"{state_dir}: cannot lock the state directory: {exc.strerror or type(exc).__name__}"])
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        fail([f"{state_dir}: another provisioner is running with this state directory"])
    return handle


class SignalWatcher:
    """Stop signals (SIGTERM, SIGINT, SIGHUP, SIGUSR2), counted wherever the kernel delivers them.

    First: stop starting launches and finish the submissions in flight. Second: say one more exits. Third: exit
    at once. Python runs signal handlers in the main thread only, and a signal the kernel hands to a submission
    thread neither interrupts the main thread's wait nor runs a handler while the main thread is blocked (e.g.
    joining a submission that hangs). So the Python handler does nothing; every signal's number also lands in a
    wakeup pipe (written by the C-level handler in whichever thread got it), and a watcher thread reading it acts.
    """

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.received = 0

    def install(self) -> None:
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, args=(read_fd,), name="signal-watcher", daemon=True).start()
        for sig in STOP_SIGNALS:
            signal.signal(sig, lambda _signum, _frame: None)  # the watcher acts; this only keeps the default away

    def _watch(self, read_fd: int) -> None:
        wanted = {int(s) for s in STOP_SIGNALS}
        while True:
            data = os.read(read_fd, 64)
            if not data:
                return
            for signum in data:
                if signum in wanted:
                    self.on_signal(signum)

    def on_signal(self, signum: int) -> None:
        self.received += 1
        name = signal.Signals(signum).name
        if self.received == 1:
            logger.info("{}: stopping: no new launches, waiting for submissions in flight", name)
            notify.stopping()
            self.stop.set()
        elif self.received == 2:
            logger.warning("{}: still stopping; one more signal exits at once", name)
        else:
            logger.error("{}: exiting at once", name)
            os._exit(128 + signum)


def open_ledger(settings: Settings) -> tuple[Ledger, Lease | None]:
    try:
        return open_daemon_ledger(settings)
    except Exception as exc:  # noqa: BLE001 - OSError, or the driver's error: one line, redacted
        where = settings.state_dir / "ledger.sqlite3" if settings.ledger == "sqlite" else "the postgresql ledger"
        fail([redact(f"{where}: cannot open the ledger: {one_line(str(exc))}")])


@click.command()
@config_option
@click.option("--dry-run", is_flag=True, help="Observe, plan and log; launch nothing.")
@click.option("--once", is_flag=True, help="Run one cycle and exit.")
@click.option("--cycles", type=click.IntRange(min=1), help="Stop after this many cycles.")
@click.option("--duration", type=click.FloatRange(min=0), help="Stop after this many seconds.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one JSON object a line, for journald.")
@click.option("--log-level", type=click.Choice(["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
              default="INFO", show_default=True)
def run(config_path, dry_run: bool, once: bool, cycles: int | None, duration: float | None, log_format: str,
        log_level: str) -> None:
    """Run the provisioner until stopped (SIGTERM, SIGINT, SIGHUP or SIGUSR2; a third exits at once).

    Before its first cycle it validates exactly what ``provisioner check`` does (without the network)."""
    setup(log_level, log_format)
    loaded = validate(config_path, dry_run=dry_run)
    settings = loaded.config.settings
    os.umask(0o077)  # whatever the daemon writes (ledger, job directories, logs) is its own
    # one daemon per state directory with SQLite; with PostgreSQL, any number: the lease makes one active
    lock = None if dry_run or settings.ledger != "sqlite" else hold_state_dir(settings.state_dir)
    ledger, lease = (None, None) if dry_run else open_ledger(settings)
    stop = threading.Event()
    SignalWatcher(stop).install()
    provisioner = Provisioner(
        loaded.config, loaded.runtime, ledger, loaded.context.clock, hook=loaded.manager.hook, dry_run=dry_run,
        lease=lease,
    )
    logger.info(
        "provisioner started: {} pools, cycle every {:g} s{}", len(loaded.runtime.pools), settings.interval,
        " (dry run: nothing will be launched)" if dry_run else "",
    )
    period = notify.watchdog_seconds()
    if period is not None and period < 2 * settings.interval:
        logger.warning(
            "systemd's watchdog ({:g} s) is shorter than two cycles ({:g} s): raise WatchdogSec", period,
            2 * settings.interval,
        )
    notify.ready(f"{len(loaded.runtime.pools)} pools")
    settle_collector()
    try:
        provisioner.run(stop, max_cycles=1 if once else cycles, duration=duration)
    finally:
        loaded.runtime.close()
        if lease is not None:
            lease.close()
        if ledger is not None:
            ledger.close()
        if lock is not None:
            lock.close()
    logger.info("provisioner stopped after {} cycles", provisioner.cycles)
