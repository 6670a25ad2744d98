"""A private MariaDB server in a temporary directory, for faults that are server-wide (stop, max_connections):
the machine's shared server is never stopped or reconfigured.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pymysql

from tests.support.ports import free_port

INSTALL_DB = "mariadb-install-db"
SERVER = "mariadbd"


class PrivateMariaDB:
    """mariadb-install-db into a temp dir, then mariadbd on a free loopback port; root has no password."""

    host = "127.0.0.1"
    admin_user = "root"

    def __init__(self) -> None:
        missing = [tool for tool in (INSTALL_DB, SERVER) if not _which(tool)]
        if missing:
            raise RuntimeError(f"{', '.join(missing)} not found: install mariadb-server")
        self.root = Path(tempfile.mkdtemp(prefix="eha-mariadb-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._as_mysql = os.geteuid() == 0  # mariadbd refuses to run as root without --user
        if self._as_mysql:
            shutil.chown(self.root, "mysql", "mysql")

    def install(self) -> None:
        user = ["--user=mysql"] if self._as_mysql else []
        done = subprocess.run(
            [_which(INSTALL_DB), "--no-defaults", f"--datadir={self.data}", *user,
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {done.stderr or done.stdout}")

    def start(self, timeout: float = 30.0, extra: tuple[str, ...] = ()) -> None:
        """Start the server (again, on the same port and data), with `extra` options, and wait until root can log
        in."""
        user = ["--user=mysql"] if self._as_mysql else []
        self._proc = subprocess.Popen(
            [_which(SERVER), "--no-defaults", f"--datadir={self.data}", *user, f"--port={self.port}",
             f"--bind-address={self.host}", f"--socket={self.root / 'mysqld.sock'}",
             f"--pid-file={self.root / 'mysqld.pid'}", f"--log-error={self.root / 'error.log'}",
             "--skip-name-resolve", "--innodb-buffer-pool-size=16M", "--max-connections=151", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                pymysql.connect(host=self.host, port=self.port, user=self.admin_user, connect_timeout=1).close()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"mariadbd did not accept logins within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """A normal shutdown (SIGTERM): sessions are ended, the port closes."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _wait_closed(self.host, self.port)

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 15) -> str:
        log = self.root / "error.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def _which(tool: str) -> str:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin") or ""


def _wait_closed(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                pass
        except OSError:
            return
        time.sleep(0.05)
