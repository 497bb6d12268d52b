"""
Tests for dolon.trace_client.PostgresDiagnostics against the embedded
PostgreSQL server of the test suite.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import unittest
import uuid

from dolon import trace_client
from tests import _postgres
from tests.test_dolon_trace_client import INTERVAL, Receiver

#: In CI (CI=true) the tests run without asyncpg too, so that they fail
#: rather than skip when the test install lacks it.
RUN_TESTS = (
    importlib.util.find_spec("asyncpg") is not None or os.environ.get("CI") == "true"
)


@unittest.skipUnless(RUN_TESTS, "asyncpg is not installed")
class PostgresDiagnosticsTests(unittest.IsolatedAsyncioTestCase):
    """
    Tests for the four PostgreSQL columns.
    """

    async def asyncSetUp(self) -> None:
        self.dsn = _postgres.test_dsn()
        self.table = f"dolon_{uuid.uuid4().hex[:12]}"
        _postgres.query(f"CREATE TABLE {self.table} (id int)")
        self.addCleanup(_postgres.query, f"DROP TABLE {self.table}")
        self.diagnostics = trace_client.PostgresDiagnostics(self.dsn, prefix="db")
        self.addAsyncCleanup(self.diagnostics.close)

    async def test_values_match_server(self) -> None:
        """
        The four values are non-negative integers, the connections include
        the diagnostics' own, and live tuples count rows after ANALYZE.
        """
        _postgres.query(f"INSERT INTO {self.table} SELECT generate_series(1, 500)")
        _postgres.query(f"ANALYZE {self.table}")

        live, dead, idle, connections = await self.diagnostics()

        for value in (live, dead, idle, connections):
            self.assertIsInstance(value, int)
            self.assertGreaterEqual(value, 0)
        self.assertGreaterEqual(live, 500)
        self.assertGreaterEqual(connections, 1)

    async def test_dead_tuples_after_delete(self) -> None:
        """
        Deleted rows show as dead tuples.
        """
        _postgres.query(f"INSERT INTO {self.table} SELECT generate_series(1, 300)")
        _postgres.query(f"DELETE FROM {self.table}")
        before = 0
        for _ in range(50):
            # The statistics collector reports with a short delay.
            _live, dead, _idle, _connections = await self.diagnostics()
            if dead >= 300:
                break
            await asyncio.sleep(0.1)
            before = dead

        self.assertGreaterEqual(dead, 300, f"last value {before}")

    async def test_columns_in_tracer(self) -> None:
        """
        A tracer with the diagnostics announces four prefixed columns and
        sends integer values for them.
        """
        receiver = Receiver()
        self.addCleanup(receiver.close)

        task = asyncio.ensure_future(
            trace_client.start_tracer(
                "pg",
                INTERVAL,
                "127.0.0.1",
                receiver.port,
                self.diagnostics,
                profile=False,
                time_limit=5.0,
            )
        )
        try:
            announcement = await receiver.receive()
            samples = await receiver.receive_samples(2)
        finally:
            task.cancel()
            await asyncio.wait({task})

        self.assertEqual(
            announcement["columns"],
            ["db_live_tuples", "db_dead_tuples", "db_idle_sessions", "db_connections"],
        )
        self.assertTrue(all(isinstance(v, int) for v in samples[1]["values"]))

    async def test_unreachable_server_sends_null(self) -> None:
        """
        A server that refuses connections gives null columns and a logged
        error that does not contain the password; the next sample retries.
        """
        receiver = Receiver()
        self.addCleanup(receiver.close)
        closed = Receiver()
        port = closed.port
        closed.close()
        diagnostics = trace_client.PostgresDiagnostics(
            f"postgresql://dolon:secret-password@127.0.0.1:{port}/none", timeout=1.0
        )

        with self.assertLogs("dolon", logging.ERROR) as logs:
            task = asyncio.ensure_future(
                trace_client.start_tracer(
                    "pg-down",
                    INTERVAL,
                    "127.0.0.1",
                    receiver.port,
                    diagnostics,
                    profile=False,
                )
            )
            try:
                samples = await receiver.receive_samples(2)
            finally:
                task.cancel()
                await asyncio.wait({task})

        self.assertEqual(samples[1]["values"], [None, None, None, None])
        self.assertNotIn("secret-password", "\n".join(logs.output))
