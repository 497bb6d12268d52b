"""
One embedded PostgreSQL server for the whole test run.

The first test that needs a database starts it with pgserver in a temporary
directory; it stops when the test process exits. Tests share the database,
so each one works on run ids and tracer names of its own.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from typing import Any, Optional

from twisted.trial.unittest import SkipTest

_dsn: Optional[str] = None
_failure: Optional[str] = None


def test_dsn() -> str:
    """
    Return a libpq URI for the test database, starting the server if needed.

    :raises SkipTest: outside CI, when no server can be started. In CI
        (``CI=true``) the error is raised instead, so the tests fail.
    """
    global _dsn, _failure
    if _dsn is not None:
        return _dsn
    if _failure is None:
        try:
            _dsn = _start()
            return _dsn
        except Exception as error:
            _failure = f"{type(error).__name__}: {error}"
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"cannot start the embedded PostgreSQL: {_failure}")
    raise SkipTest(f"cannot start the embedded PostgreSQL: {_failure}")


def _start() -> str:
    from mnemic._embedded import EmbeddedPostgres

    directory = tempfile.mkdtemp(prefix="mnemic-test-pg-")
    server = EmbeddedPostgres(os.path.join(directory, "pgdata"))
    dsn = server.start()

    def stop() -> None:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)

    atexit.register(stop)
    return dsn


def query(sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    """
    Run one query synchronously with psycopg2 and return its rows.

    For checking what the service stored, independently of its own code.
    """
    import psycopg2

    connection = psycopg2.connect(test_dsn())
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            rows = cursor.fetchall() if cursor.description else []
        connection.commit()
        return rows
    finally:
        connection.close()


def new_name(prefix: str) -> str:
    """
    Return a tracer name no other test uses.
    """
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
