"""
A small pool of txpostgres connections that replaces broken ones.

txpostgres' own ``ConnectionPool`` opens its connections once and never
replaces one that died, so a database restart would break the web API for
good. This pool connects lazily and discards a connection whose query failed
with a connection error; the next query opens a fresh one.
"""

from __future__ import annotations

from typing import Any

import psycopg2
from twisted.internet.defer import DeferredSemaphore, inlineCallbacks
from txpostgres import txpostgres

_CONNECTION_ERRORS = (psycopg2.OperationalError, psycopg2.InterfaceError)


class ReadPool:
    """
    Up to ``size`` connections to ``dsn``, opened as queries need them.
    """

    def __init__(self, dsn: str, size: int = 3) -> None:
        self._dsn = dsn
        self._idle: list[Any] = []
        self._semaphore = DeferredSemaphore(size)
        self._closed = False

    def runQuery(self, query: str, args: Any = None) -> Any:
        """
        Run one query on a pooled connection and return its rows.

        The camelCase names match txpostgres' connections, so either can be
        passed where a query runner is expected.
        """
        return self._run("runQuery", query, args)

    def runOperation(self, query: str, args: Any = None) -> Any:
        """
        Run one statement that returns no rows on a pooled connection.
        """
        return self._run("runOperation", query, args)

    @inlineCallbacks
    def _run(self, method: str, query: str, args: Any) -> Any:
        yield self._semaphore.acquire()
        try:
            # An idle connection may have died since its last use, for example
            # when the server restarted: one retry on a fresh connection.
            for attempt in (1, 2):
                connection = yield self._connection()
                try:
                    result = yield getattr(connection, method)(query, args)
                except _CONNECTION_ERRORS:
                    _close_quietly(connection)
                    if attempt == 2:
                        raise
                    continue
                self._idle.append(connection)
                return result
        finally:
            self._semaphore.release()

    @inlineCallbacks
    def _connection(self) -> Any:
        if self._idle:
            return self._idle.pop()
        connection = txpostgres.Connection()
        yield connection.connect(self._dsn)
        return connection

    def close(self) -> None:
        """
        Close every idle connection.
        """
        self._closed = True
        while self._idle:
            _close_quietly(self._idle.pop())


def _close_quietly(connection: Any) -> None:
    try:
        connection.close()
    except Exception:
        # Closing a connection whose socket is already gone may fail too.
        pass
