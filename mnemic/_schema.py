"""
The database schema, created or upgraded idempotently at start-up.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import inlineCallbacks
from twisted.logger import Logger

from ._summary import SCHEMA_STATEMENTS as _SUMMARY_STATEMENTS

SCHEMA_VERSION = 1

# Any fixed number, shared by every mnemic process: two processes that start at
# once against one database take turns creating the tables.
_SCHEMA_LOCK_KEY = 0x6D6E656D6963

_CREATE_STATEMENTS = (
    """
    CREATE TABLE IF NOT EXISTS mnemic_schema (
        version integer NOT NULL
    )
    """,
    # name is NULL until the run's announcement arrives: samples may come
    # first, and the counters below are kept for them meanwhile.
    """
    CREATE TABLE IF NOT EXISTS runs (
        id uuid PRIMARY KEY,
        name text,
        columns text[],
        started timestamptz,
        host text,
        pid integer,
        protocol smallint,
        samples bigint NOT NULL DEFAULT 0,
        max_seq bigint NOT NULL DEFAULT -1,
        first_sample timestamptz,
        last_seen timestamptz,
        created timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX IF NOT EXISTS runs_name_idx ON runs (name)",
    """
    CREATE TABLE IF NOT EXISTS samples (
        run_id uuid NOT NULL,
        seq bigint,
        t timestamptz NOT NULL,
        vals float8[] NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS samples_run_t_idx ON samples (run_id, t)",
    # Makes a repeated datagram a no-op. The earlier release's rows carry no
    # sequence number, so they are left out of the index.
    """
    CREATE UNIQUE INDEX IF NOT EXISTS samples_run_seq_idx
        ON samples (run_id, seq) WHERE seq IS NOT NULL
    """,
) + _SUMMARY_STATEMENTS

log = Logger()


@inlineCallbacks
def create_schema(connection: Any) -> Any:
    """
    Create the tables and indexes if missing and record the schema version.

    :param connection: a connected ``txpostgres.Connection``.
    :raises RuntimeError: if the database holds a newer schema than this
        version of mnemic knows.
    """

    @inlineCallbacks
    def interaction(cursor: Any) -> Any:
        yield cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        for statement in _CREATE_STATEMENTS:
            yield cursor.execute(statement)
        yield cursor.execute("SELECT max(version) FROM mnemic_schema")
        return cursor.fetchone()[0]

    found = yield connection.runInteraction(interaction)
    if found is not None and found > SCHEMA_VERSION:
        raise RuntimeError(
            f"the database has schema version {found}, newer than this mnemic"
            f" ({SCHEMA_VERSION}); upgrade mnemic or use another database"
        )
    if found is None:
        yield connection.runOperation(
            "INSERT INTO mnemic_schema (version) VALUES (%s)", (SCHEMA_VERSION,)
        )
        log.info("Created schema version {version}", version=SCHEMA_VERSION)
