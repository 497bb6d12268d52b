"""
PostgresDiagnostics: statistics of a PostgreSQL database, read with asyncpg.

asyncpg is an optional dependency, imported when the first sample connects.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from typing import Any

from ._errors import ConfigurationError

_log = logging.getLogger(__name__)

#: Column suffixes, in the order of the values the query returns.
POSTGRES_COLUMNS = ("live_tuples", "dead_tuples", "idle_sessions", "connections")

# One round trip for all four values. The activity counts cover the
# connected database only; the tracer's own connection counts too.
_QUERY = """
SELECT
    (SELECT coalesce(sum(n_live_tup), 0)::bigint FROM pg_stat_user_tables),
    (SELECT coalesce(sum(n_dead_tup), 0)::bigint FROM pg_stat_user_tables),
    (SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND state = 'idle'),
    (SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database())
"""


class PostgresDiagnostics:
    """
    Four columns about the PostgreSQL database at ``dsn``:

    - ``<prefix>_live_tuples``, ``<prefix>_dead_tuples``: estimated live and
      dead rows in all user tables (``pg_stat_user_tables``);
    - ``<prefix>_idle_sessions``: sessions of this database that are idle;
    - ``<prefix>_connections``: sessions of this database, the tracer's own
      included.

    It opens one connection on the first sample and keeps it; after an
    error, the next sample connects again. Tracers on one event loop may
    share an instance, but not tracers on different loops (such as a thread
    tracer), because an asyncpg connection belongs to one loop.

    :param dsn: libpq connection URI or key/value string; it is never logged.
    :param prefix: start of the column names.
    :param timeout: seconds to wait for a connection, and for each query.
    :raise ConfigurationError: when asyncpg is not installed.
    """

    def __init__(self, dsn: str, *, prefix: str = "pg", timeout: float = 5.0) -> None:
        if importlib.util.find_spec("asyncpg") is None:
            raise ConfigurationError(
                "PostgresDiagnostics needs asyncpg; install it with "
                "'pip install asyncpg'"
            )
        self.__name__ = f"{prefix}_diagnostics"
        self.dolon_columns = [f"{prefix}_{suffix}" for suffix in POSTGRES_COLUMNS]
        self._dsn = dsn
        self._timeout = timeout
        self._connection: Any = None
        self._query: asyncio.Future[list[int]] | None = None

    async def __call__(self) -> list[int]:
        # A second tracer calling during a query shares its result, because
        # one asyncpg connection runs one query at a time.
        if self._query is None or self._query.done():
            self._query = asyncio.ensure_future(self._fetch())
        return await asyncio.shield(self._query)

    async def _fetch(self) -> list[int]:
        import asyncpg  # type: ignore[import-untyped,import-not-found,unused-ignore]

        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(self._dsn, timeout=self._timeout)
            _log.info("%s connected to PostgreSQL", self.__name__)
        try:
            row = await self._connection.fetchrow(_QUERY, timeout=self._timeout)
        except BaseException:
            # The connection may be mid-query; start afresh next time.
            await self.close()
            raise
        return [int(value) for value in row]

    async def close(self) -> None:
        """
        Close the connection, if one is open.
        """
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            connection.terminate()

    def __repr__(self) -> str:
        return f"<PostgresDiagnostics {self.__name__}>"
