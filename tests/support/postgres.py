"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temporary folder, loopback.

PostgreSQL refuses to run as root, so under root (CI, this machine) the cluster belongs to the
unprivileged `postgres` user the Debian package creates, and its commands run through `runuser`.
Durability is switched off (`fsync`, `synchronous_commit`): the data lives as long as the session.
`pg_ctl stop` in the session fixture's teardown stops it, whatever the tests did.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

UNPRIVILEGED_USER: Final = "postgres"
SUPERUSER: Final = "apimp"
START_ATTEMPTS: Final = 3  # a free port found by binding may be taken before PostgreSQL binds it


def binaries() -> Path | None:
    """The folder of `initdb` and `pg_ctl`: on PATH, or where Debian installs the newest version."""
    found = shutil.which("initdb")
    if found is not None:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def with_database(url: str, name: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@dataclass
class PostgresServer:
    bin_dir: Path
    root: Path
    port: int
    run_as: tuple[str, ...]

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bin_dir / program), *args], check=True, capture_output=True, timeout=60
        )


def start_postgres(bin_dir: Path) -> PostgresServer:
    """initdb in a new temporary folder, then start on a free loopback port (stop() removes it all)."""
    root = Path(tempfile.mkdtemp(prefix="apimp-postgres-"))
    run_as: tuple[str, ...] = ()
    if os.geteuid() == 0:
        user = pwd.getpwnam(UNPRIVILEGED_USER)
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = ("runuser", "-u", UNPRIVILEGED_USER, "--")
    server = PostgresServer(bin_dir, root, port=0, run_as=run_as)
    try:
        server._run(
            "initdb", "-D", str(root / "data"), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync"
        )
        for attempt in range(1, START_ATTEMPTS + 1):
            if _started_on_a_free_port(server) or attempt == START_ATTEMPTS:
                break
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    if server.port == 0:
        log = (root / "log").read_text(errors="replace")[-2000:]
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start; its log ends:\n{log}")
    return server


def _started_on_a_free_port(server: PostgresServer) -> bool:
    port = _free_port()
    options = (
        f"-h 127.0.0.1 -p {port} -k {server.root} -c fsync=off -c synchronous_commit=off"
        " -c full_page_writes=off -c max_connections=300"
    )
    data, log = str(server.root / "data"), str(server.root / "log")
    try:
        server._run("pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "start")
    except subprocess.CalledProcessError:
        return False
    server.port = port
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
