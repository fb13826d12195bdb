"""PostgreSQL servers that tests (and ``ads-infra bench db``) start themselves, on free ports.

- :class:`PgBouncer`: PgBouncer in transaction pooling mode in front of a server;
- :class:`Cluster`: a private PostgreSQL cluster (initdb), optionally with TLS
  (a self-signed CA and server certificate made with openssl) or as a
  streaming replica of another (``pg_basebackup -R``).

The machine's PostgreSQL is never stopped or reconfigured. The server
programs refuse to run as root, so they run as the ``postgres`` user (when
the tests run as root), in folders of their own under the system's temp dir.
The Debian packages they need (``postgresql-15``, ``pgbouncer``, ``openssl``)
are installed by ``.ci/install-packages`` (run by ``.ci/run`` and ``make test``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = [
    "Cluster",
    "PgBouncer",
    "TlsFiles",
    "missing_programs",
    "server_bin",
]

SERVER_USER = "postgres"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_bin() -> Path | None:
    """The newest installed PostgreSQL server's bin folder (initdb, pg_ctl, pg_basebackup)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return Path(found[-1]).parent if found else None


def pgbouncer_bin() -> str | None:
    """PgBouncer's program (Debian puts it in /usr/sbin, which a user's PATH may lack)."""
    found = shutil.which("pgbouncer")
    if found is None and os.access("/usr/sbin/pgbouncer", os.X_OK):
        found = "/usr/sbin/pgbouncer"
    return found


def missing_programs(*names: str) -> list[str]:
    """Which of ``names`` (``initdb``, ``pgbouncer``, ``openssl``) cannot be found."""
    bindir = server_bin()
    missing = []
    for name in names:
        if name in ("initdb", "pg_ctl", "pg_basebackup"):
            if bindir is None or not (bindir / name).exists():
                missing.append(name)
        elif name == "pgbouncer":
            if pgbouncer_bin() is None:
                missing.append(name)
        elif shutil.which(name) is None:
            missing.append(name)
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            missing.append(f"user {SERVER_USER}")
    return missing


def _as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--", *args] if os.geteuid() == 0 else args


def _run(args: list[str], *, timeout: float = 120.0) -> str:
    done = subprocess.run(
        _as_server_user(args), capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    return done.stdout


def _own_dir(prefix: str) -> Path:
    """A fresh folder the server user owns (pytest's tmp_path is root's, mode 700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVER_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _chown_tree(path: Path) -> None:
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(SERVER_USER)
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _wait_for_port(port: int, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"gave up waiting for {what} on port {port}")


class TlsFiles:
    """A self-signed CA, a server certificate it signed (for ``localhost`` only), another CA."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = directory / "ca.crt"
        self.server_cert = directory / "server.crt"
        self.server_key = directory / "server.key"
        self.wrong_ca = directory / "wrong-ca.crt"

    def make(self) -> None:
        d = self.directory

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

        for name in ("ca", "wrong-ca"):
            openssl(
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN=ads-infra {name}",
            )  # fmt: skip
        # localhost only: verify-full to 127.0.0.1, the same server, must fail on the name.
        (d / "san.ext").write_text("subjectAltName=DNS:localhost\n")
        openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
            "-out", "server.csr", "-subj", "/CN=localhost",
        )  # fmt: skip
        openssl(
            "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", "server.crt", "-extfile", "san.ext",
        )  # fmt: skip
        for path in d.iterdir():
            path.chmod(0o644)
        self.server_key.chmod(0o600)  # PostgreSQL refuses a key others can read
        _chown_tree(d)


class Cluster:
    """A private PostgreSQL cluster on a free port; stop() and start() again at will."""

    def __init__(self, name: str, *, tls: TlsFiles | None = None) -> None:
        bindir = server_bin()
        if bindir is None:
            raise RuntimeError("no PostgreSQL server programs (initdb) are installed")
        self.bindir = bindir
        self.name = name
        self.root = _own_dir(f"ads-pg-{name}-")
        self.data = self.root / "data"
        self.port = _free_port()
        self.tls = tls
        self.primary: Cluster | None = None

    def url(self, database: str = "postgres", host: str = "127.0.0.1", query: str = "") -> str:
        tail = f"?{query}" if query else ""
        return f"postgresql+asyncpg://postgres@{host}:{self.port}/{database}{tail}"

    def _settings(self) -> str:
        lines = [
            f"port = {self.port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.root}'",
            "max_connections = 40",
            "shared_buffers = 16MB",
            "fsync = off",  # throwaway data: durability across a machine crash is not tested
            "synchronous_commit = off",
            "full_page_writes = off",
            "wal_level = replica",
            "max_wal_senders = 5",
            "hot_standby = on",
            "log_min_messages = warning",
        ]
        if self.tls is not None:
            lines += [
                "ssl = on",
                f"ssl_cert_file = '{self.tls.server_cert}'",
                f"ssl_key_file = '{self.tls.server_key}'",
            ]
        return "\n".join(lines) + "\n"

    def _hba(self) -> str:
        if self.tls is not None:  # TLS or nothing: a plain connection is refused
            return (
                "local all all trust\n"
                "hostssl all all 127.0.0.1/32 trust\n"
                "hostnossl all all 127.0.0.1/32 reject\n"
            )
        return (
            "local all all trust\n"
            "host all all 127.0.0.1/32 trust\n"
            "host replication all 127.0.0.1/32 trust\n"
        )

    def init(self) -> Cluster:
        _run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
              "--no-sync", "-E", "UTF8"])  # fmt: skip
        self._configure()
        return self

    def _configure(self) -> None:
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(self._settings())
        (self.data / "pg_hba.conf").write_text(self._hba())
        _chown_tree(self.data)

    def init_replica_of(self, primary: Cluster) -> Cluster:
        """A hot standby streaming from ``primary`` (which must be running)."""
        self.primary = primary
        _run([str(self.bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
              "-U", "postgres", "-D", str(self.data), "-R", "-X", "stream",
              "--no-sync"])  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {self.port}\nunix_socket_directories = '{self.root}'\n")
        _chown_tree(self.data)
        return self

    def start(self) -> None:
        _run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
              "-w", "-t", "60", "start"])  # fmt: skip
        _wait_for_port(self.port, f"PostgreSQL {self.name}")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            _run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class PgBouncer:
    """PgBouncer in transaction pooling mode in front of 127.0.0.1:``target_port``."""

    def __init__(self, target_port: int, *, pool_size: int = 8, ignore: str = "") -> None:
        """``ignore``: startup parameters PgBouncer lets through (``ignore_startup_parameters``)."""
        self.target_port = target_port
        self.ignore = ignore
        self.root = _own_dir("ads-pgbouncer-")
        self.port = _free_port()
        self.pool_size = pool_size
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str, query: str = "") -> str:
        tail = f"?{query}" if query else ""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}{tail}"

    def start(self) -> None:
        (self.root / "users.txt").write_text('"postgres" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={self.target_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.root / 'users.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\n"
            "max_client_conn = 500\n"
            f"ignore_startup_parameters = {self.ignore}\n"
            f"logfile = {self.root / 'pgbouncer.log'}\n"
        )
        _chown_tree(self.root)
        self.process = subprocess.Popen(
            _as_server_user([pgbouncer_bin() or "pgbouncer", str(self.root / "pgbouncer.ini")]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, "PgBouncer", timeout=20)
        time.sleep(0.1)
        if self.process.poll() is not None:  # the port answered, but not for PgBouncer
            raise RuntimeError(f"PgBouncer exited at start: {self._log_tail()}")

    def _log_tail(self) -> str:
        log = self.root / "pgbouncer.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            # Gone before its test ended (a soak once lost its PgBouncer mid-run): keep
            # why in the test's report, since the log goes with the folder below.
            sys.stderr.write(
                f"PgBouncer had exited ({self.process.returncode}): {self._log_tail()}\n"
            )
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)
