"""A throwaway PostgreSQL server for the tests: initdb, pg_ctl, a free loopback port, trust auth, stopped at the end.

The server programs come from PATH or /usr/lib/postgresql/*/bin. PostgreSQL refuses to run as root: as root,
they run as the ``postgres`` OS user (``runuser``), in a temporary directory that user owns. With no server
programs the tests that need one are skipped, unless ``PROVISIONER_REQUIRE_POSTGRES=1`` (``.ci/run`` sets it when
the programs are installed): then they fail.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

REQUIRE = "PROVISIONER_REQUIRE_POSTGRES"


def find(program: str) -> str | None:
    found = shutil.which(program)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), reverse=True)
    return candidates[0] if candidates else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def available() -> None:
    """Skip the test without the server programs or psycopg; fail instead when ``PROVISIONER_REQUIRE_POSTGRES=1``."""
    import pytest

    required = os.environ.get(REQUIRE) == "1"
    if not (find("initdb") and find("pg_ctl")):
        if required:
            pytest.fail(f"{REQUIRE}=1 but initdb and pg_ctl are not found")
        pytest.skip("PostgreSQL's server programs are not installed (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        if required:
            raise
        pytest.skip("psycopg is not installed (pip install -e '.[test]')")


class Server:
    """One PostgreSQL server in a temporary directory; ``database()`` makes a fresh database and returns its URL."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = find("initdb"), find("pg_ctl")
        if not self.initdb or not self.pg_ctl:
            raise FileNotFoundError("initdb and pg_ctl not found (apt-get install postgresql)")
        self.as_root = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="provisioner-pg-"))
        self.data, self.sockets, self.log = self.dir / "data", self.dir / "run", self.dir / "server.log"
        self.sockets.mkdir()
        if self.as_root:
            user = pwd.getpwnam("postgres")
            for path in (self.dir, self.sockets):
                os.chown(path, user.pw_uid, user.pw_gid)
        self.port = free_port()
        self.count = 0
        self._run([self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
        self.start()

    def _run(self, argv: list[str]) -> None:
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stdout}{done.stderr}"
                               f"{self.log.read_text() if self.log.exists() else ''}")

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sockets} -c fsync=off -c max_connections=200"
        self._run([self.pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60", "start"])

    def stop(self) -> None:
        self._run([self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"])

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def database(self) -> str:
        import psycopg

        self.count += 1
        name = f"t{self.count}"
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
