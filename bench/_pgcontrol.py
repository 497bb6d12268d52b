"""
A private PostgreSQL server that a fault script can stop and start again.

The server runs from the pgserver wheel's binaries in a temporary directory
and listens only on a Unix socket in that directory, so its connection string
stays the same across restarts. It is stopped by the process id in its
``postmaster.pid`` file, never by name, so no other server is touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from types import TracebackType
from typing import Any, Optional

import psutil
import psycopg2

DATABASE = "mnemic"


class RestartablePostgres:
    """
    A PostgreSQL server in a temporary directory, with `stop` and `start`.

    Use it as a context manager: leaving the block stops the server and
    removes its directory.
    """

    def __init__(self) -> None:
        import pgserver

        self.directory = tempfile.mkdtemp(prefix="mnemic-fault-pg-")
        self.pgdata = os.path.join(self.directory, "pgdata")
        self._server: Any = pgserver.get_server(self.pgdata, cleanup_mode=None)
        info = self._server.get_postmaster_info()
        self._socket_dir = str(info.socket_dir)
        self._log = os.path.join(self.pgdata, "log")
        self.dsn: str = self._server.get_uri(DATABASE)
        self._create_database(self._server.get_uri())

    @staticmethod
    def _create_database(admin_dsn: str) -> None:
        connection = psycopg2.connect(admin_dsn)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            connection.close()

    def pid(self) -> Optional[int]:
        """
        Return the postmaster's process id, or None when it is not running.
        """
        try:
            with open(os.path.join(self.pgdata, "postmaster.pid")) as pid_file:
                pid = int(pid_file.readline())
        except (OSError, ValueError):
            return None
        return pid if psutil.pid_exists(pid) else None

    def stop(self, timeout: float = 30.0) -> None:
        """
        Stop the server with a fast shutdown (SIGINT to the postmaster), which
        ends every open connection, and wait until it has exited.
        """
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while psutil.pid_exists(pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL (pid {pid}) did not stop in time")
            time.sleep(0.02)

    def start(self) -> None:
        """
        Start the stopped server again on the same socket, waiting until it
        accepts connections.
        """
        import pgserver

        pgserver.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-o", '-h ""', "-o", f"-k {self._socket_dir}", "-l", self._log,
             "start"],
            pgdata=self.pgdata, user=self._server.system_user, timeout=60,
        )

    def close(self) -> None:
        """
        Stop the server and remove its directory.
        """
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RestartablePostgres:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.close()
