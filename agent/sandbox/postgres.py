"""A throwaway PostgreSQL cluster on a free loopback port, built from the installed server binaries.

Passwords are really checked (scram-sha-256) for every role except the admin `postgres`, which is trusted
from loopback so tests and the sandbox demo can set things up without a password. Optionally serves TLS
with a self-signed CA made by `openssl`, so certificate failures and successes are real.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

ADMIN_USER = "postgres"
# Members of this role are turned away by pg_hba.conf (SQLSTATE 28000), for tests of that failure.
HBA_REJECTED_ROLE = "eha_hba_rejected"
_FAST = {  # a disposable cluster: durability is worthless, start-up time is not
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": "40",
    "log_min_messages": "warning",
}


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A certificate chain to serve instead of the one made with `openssl` (PEM bytes): e.g. one that expires soon."""

    ca: bytes  # written to `ca_cert`, the sslrootcert a client verifies against
    certificate: bytes
    key: bytes


class SandboxError(RuntimeError):
    """The throwaway cluster cannot be built or started; the message says what to install or check."""


def find_bindir() -> Path:
    """The directory holding initdb/pg_ctl/postgres, or SandboxError naming what to install."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)  # noqa: S603
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)  # newest version first
    for directory in candidates:
        if directory and all((Path(directory) / b).is_file() for b in ("initdb", "pg_ctl", "postgres")):
            return Path(directory)
    raise SandboxError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found via `pg_config --bindir` or in"
        " /usr/lib/postgresql/*/bin: install the server (e.g. apt-get install postgresql)"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class PostgresSandbox:
    """A PostgreSQL cluster in a temporary directory; `start()` builds it, `cleanup()` removes every trace."""

    host = "127.0.0.1"
    admin_user = ADMIN_USER

    def __init__(
        self, *, ssl: bool = False, settings: dict[str, str] | None = None, tls_files: TlsFiles | None = None
    ) -> None:
        self.bindir = find_bindir()
        self.ssl = ssl or tls_files is not None
        self.tls_files = tls_files
        self.settings = {**_FAST, **(settings or {})}
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="eha-pg-"))
        self.data = self.root / "data"
        self.ca_cert = self.root / "ca.crt"  # the sslrootcert a client verifies against (ssl=True only)
        self._as_postgres = os.geteuid() == 0  # initdb and postgres refuse to run as root
        self._running = False

    def __enter__(self) -> PostgresSandbox:
        self.start()
        return self

    def __exit__(
        self, _kind: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.cleanup()

    def admin_dsn(self, database: str = "postgres") -> str:
        """A DSN for the trusted admin user (no password needed from loopback)."""
        return f"postgresql://{self.admin_user}@{self.host}:{self.port}/{database}"

    def start(self) -> None:
        """Create the cluster on first use, then start it and wait until it accepts connections."""
        if not (self.data / "PG_VERSION").exists():
            self._init()
        self.port = self.port or free_port(self.host)
        options = f"-c port={self.port}"
        self._pg_ctl("start", "-w", "-t", "30", "-l", str(self.root / "server.log"), "-o", options)
        self._running = True

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are ended, nothing waits for clients)."""
        if self._running:
            self._pg_ctl("stop", "-w", "-m", "fast")
            self._running = False

    def restart(self) -> None:
        """Stop and start again on the same port with the same data."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop the server if it runs and delete the temporary directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server log, for error messages."""
        log = self.root / "server.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    def _init(self) -> None:
        self._own(self.root)
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.admin_user, "-E", "UTF8",
            "--locale=C", "--no-sync", "--auth-local=trust", "--auth-host=scram-sha-256",
        )  # fmt: skip
        settings = {**self.settings, "listen_addresses": f"'{self.host}'", "unix_socket_directories": "''"}
        if self.ssl:
            self._make_certificates()
            settings |= {"ssl": "on", "ssl_cert_file": "'server.crt'", "ssl_key_file": "'server.key'"}
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        (self.data / "pg_hba.conf").write_text(self._hba())

    def _hba(self) -> str:
        # First match wins: the admin is trusted, the rejected group is turned away, the rest need a password.
        return (
            f"host all {self.admin_user} {self.host}/32 trust\n"
            f"host all +{HBA_REJECTED_ROLE} {self.host}/32 reject\n"
            f"host all all {self.host}/32 scram-sha-256\n"
        )

    def _make_certificates(self) -> None:
        if self.tls_files is not None:
            self.ca_cert.write_bytes(self.tls_files.ca)
            (self.data / "server.crt").write_bytes(self.tls_files.certificate)
            (self.data / "server.key").write_bytes(self.tls_files.key)
            self._secure_key()
            return
        openssl = shutil.which("openssl")
        if openssl is None:
            raise SandboxError("ssl=True needs the openssl command line tool (apt-get install openssl)")
        key, crt = str(self.data / "server.key"), str(self.data / "server.crt")
        ca_key, csr, ext = self.root / "ca.key", self.root / "server.csr", self.root / "server.ext"
        ext.write_text(
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        )
        # 90 days: past the 30 days within which the agent warns of a certificate's expiry (tests that want the
        # warning serve a chain of their own: TlsFiles)
        curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        self._run(openssl, "req", "-x509", *curve, "-keyout", str(ca_key), "-out", str(self.ca_cert),
                  "-days", "90", "-subj", "/CN=ecs-health-agent sandbox CA", as_postgres=False)  # fmt: skip
        self._run(openssl, "req", *curve, "-keyout", key, "-out", str(csr), "-subj", "/CN=localhost",
                  as_postgres=False)  # fmt: skip
        self._run(openssl, "x509", "-req", "-in", str(csr), "-CA", str(self.ca_cert), "-CAkey", str(ca_key),
                  "-CAcreateserial", "-out", crt, "-days", "90", "-extfile", str(ext),
                  as_postgres=False)  # fmt: skip
        self._secure_key()

    def _secure_key(self) -> None:
        os.chmod(self.data / "server.key", 0o600)  # postgres refuses a private key that others can read
        self._own(self.data / "server.key", self.data / "server.crt")

    def _pg_ctl(self, *args: str) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), *args)
        except SandboxError as exc:
            raise SandboxError(f"{exc}\nserver log:\n{self.log_tail()}") from None

    def _run(self, *argv: str, as_postgres: bool = True) -> None:
        prefix = ["runuser", "-u", ADMIN_USER, "--"] if as_postgres and self._as_postgres else []
        # argv is built here from fixed arguments and our own paths, never from outside input
        done = subprocess.run([*prefix, *argv], capture_output=True, text=True, check=False, timeout=60)  # noqa: S603
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip()
            raise SandboxError(f"{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''} failed: {output}")

    def _own(self, *paths: Path) -> None:
        if not self._as_postgres:
            return
        try:
            account = pwd.getpwnam(ADMIN_USER)
        except KeyError:
            raise SandboxError(
                "running as root, but there is no `postgres` OS user to run the server as"
                " (initdb and postgres refuse root): create it or run as an ordinary user"
            ) from None
        for path in paths:
            os.chown(path, account.pw_uid, account.pw_gid)
