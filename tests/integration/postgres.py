"""A throwaway PostgreSQL 15 cluster for the tests: initdb in a temporary folder, the
server on a free loopback port (socket in that folder too), one database and its owner.

Debian's PostgreSQL refuses to run as root, so as root every command runs as the
``postgres`` user (``runuser``); the folder is handed to that user first.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from flywheel.supervise.ports import free_port

PG_BIN = Path(os.environ.get("FLYWHEEL_PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> bool:
    return (PG_BIN / "initdb").is_file() and (
        os.geteuid() != 0 or shutil.which("runuser") is not None
    )


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _run(argv: list[str], log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run(_as_postgres(argv), stdout=out, stderr=subprocess.STDOUT, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {log.read_text()[-2000:]}")


@dataclass
class Postgres:
    root: Path
    port: int
    user: str = "flywheel"
    password: str = "flywheel-test"
    database: str = "prefect"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        return (
            f"postgresql+asyncpg://{self.user}:{self.password}@127.0.0.1:{self.port}/"
            f"{self.database}"
        )

    def psql(self, sql: str, database: str = "postgres") -> str:
        argv = [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        done = subprocess.run(
            _as_postgres([*argv, "-d", database, "-tAc", sql]),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.strip()

    def start(self) -> Postgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)
        setup = self.root / "setup.log"
        initdb = [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres"]
        _run([*initdb, "--auth=trust", "-E", "UTF8", "--no-sync"], setup)
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log)]
        _run([*pg_ctl, "-w", "-t", "60", "-o", options, "start"], setup)
        self.psql(f"CREATE USER {self.user} PASSWORD '{self.password}'")
        self.psql(f"CREATE DATABASE {self.database} OWNER {self.user}")
        return self

    def with_database(self, name: str) -> Postgres:
        """This server with a new, empty database ``name``: tests that share a server must
        not see each other's deployments and runs."""
        self.psql(f"CREATE DATABASE {name} OWNER {self.user}")
        return dataclasses.replace(self, database=name)

    def stop(self) -> None:
        if self.data.is_dir():
            _run(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                self.root / "setup.log",
            )
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(root: Path) -> Postgres:
    pg = Postgres(root, free_port())
    try:
        return pg.start()
    except BaseException:
        pg.stop()
        raise
