"""A PostgreSQL server of the local cluster's own: Debian's binaries, a data folder in the
cluster's folder, TCP on 127.0.0.1 only (no Unix socket), password authentication.

PostgreSQL refuses to run as root; as root (CI, a container) its commands run as the
``postgres`` user that Debian's package creates, and the data folder belongs to it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

INSTALL_HINT = "apt-get install postgresql"
#: the cluster's database superuser (password authentication over TCP)
PG_USER = "vprim"


class PostgresError(RuntimeError):
    """PostgreSQL is missing or failed to start or stop; the message carries its own words."""


def _bin(name: str) -> str:
    """``name`` from the newest PostgreSQL under /usr/lib/postgresql, else from PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    for folder in reversed(versions):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if not found:
        raise PostgresError(f"PostgreSQL's {name} is not installed: {INSTALL_HINT}")
    return found


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(_as_owner(argv), capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise PostgresError(f"{what} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")


def _give_to_owner(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def _initdb(data: Path, password: str) -> None:
    data.mkdir(parents=True, mode=0o700)
    _give_to_owner(data)
    # beside the data folder: initdb wants that one empty
    with tempfile.NamedTemporaryFile("w", dir=data.parent, delete=False) as pwfile:
        pwfile.write(password + "\n")
    _give_to_owner(Path(pwfile.name))
    try:
        argv = [_bin("initdb"), "-D", str(data), "-U", PG_USER, "-E", "UTF8"]
        argv += ["--auth=scram-sha-256", f"--pwfile={pwfile.name}", "--no-instructions"]
        _run(argv, "initdb")
    finally:
        os.unlink(pwfile.name)


def start(data: Path, port: int, password: str) -> None:
    """Create the cluster on first use, then start it and wait until it accepts connections."""
    if not (data / "PG_VERSION").exists():
        _initdb(data, password)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories=''"
    argv = [_bin("pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-o", options]
    _run([*argv, "-w", "-t", "60", "start"], "starting PostgreSQL")


def pid(data: Path) -> int:
    """The postmaster's pid, from its pid file."""
    return int((data / "postmaster.pid").read_text().split("\n", 1)[0])


def stop(data: Path) -> None:
    if (data / "postmaster.pid").exists():
        _run([_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], "stopping PostgreSQL")


def create_database(port: int, password: str, name: str) -> None:
    """``CREATE DATABASE name`` unless it exists (Dagster creates its tables on first use)."""
    import psycopg2

    con = psycopg2.connect(
        host="127.0.0.1", port=port, user=PG_USER, password=password, dbname="postgres"
    )
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        con.close()
