"""A private PostgreSQL cluster that a test may stop and start at will.

`initdb` into a temporary directory, on a free loopback port, trust
authentication, the Unix socket inside the data directory: nothing is shared
with the PostgreSQL of the host (or of CI). `initdb` and `pg_ctl` refuse to run
as root, so when the tests run as root (as they do in CI) both are run as the
`postgres` user through `runuser`; as `postgres` they run directly; as anyone
else the cluster cannot be made and `PgCluster.unavailable_reason()` says why
(the caller skips).

    cluster = PgCluster.create()         # initdb + start
    url = cluster.migrated_database("app")  # postgresql+psycopg://postgres@127.0.0.1:<port>/app, migrated
    cluster.stop()                        # pg_ctl stop -m fast: open connections are cut
    cluster.start()
    cluster.cleanup()                     # stop (immediate) and remove the directory
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import psycopg

from e2e.live import BIN, ROOT, free_port, server_env

OWNER = "postgres"
TIMEOUT = 60  # seconds, for initdb and each pg_ctl call


def _bin_dir() -> Path | None:
    """The newest installed server's bin directory (initdb, pg_ctl)."""
    def version(path: str) -> int:
        name = Path(path).parts[-3]  # /usr/lib/postgresql/<version>/bin/initdb
        return int(name) if name.isdigit() else 0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _temp_parent() -> str | None:
    """Where the cluster's directory goes: the usual temporary directory, unless
    running as root with one that `postgres` cannot reach (pytest's own is 0700)."""
    if os.geteuid() != 0:
        return None
    parent = Path(tempfile.gettempdir()).resolve()
    reachable = all(p.stat().st_mode & stat.S_IXOTH for p in (parent, *parent.parents))
    return None if reachable else "/tmp"


def _owner():
    try:
        return pwd.getpwnam(OWNER)
    except KeyError:
        return None


class PgCluster:
    def __init__(self, bin_dir: Path, root: Path, port: int):
        self.bin_dir = bin_dir
        self.root = root  # the temporary directory; data/ and the server log inside
        self.data = root / "data"
        self.log_path = root / "postgres.log"
        self.port = port
        self.running = False

    # ---- making one ---------------------------------------------------------------
    @staticmethod
    def unavailable_reason() -> str | None:
        """Why a private cluster cannot be made here, or None when it can."""
        if _bin_dir() is None:
            return "no PostgreSQL server binaries (initdb) under /usr/lib/postgresql/*/bin or on PATH"
        uid = os.geteuid()
        owner = _owner()
        if uid == 0:
            if owner is None:
                return f"running as root and there is no {OWNER!r} user to run initdb/pg_ctl as"
            if shutil.which("runuser") is None:
                return "running as root and runuser is missing (needed to run initdb/pg_ctl as postgres)"
            return None
        if owner is not None and uid == owner.pw_uid:
            return None
        return f"initdb/pg_ctl refuse root and this user (uid {uid}) is neither root nor {OWNER!r}"

    @classmethod
    def create(cls) -> PgCluster:
        """initdb a new cluster in a temporary directory and start it."""
        reason = cls.unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        root = Path(tempfile.mkdtemp(prefix="taskchat-pg-", dir=_temp_parent()))
        owner = _owner()
        if os.geteuid() == 0:
            os.chown(root, owner.pw_uid, owner.pw_gid)
        os.chmod(root, 0o700)
        cluster = cls(_bin_dir(), root, free_port())
        try:
            cluster._run(
                "initdb", "-D", str(cluster.data), "-U", OWNER, "--auth=trust", "--encoding=UTF8",
                "--locale=C", "--no-sync", "--no-instructions",
            )
            with open(cluster.data / "postgresql.conf", "a") as conf:
                conf.write(
                    "\n# taskchat test cluster\n"
                    "listen_addresses = '127.0.0.1'\n"
                    f"port = {cluster.port}\n"
                    f"unix_socket_directories = '{cluster.data}'\n"
                    "fsync = off\nsynchronous_commit = on\nfull_page_writes = off\n"
                    "max_connections = 50\nshared_buffers = 16MB\n"
                )
            cluster.start()
        except BaseException:
            cluster.cleanup()
            raise
        return cluster

    # ---- running it ---------------------------------------------------------------
    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", OWNER, "--", *cmd]
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=self.root, stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{program} {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                f"{self.log_tail()}"
            )
        return result

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-t", str(TIMEOUT), "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """`fast` rolls back open transactions and cuts every connection; `immediate` is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", str(TIMEOUT), "stop")
        self.running = False

    def is_running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def cleanup(self) -> None:
        """Stop the cluster if it runs (immediately: nothing in it matters) and remove its directory."""
        try:
            if self.data.exists() and self.is_running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    # ---- using it -----------------------------------------------------------------
    def url(self, dbname: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{OWNER}@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", **kwargs) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=OWNER, dbname=dbname, connect_timeout=5,
                               **kwargs)

    def create_database(self, name: str) -> str:
        """A new, empty database; answers its SQLAlchemy URL."""
        with self.connect(autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def migrated_database(self, name: str) -> str:
        """A new database brought to the latest schema by `flask db upgrade`, as a deploy does."""
        url = self.create_database(name)
        result = subprocess.run(
            [str(BIN / "flask"), "db", "upgrade"], cwd=ROOT, env=server_env(url, APP_ENV="development"),
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RuntimeError(f"flask db upgrade failed:\n{result.stdout}\n{result.stderr}")
        return url

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "[no postgres log]"
        return f"[postgres log {self.log_path}]\n" + "\n".join(text[-lines:])
