"""A real PostgreSQL server for the tests, started by the suite itself (pytest plugin).

`postgres_server` (session) runs initdb and pg_ctl in a temporary folder and listens on a
free port on 127.0.0.1; `postgres_url` (per test) is a fresh, empty database on it.

PostgreSQL refuses to run as root: as root, the server runs as the system user
`modelwatch_pg` (created when missing). Without server binaries the tests are skipped with
the reason, except in CI (CI=true), where that is a failure: `make test` installs Debian's
`postgresql` package first (scripts/system-deps.sh).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_USER = "modelwatch_pg"
_counter = itertools.count()


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", PG_USER, "--", *cmd]


def _ensure_user() -> None:
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        PG_USER], check=True, capture_output=True)


def _run(cmd: list[str], log: Path | None = None, timeout: float = 120) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        tail = log.read_text()[-2000:] if log and log.exists() else ""
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-2000:]}\n{tail}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[dict]:
    """Start a throwaway PostgreSQL server; yields {"host", "port", "user"}; stopped at the end."""
    bindir = _bin_dir()
    if bindir is None:
        reason = ("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's "
                  "`postgresql` package (make test does, via scripts/system-deps.sh)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " — required in CI")
        pytest.skip(reason)
    if os.geteuid() == 0:
        _ensure_user()
    # Not under pytest's tmp folder: it is private to root (0700) and the server user must
    # reach its data directory.
    root = Path(tempfile.mkdtemp(prefix="modelwatch-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        shutil.chown(root, PG_USER, PG_USER)
    os.chmod(root, 0o700)
    port = _free_port()
    started = False
    try:
        _run(_as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                              "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"]))
        opts = (f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        _run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts,
                              "-w", "-t", "60", "start"]), log)
        started = True
        yield {"host": "127.0.0.1", "port": port, "user": "postgres"}
    finally:
        if started:
            subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                                            "-w", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server) -> Iterator[str]:
    """A fresh, empty database on the test server, as a SQLAlchemy URL; dropped afterwards."""
    import psycopg

    s = postgres_server
    name = f"mw_{os.getpid()}_{next(_counter)}"
    admin = f"host={s['host']} port={s['port']} user={s['user']} dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://{s['user']}@{s['host']}:{s['port']}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres,
                                                                    pytest.mark.xdist_group("postgres")])])
def any_db_url(request, tmp_path) -> str:
    """The same test on a SQLite file and on the PostgreSQL test server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'modelwatch.sqlite'}"
    return request.getfixturevalue("postgres_url")
