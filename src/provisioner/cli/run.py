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
from ..ledger import Ledger
from ..logs import setup
from ..loop import Provisioner
from .common import config_option, fail, load_all

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)


def hold_state_dir(state_dir: Path):
    """One daemon per state directory: a second would cancel the first's queued launches and book its phones."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = open(state_dir / "daemon.lock", "a")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        fail([f"{state_dir}: another provisioner is running with this state directory"])
    return handle


def install_signal_handlers(stop: threading.Event) -> None:
    """First signal: stop starting launches and finish the submissions in flight. Third: exit at once."""
    received = []

    def handler(signum, _frame) -> None:
        received.append(signum)
        name = signal.Signals(signum).name
        if len(received) == 1:
            logger.info("{}: stopping: no new launches, waiting for submissions in flight", name)
            notify.stopping()
            stop.set()
        elif len(received) == 2:
            logger.warning("{}: still stopping; one more signal exits at once", name)
        else:
            logger.error("{}: exiting at once", name)
            os._exit(128 + signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    _wake_main_thread_on_signal(stop)


def _wake_main_thread_on_signal(stop: threading.Event) -> None:
    """Python runs signal handlers in the main thread only, and a signal the kernel hands to a submission
    thread does not interrupt the main thread's sleep: the stop would wait for the end of the cycle's sleep.
    The signal's number also lands in a wakeup pipe; a watcher thread sets ``stop``, the main thread wakes
    and runs the handler at once."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    wanted = {int(s) for s in STOP_SIGNALS}

    def watch() -> None:
        while True:
            data = os.read(read_fd, 64)
            if not data:
                return
            if wanted & set(data):
                stop.set()

    threading.Thread(target=watch, name="signal-wakeup", daemon=True).start()


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
    """Run the provisioner until stopped (SIGTERM, SIGINT or SIGUSR2)."""
    setup(log_level, log_format)
    loaded, problems = load_all(config_path, dry_run=dry_run)
    if loaded is None or problems:
        fail(problems)
    assert loaded is not None
    settings = loaded.config.settings
    os.umask(0o077)  # whatever the daemon writes (ledger, job directories, logs) is its own
    lock = None if dry_run else hold_state_dir(settings.state_dir)
    ledger = None if dry_run else Ledger(settings.state_dir / "ledger.sqlite3")
    stop = threading.Event()
    install_signal_handlers(stop)
    provisioner = Provisioner(
        loaded.config, loaded.runtime, ledger, loaded.context.clock, hook=loaded.manager.hook, dry_run=dry_run,
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
    try:
        provisioner.run(stop, max_cycles=1 if once else cycles, duration=duration)
    finally:
        loaded.runtime.close()
        if ledger is not None:
            ledger.close()
        if lock is not None:
            lock.close()
    logger.info("provisioner stopped after {} cycles", provisioner.cycles)
