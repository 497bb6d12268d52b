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
from twisted.internet.defer import Deferred, DeferredSemaphore, inlineCallbacks, succeed
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
        self._active = 0
        self._close_waiters: list[Deferred[None]] = []

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
        if self._closed:
            raise RuntimeError("the database pool is closed")
        yield self._semaphore.acquire()
        self._active += 1
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
                except Exception:
                    # Asynchronous psycopg2 connections are in autocommit
                    # mode, so a failed statement leaves them usable.
                    self._release(connection)
                    raise
                self._release(connection)
                return result
        finally:
            self._active -= 1
            self._semaphore.release()
            if self._closed and not self._active:
                waiters, self._close_waiters = self._close_waiters, []
                for waiter in waiters:
                    waiter.callback(None)

    def _release(self, connection: Any) -> None:
        if self._closed:
            _close_quietly(connection)
        else:
            self._idle.append(connection)

    @inlineCallbacks
    def _connection(self) -> Any:
        if self._idle:
            return self._idle.pop()
        connection = txpostgres.Connection()
        yield connection.connect(self._dsn)
        return connection

    def close(self) -> Deferred[None]:
        """
        Close every connection and reject new queries.

        :return: a Deferred that fires once the queries still running have
            ended and their connections are closed.
        """
        self._closed = True
        while self._idle:
            _close_quietly(self._idle.pop())
        if not self._active:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._close_waiters.append(waiter)
        return waiter


def _close_quietly(connection: Any) -> None:
    try:
        connection.close()
    except Exception:
        # Closing a connection whose socket is already gone may fail too.
        pass
