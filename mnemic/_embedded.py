"""
The embedded PostgreSQL server, started with pgserver when no DSN is given.
"""

from __future__ import annotations

import json
import os
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from twisted.logger import Logger

DATABASE_NAME = "mnemic"

log = Logger()


def default_data_dir() -> str:
    """
    Return the per-user directory for the embedded server's files.
    """
    import platformdirs

    return os.path.join(platformdirs.user_data_dir("mnemic"), "pgdata")


@contextmanager
def _quiet_runtime_dir_warning() -> Iterator[None]:
    # platformdirs, which pgserver uses, warns when XDG_RUNTIME_DIR is unset
    # (as under root or in containers) and falls back to /tmp, which works.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        yield


def _forget_dead_users(data_dir: str) -> None:
    """
    Remove processes that no longer exist from pgserver's list of the
    server's users.

    pgserver stops the server when the last process in that list lets go of
    it. A process killed with SIGKILL never removes itself, so without this
    the server would never be stopped again.
    """
    import psutil
    from pgserver.postgres_server import PostgresServer

    path = os.path.join(data_dir, ".handle_pids.json")
    # The lock pgserver itself takes around reads and writes of the list.
    with PostgresServer._lock:
        try:
            with open(path, encoding="utf-8") as file:
                pids = json.load(file)
        except (OSError, ValueError):
            return
        if not isinstance(pids, list):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
        if alive != pids:
            log.info("Forgetting {count} ended processes that used the embedded"
                     " server", count=len(pids) - len(alive))
            with open(path, "w", encoding="utf-8") as file:
                json.dump(alive, file)


class EmbeddedPostgres:
    """
    A PostgreSQL server run from the binaries in the pgserver wheel.

    pgserver keeps one server per data directory, shared by every process that
    opens it, and stops it when the last one calls `stop`.
    """

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir
        self._server: Optional[Any] = None

    def start(self) -> str:
        """
        Start the server (blocking, about a second) and return a libpq URI
        for the ``mnemic`` database, creating the database if missing.
        """
        import psycopg2

        os.makedirs(self.data_dir, exist_ok=True)
        log.info("Starting embedded PostgreSQL in {data_dir}", data_dir=self.data_dir)
        with _quiet_runtime_dir_warning():
            # Imported here: pgserver reads platformdirs when imported.
            import pgserver

            _forget_dead_users(self.data_dir)
            self._server = pgserver.get_server(  # type: ignore[attr-defined]
                self.data_dir, cleanup_mode="stop"
            )
        admin_uri = self._server.get_uri()
        connection = psycopg2.connect(admin_uri)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                               (DATABASE_NAME,))
                if cursor.fetchone() is None:
                    cursor.execute(f"CREATE DATABASE {DATABASE_NAME}")
        finally:
            connection.close()
        return str(self._server.get_uri(DATABASE_NAME))

    def stop(self) -> None:
        """
        Stop the server unless another process still uses it.
        """
        if self._server is not None:
            log.info("Stopping embedded PostgreSQL")
            with _quiet_runtime_dir_warning():
                self._server.cleanup()
            self._server = None
