"""
The embedded PostgreSQL server, started with pgserver when no DSN is given.
"""

from __future__ import annotations

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
        import pgserver
        import psycopg2

        os.makedirs(self.data_dir, exist_ok=True)
        log.info("Starting embedded PostgreSQL in {data_dir}", data_dir=self.data_dir)
        with _quiet_runtime_dir_warning():
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
