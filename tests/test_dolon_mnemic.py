"""
Tests of dolon against a real ``twistd mnemic``: what the tracer sends is
accepted and stored in full.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import socket
import tracemalloc
from typing import Any
from unittest import mock

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from dolon import _profiler, trace_client

from ._postgres import new_name, query, test_dsn
from ._twistd import TwistdProcess, wait_until

#: Seconds between samples, short to keep the tests fast.
INTERVAL = 0.05

#: Calls of the decorated function in each test, about ten samples long.
CALLS = 50

#: The built-in diagnostics, in column order.
BUILT_INS = [
    trace_client.mem_allocation,
    trace_client.active_tasks,
    trace_client.cpu_percent,
    trace_client.process_cpu_percent,
    trace_client.memory_use,
    trace_client.rss_mb,
    trace_client.virtual_memory_percent,
    trace_client.event_loop_lag_ms,
    trace_client.gc_collections,
    trace_client.open_fds,
    trace_client.thread_count,
]


def not_a_number() -> float:
    """
    A diagnostic that returns NaN.
    """
    return math.nan


def too_large() -> float:
    """
    A diagnostic that returns a value beyond the 1e300 mnemic accepts.
    """
    return 1e301


def text() -> str:
    """
    A diagnostic that returns a string.
    """
    return "12"


class SampleCounter:
    """
    A diagnostic that counts its calls.
    """

    __name__ = "samples_taken"

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        self.count += 1
        return self.count


async def trace(name: str, host: str, port: int) -> int:
    """
    Run a tracer with every built-in, three invalid diagnostics and the
    columns of one decorated function, called ``CALLS`` times.

    :return: the sequence number of a sample that was sent after the last
        call had ended.
    """

    @trace_client.profiler(name="handle")
    async def handle() -> None:
        await asyncio.sleep(0)

    counter = SampleCounter()
    tracer = trace_client.Tracer(
        name, INTERVAL, host, port, *BUILT_INS, not_a_number, too_large, text, counter
    )
    async with tracer:
        for _ in range(CALLS):
            await handle()
            await asyncio.sleep(INTERVAL / 5)
        # Sample number final_seq starts after the last call. Once the next
        # sample starts, it has been sent.
        final_seq = counter.count
        while counter.count < final_seq + 2:
            await asyncio.sleep(INTERVAL / 5)
    return final_seq


def stored_samples(name: str) -> list[tuple[Any, ...]]:
    """
    Return the columns and the (seq, values) rows stored for the only run of
    tracer ``name``.
    """
    return query(
        "SELECT r.columns, s.seq, s.vals FROM runs r JOIN samples s "
        "ON s.run_id = r.id WHERE r.name = %s ORDER BY s.seq",
        (name,),
    )


def all_stored(name: str, final_seq: int) -> bool:
    """
    Return whether tracer ``name`` has a run with every sample up to
    ``final_seq`` stored.
    """
    rows = query(
        "SELECT count(*), max(s.seq) FROM runs r JOIN samples s "
        "ON s.run_id = r.id WHERE r.name = %s",
        (name,),
    )
    count, max_seq = rows[0]
    return bool(count and max_seq >= final_seq and count == max_seq + 1)


class TracerToMnemicTests(SynchronousTestCase):
    """
    A tracer's run, sent to ``twistd mnemic``, is stored column by column.
    """

    def trace_to(self, interface: str) -> tuple[str, TwistdProcess]:
        """
        Start mnemic on ``interface``, trace to it and return the tracer
        name and the service once the samples are stored.
        """
        service = TwistdProcess("--postgres", test_dsn(), "--interface", interface)
        self.addCleanup(service.kill)
        name = new_name("dolon-e2e")
        was_tracing = tracemalloc.is_tracing()
        tracemalloc.start()
        if not was_tracing:
            self.addCleanup(tracemalloc.stop)
        registry = mock.patch.dict(_profiler._registry, clear=True)
        registry.start()
        self.addCleanup(registry.stop)

        with self.assertLogs("dolon", logging.WARNING) as logs:
            final_seq = asyncio.run(trace(name, interface, service.udp_port))
        for column in ("not_a_number", "too_large", "text"):
            invalid = [line for line in logs.output if f"Column {column!r}" in line]
            self.assertEqual(len(invalid), 1, logs.output)

        wait_until(lambda: all_stored(name, final_seq))
        return name, service

    def test_every_column_stored(self) -> None:
        """
        Every sample is stored without loss and mnemic rejects no datagram.
        The built-ins store plausible values, the invalid diagnostics store
        null, and the profiler columns count the calls.
        """
        name, service = self.trace_to("127.0.0.1")
        rows = stored_samples(name)
        columns = rows[0][0]
        values = [dict(zip(columns, row[2])) for row in rows]
        info = json.loads(service.get("/api/tracers"))
        metrics = service.get("/metrics")

        self.assertEqual([row[1] for row in rows], list(range(len(rows))))
        self.assertNotIn("mnemic_datagrams_invalid_total{", metrics)
        self.assertNotIn("mnemic_datagrams_rejected_total{", metrics)
        self.assertIn(name, json.dumps(info))
        self.assertEqual(
            columns[: len(BUILT_INS) + 3],
            [d.__name__ for d in BUILT_INS] + ["not_a_number", "too_large", "text"],
        )
        last = values[-1]
        self.assertGreater(last["mem_allocation"], 0.0)
        self.assertGreaterEqual(last["active_tasks"], 2)
        self.assertTrue(0.0 <= last["cpu_percent"] <= 100.0)
        self.assertGreater(last["rss_mb"], 1.0)
        self.assertGreater(last["open_fds"], 2)
        self.assertGreaterEqual(last["thread_count"], 1)
        self.assertGreaterEqual(last["event_loop_lag_ms"], 0.0)
        for row in values:
            self.assertIsNone(row["not_a_number"])
            self.assertIsNone(row["too_large"])
            self.assertIsNone(row["text"])
        self.assertEqual(last["handle.hits"], CALLS)
        self.assertEqual(sum(row["handle.calls"] for row in values), CALLS)
        self.assertEqual(sum(row["handle.errors"] for row in values), 0)

    def test_ipv6(self) -> None:
        """
        A tracer sends to mnemic listening on the IPv6 loopback address.
        """
        try:
            probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            probe.bind(("::1", 0))
            probe.close()
        except OSError as error:
            raise SkipTest(f"IPv6 loopback is not available: {error}") from None

        name, _service = self.trace_to("::1")
        rows = stored_samples(name)

        self.assertGreater(len(rows), 1)
        self.assertEqual([row[1] for row in rows], list(range(len(rows))))
