"""
Tests that a tracer survives diagnostics that fail and columns that do not
fit in a datagram, and that the traced program goes on.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from dolon import trace_client
from tests.test_dolon_trace_client import (
    INTERVAL,
    RECEIVE_TIMEOUT,
    TracerTestCase,
    constant,
    failing,
)


class DiagnosticFailureTests(TracerTestCase):
    """
    Tests that a failing diagnostic costs its own column only.
    """

    async def test_raising_diagnostic_sends_null(self) -> None:
        """
        A diagnostic that raises sends null, the other columns keep their
        values, and tracing goes on.
        """
        with self.assertLogs("dolon", logging.ERROR):
            task = self.start(
                "raising", INTERVAL, "127.0.0.1", self.receiver.port, failing, constant
            )
            samples = await self.receiver.receive_samples(3)

        self.assertEqual([s["values"] for s in samples], [[None, 7.5]] * 3)
        self.assertEqual([s["seq"] for s in samples], [0, 1, 2])
        await self.assert_program_runs(task)

    async def test_raising_diagnostic_logged_once(self) -> None:
        """
        A diagnostic that raises at every sample is logged once, with its
        name and the exception, not at every sample.
        """
        with self.assertLogs("dolon", logging.ERROR) as logs:
            self.start("raising", INTERVAL, "127.0.0.1", self.receiver.port, failing)
            await self.receiver.receive_samples(5)

        self.assertEqual(len(logs.records), 1)
        self.assertIn("'failing'", logs.records[0].getMessage())
        self.assertIn("RuntimeError", logs.output[0])

    async def test_raising_async_diagnostic_sends_null(self) -> None:
        """
        An asynchronous diagnostic that raises sends null.
        """

        async def broken() -> float:
            raise ValueError("no value")

        with self.assertLogs("dolon", logging.ERROR):
            task = self.start(
                "raising", INTERVAL, "127.0.0.1", self.receiver.port, broken, constant
            )
            samples = await self.receiver.receive_samples(2)

        self.assertEqual(samples[1]["values"], [None, 7.5])
        await self.assert_program_runs(task)

    async def test_invalid_values_send_null(self) -> None:
        """
        NaN, infinity, a string, an integer too large for a float and a
        float beyond the 1e300 that mnemic accepts each send null with a
        warning; a bool is sent as an integer.
        """
        cases = {
            "nan": math.nan,
            "infinity": -math.inf,
            "text": "12",
            "huge": 10**400,
            "beyond": 1e301,
            "flag": True,
        }
        diagnostics = []
        for name, value in cases.items():

            def diagnostic(value: object = value) -> object:
                return value

            diagnostic.__name__ = name
            diagnostics.append(diagnostic)

        with self.assertLogs("dolon", logging.WARNING) as logs:
            task = self.start(
                "invalid", INTERVAL, "127.0.0.1", self.receiver.port, *diagnostics
            )
            samples = await self.receiver.receive_samples(2)

        self.assertEqual(samples[0]["values"], [None, None, None, None, None, 1])
        for column in ("nan", "infinity", "text", "huge", "beyond"):
            with self.subTest(column=column):
                matching = [r for r in logs.records if repr(column) in r.getMessage()]
                self.assertEqual(len(matching), 1)
        await self.assert_program_runs(task)

    async def test_hanging_async_diagnostic_times_out(self) -> None:
        """
        An asynchronous diagnostic that does not finish within its time
        limit sends null, and the samples keep their pace.
        """

        async def hanging() -> float:
            await asyncio.sleep(3600)
            return 1.0

        with self.assertLogs("dolon", logging.WARNING) as logs:
            task = self.start(
                "hanging",
                INTERVAL,
                "127.0.0.1",
                self.receiver.port,
                hanging,
                constant,
                time_limit=0.01,
            )
            samples = await self.receiver.receive_samples(4)

        self.assertEqual([s["values"] for s in samples], [[None, 7.5]] * 4)
        self.assertLess(samples[3]["t"] - samples[0]["t"], 10 * INTERVAL)
        self.assertTrue(any("timed out" in line for line in logs.output))
        await self.assert_program_runs(task)

    async def test_blocking_sync_diagnostic_warns(self) -> None:
        """
        A synchronous diagnostic that runs longer than the time limit sends
        its value, because a call cannot be interrupted, and logs that it
        blocked the event loop.
        """

        def slow() -> float:
            time.sleep(0.05)
            return 1.0

        with self.assertLogs("dolon", logging.WARNING) as logs:
            task = self.start(
                "slow", INTERVAL, "127.0.0.1", self.receiver.port, slow, time_limit=0.01
            )
            samples = await self.receiver.receive_samples(2)

        self.assertEqual(samples[1]["values"], [1.0])
        blocked = [line for line in logs.output if "blocked the event loop" in line]
        self.assertEqual(len(blocked), 1)
        self.assertIn("'slow'", blocked[0])
        await self.assert_program_runs(task)

    async def test_diagnostic_ignoring_cancel_not_restarted(self) -> None:
        """
        An asynchronous diagnostic that ignores the cancellation at its time
        limit is not called again while it still runs, sends null meanwhile,
        and is called again once it has ended.
        """
        release = asyncio.Event()
        self.addCleanup(release.set)
        calls = 0

        async def stubborn() -> float:
            nonlocal calls
            calls += 1
            while not release.is_set():
                try:
                    await release.wait()
                except asyncio.CancelledError:
                    pass
            return 1.0

        with self.assertLogs("dolon", logging.WARNING) as logs:
            task = self.start(
                "stubborn",
                INTERVAL,
                "127.0.0.1",
                self.receiver.port,
                stubborn,
                time_limit=0.01,
            )
            waiting = await self.receiver.receive_samples(4)
            calls_while_waiting = calls
            release.set()
            for _ in range(10):
                [sample] = await self.receiver.receive_samples(1)
                if sample["values"] == [1.0]:
                    break

        self.assertEqual([s["values"] for s in waiting], [[None]] * 4)
        self.assertEqual(calls_while_waiting, 1)
        self.assertEqual(sample["values"], [1.0])
        self.assertEqual(calls, 2)
        self.assertTrue(any("still running" in line for line in logs.output))
        await self.assert_program_runs(task)

    async def test_raising_prime_sends_null(self) -> None:
        """
        A Speedometer whose counter raises when the tracer starts its window
        logs an error and sends null, and the other columns are sent.
        """

        def broken_counter() -> float:
            raise OSError("counter unavailable")

        rate = trace_client.Speedometer("rate", broken_counter)

        with self.assertLogs("dolon", logging.ERROR) as logs:
            task = self.start(
                "primed", INTERVAL, "127.0.0.1", self.receiver.port, rate, constant
            )
            samples = await self.receiver.receive_samples(2)

        self.assertEqual(samples[1]["values"], [None, 7.5])
        self.assertIn("dolon_prime", logs.output[0])
        self.assertIn("'rate'", logs.output[0])
        await self.assert_program_runs(task)


class DatagramSizeTests(TracerTestCase):
    """
    Tests for tracers with more columns than fit in one datagram.
    """

    async def test_too_many_columns_not_started(self) -> None:
        """
        A tracer whose samples could exceed the datagram size limit logs an
        error naming the tracer and sends nothing.
        """
        diagnostics = []
        for index in range(400):

            def diagnostic() -> float:
                return 1.0

            diagnostic.__name__ = f"column_{index}"
            diagnostics.append(diagnostic)

        with self.assertLogs("dolon", logging.ERROR) as logs:
            await asyncio.wait_for(
                trace_client.start_tracer(
                    "wide", INTERVAL, "127.0.0.1", self.receiver.port, *diagnostics
                ),
                RECEIVE_TIMEOUT,
            )

        self.assertIn("'wide'", logs.output[0])
        self.assertIn("8192", logs.output[0])
        self.assertEqual(self.receiver.pending(), 0)

    async def test_long_column_names_not_started(self) -> None:
        """
        A tracer whose announcement would exceed the datagram size limit,
        because of its long column names, logs an error naming the tracer
        and sends nothing.
        """
        diagnostics = []
        for index in range(50):

            def diagnostic() -> float:
                return 1.0

            diagnostic.__name__ = f"{index:03}" + "x" * 196
            diagnostics.append(diagnostic)

        with self.assertLogs("dolon", logging.ERROR) as logs:
            await asyncio.wait_for(
                trace_client.start_tracer(
                    "long", INTERVAL, "127.0.0.1", self.receiver.port, *diagnostics
                ),
                RECEIVE_TIMEOUT,
            )

        self.assertIn("'long'", logs.output[0])
        self.assertIn("announcement", logs.output[0])
        self.assertEqual(self.receiver.pending(), 0)
