"""A throwaway PostgreSQL server from Debian's packages, for tests and benchmarks.

PostgreSQL refuses to run as root, so as root the data directory is owned by, and the server
run as, the ``postgres`` OS user (``runuser``). It listens on 127.0.0.1 and a free port only.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<ver>/bin`` with initdb, or the one on PATH."""
    found = []
    for p in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        ver = Path(p).parent.parent.name
        with contextlib.suppress(ValueError):
            found.append((float(ver), Path(p).parent))
    if found:
        return max(found)[1]
    which = shutil.which("initdb")
    return Path(which).parent if which else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempPostgres:
    """``with TempPostgres() as pg: url = pg.create_database()``."""

    def __init__(self, *, fsync: bool = False, bindir: Path | None = None, max_connections: int = 200) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise RuntimeError("no PostgreSQL server binaries (apt-get install postgresql)")
        self.bindir: Path = found
        self.fsync = fsync
        self.max_connections = max_connections
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="kyokan-pg-"))
        self.data = self.root / "data"
        self.sock = self.root / "sock"
        self.user = "postgres"
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def start(self) -> TempPostgres:
        self.sock.mkdir(parents=True)
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.sock, "postgres", "postgres")
        else:
            self.user = os.environ.get("USER") or "postgres"
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        opts = (f"-p {{port}} -k {self.sock} -c listen_addresses=127.0.0.1 -c max_connections={self.max_connections}"
                + ("" if self.fsync else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"))
        last = ""
        for _ in range(5):  # a port picked free can be taken before the server binds it
            self.port = free_port()
            r = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w",
                          "-t", "60", "-o", opts.format(port=self.port), "start", check=False)
            if r.returncode == 0:
                return self
            last = r.stderr + (self.root / "log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"could not start PostgreSQL: {last}")

    @property
    def admin_url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str | None = None) -> str:
        import psycopg

        name = name or f"kyokan_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.data.exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TempPostgres:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def wait_port(host: str, port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not open")
