"""
Tests for dolon.trace_client: the tracer sends protocol version 1 datagrams to
a real UDP socket on the loopback interface.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import socket
import time
import unittest
import uuid
from typing import Any
from unittest import mock

import psutil

from dolon import trace_client

#: Seconds between samples in these tests, short to keep the tests fast.
INTERVAL = 0.05

#: Seconds a test waits for one datagram before failing.
RECEIVE_TIMEOUT = 5.0

#: Longest wait, in seconds, between two turns of a task of the traced
#: program that sleeps 5 ms at a time; a longer one means that something
#: blocked the event loop.
MAX_LOOP_GAP = 1.0


class Receiver:
    """
    A UDP socket bound to a free loopback port that decodes the datagrams a
    tracer sends to it.
    """

    def __init__(
        self, family: int = socket.AF_INET, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.socket = socket.socket(family, socket.SOCK_DGRAM)
        self.socket.bind((host, port))
        self.socket.setblocking(False)
        self.port: int = self.socket.getsockname()[1]

    async def receive(self, timeout: float = RECEIVE_TIMEOUT) -> dict[str, Any]:
        """
        Wait for the next datagram and return its decoded JSON object.
        """
        loop = asyncio.get_running_loop()
        datagram = await asyncio.wait_for(loop.sock_recv(self.socket, 65536), timeout)
        message: dict[str, Any] = json.loads(datagram.decode("utf-8"))
        return message

    async def receive_samples(self, count: int) -> list[dict[str, Any]]:
        """
        Return the next ``count`` samples, skipping announcements.
        """
        samples: list[dict[str, Any]] = []
        while len(samples) < count:
            message = await self.receive()
            if message["type"] == "sample":
                samples.append(message)
        return samples

    def pending(self) -> int:
        """
        Return the number of datagrams waiting in the socket, reading them.
        """
        count = 0
        while True:
            try:
                self.socket.recv(65536)
            except BlockingIOError:
                return count
            count += 1

    def close(self) -> None:
        self.socket.close()


def failing() -> float:
    """
    A diagnostic that always raises.
    """
    raise RuntimeError("diagnostic failed on purpose")


def constant() -> float:
    """
    A diagnostic that always returns 7.5.
    """
    return 7.5


async def async_constant() -> int:
    """
    An asynchronous diagnostic that returns 42 after yielding to the loop.
    """
    await asyncio.sleep(0)
    return 42


class Heartbeat:
    """
    A task of the traced program that wakes every 5 ms, counting its turns
    and recording the longest wait between two of them.
    """

    def __init__(self) -> None:
        self.beats = 0
        self.max_gap = 0.0
        self.task = asyncio.ensure_future(self._beat())

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(0.005)
            now = loop.time()
            self.max_gap = max(self.max_gap, now - last)
            last = now
            self.beats += 1


class TracerTestCase(unittest.IsolatedAsyncioTestCase):
    """
    Base class that provides a receiver and a heartbeat of the traced
    program, and runs tracers as tasks that are cancelled at the end of each
    test.
    """

    def setUp(self) -> None:
        self.receiver = Receiver()
        self.addCleanup(self.receiver.close)
        self.tasks: list[asyncio.Task[None]] = []

    async def asyncSetUp(self) -> None:
        self.heartbeat = Heartbeat()

    async def asyncTearDown(self) -> None:
        self.heartbeat.task.cancel()
        for task in self.tasks:
            task.cancel()
        await asyncio.wait([self.heartbeat.task, *self.tasks])

    async def assert_program_runs(self, tracer: asyncio.Task[None]) -> None:
        """
        Check that the tracer task still runs, and that the program's
        heartbeat keeps beating and was never held up by a blocked loop.
        """
        beats = self.heartbeat.beats
        await asyncio.sleep(0.1)

        self.assertFalse(tracer.done(), "the tracer task ended")
        self.assertGreater(self.heartbeat.beats, beats)
        self.assertLess(self.heartbeat.max_gap, MAX_LOOP_GAP)

    def start(self, *args: Any, **kwargs: Any) -> asyncio.Task[None]:
        """
        Run ``start_tracer(*args, **kwargs)`` in a task.
        """
        task = asyncio.ensure_future(trace_client.start_tracer(*args, **kwargs))
        self.tasks.append(task)
        return task


class StartTracerTests(TracerTestCase):
    """
    Tests for the messages that start_tracer sends.
    """

    async def test_example_call_sends_run_then_samples(self) -> None:
        """
        start_tracer with mem_allocation, active_tasks and cpu_percent sends
        a run announcement with the three column names, then samples
        numbered from 0 with one value per column.
        """
        self.start(
            "hello-world",
            INTERVAL,
            "127.0.0.1",
            self.receiver.port,
            trace_client.mem_allocation,
            trace_client.active_tasks,
            trace_client.cpu_percent,
        )

        announcement = await self.receiver.receive()
        samples = await self.receiver.receive_samples(3)

        self.assertEqual(announcement["v"], 1)
        self.assertEqual(announcement["type"], "run")
        self.assertEqual(announcement["name"], "hello-world")
        self.assertEqual(
            announcement["columns"], ["mem_allocation", "active_tasks", "cpu_percent"]
        )
        self.assertEqual(str(uuid.UUID(announcement["run"])), announcement["run"])
        self.assertEqual(announcement["host"], socket.gethostname())
        self.assertEqual(announcement["pid"], psutil.Process().pid)
        self.assertAlmostEqual(announcement["started"], time.time(), delta=5)
        self.assertEqual([sample["seq"] for sample in samples], [0, 1, 2])
        for sample in samples:
            self.assertEqual(sample["v"], 1)
            self.assertEqual(sample["run"], announcement["run"])
            self.assertEqual(len(sample["values"]), 3)
            self.assertAlmostEqual(sample["t"], time.time(), delta=5)
        self.assertGreater(samples[2]["t"], samples[0]["t"])
        self.assertIsInstance(samples[0]["values"][1], int)
        self.assertGreaterEqual(samples[0]["values"][1], 1)

    async def test_samples_follow_interval(self) -> None:
        """
        Consecutive samples are about one interval apart.
        """
        self.start("paced", 0.2, "127.0.0.1", self.receiver.port, constant)

        samples = await self.receiver.receive_samples(3)

        self.assertAlmostEqual(samples[1]["t"] - samples[0]["t"], 0.2, delta=0.1)
        self.assertAlmostEqual(samples[2]["t"] - samples[1]["t"], 0.2, delta=0.1)

    async def test_localhost_reaches_ipv4_server(self) -> None:
        """
        The host name localhost reaches a server that listens on 127.0.0.1
        only, even where localhost also resolves to ::1.
        """
        self.start("local", INTERVAL, "localhost", self.receiver.port, constant)

        announcement = await self.receiver.receive()

        self.assertEqual(announcement["type"], "run")

    async def test_ipv6_host(self) -> None:
        """
        A tracer sends to an IPv6 address.
        """
        try:
            receiver = Receiver(socket.AF_INET6, "::1")
        except OSError as error:
            self.skipTest(f"IPv6 loopback is not available: {error}")
        self.addCleanup(receiver.close)

        self.start("six", INTERVAL, "::1", receiver.port, constant)
        samples = await receiver.receive_samples(1)

        self.assertEqual(samples[0]["values"], [7.5])

    async def test_verbose_boolean_form(self) -> None:
        """
        A bool in the fifth position is taken as verbose, not as a column,
        and verbose logs each sample at INFO level.
        """
        with self.assertLogs("dolon", logging.INFO) as logs:
            self.start(
                "talky", INTERVAL, "127.0.0.1", self.receiver.port, True, constant
            )
            announcement = await self.receiver.receive()
            await self.receiver.receive_samples(2)

        self.assertEqual(announcement["columns"], ["constant"])
        sample_lines = [line for line in logs.output if "sample 0" in line]
        self.assertEqual(len(sample_lines), 1)
        self.assertIn("'constant': 7.5", sample_lines[0])

    async def test_not_verbose_logs_no_samples(self) -> None:
        """
        Without verbose, samples are not logged.
        """
        with self.assertLogs("dolon", logging.INFO) as logs:
            self.start(
                "quiet", INTERVAL, "127.0.0.1", self.receiver.port, False, constant
            )
            await self.receiver.receive_samples(2)

        self.assertFalse([line for line in logs.output if "sample 0" in line])

    async def test_async_diagnostic(self) -> None:
        """
        The value of an asynchronous diagnostic is awaited and sent.
        """
        self.start("async", INTERVAL, "127.0.0.1", self.receiver.port, async_constant)

        samples = await self.receiver.receive_samples(2)

        self.assertEqual(samples[0]["values"], [42])
        self.assertEqual(samples[1]["values"], [42])

    async def test_column_name_of_callable_object(self) -> None:
        """
        A callable object without __name__ fills a column named after its
        class.
        """

        class QueueDepth:
            def __call__(self) -> int:
                return 3

        self.start("objects", INTERVAL, "127.0.0.1", self.receiver.port, QueueDepth())

        announcement = await self.receiver.receive()
        samples = await self.receiver.receive_samples(1)

        self.assertEqual(announcement["columns"], ["QueueDepth"])
        self.assertEqual(samples[0]["values"], [3])

    async def test_announcement_repeats(self) -> None:
        """
        The announcement is sent again after the announce interval, with the
        same run id.
        """
        with mock.patch("dolon._tracer.ANNOUNCE_INTERVAL", 0.15):
            self.start("repeat", INTERVAL, "127.0.0.1", self.receiver.port, constant)
            messages = [await self.receiver.receive() for _ in range(12)]

        announcements = [m for m in messages if m["type"] == "run"]
        self.assertGreaterEqual(len(announcements), 2)
        self.assertEqual(announcements[0]["run"], announcements[1]["run"])
        seqs = [m["seq"] for m in messages if m["type"] == "sample"]
        self.assertEqual(seqs, list(range(len(seqs))))


class TracerArgumentTests(unittest.TestCase):
    """
    Tests for the checks of the arguments of a tracer.
    """

    def test_invalid_arguments_raise(self) -> None:
        """
        Invalid arguments raise ConfigurationError when the tracer is made.
        """
        cases = {
            "zero interval": ("t", 0, "127.0.0.1", 1, constant),
            "nan interval": ("t", math.nan, "127.0.0.1", 1, constant),
            "empty name": ("", 1, "127.0.0.1", 1, constant),
            "surrogate in name": ("t\udc80", 1, "127.0.0.1", 1, constant),
            "port zero": ("t", 1, "127.0.0.1", 0, constant),
            "port too high": ("t", 1, "127.0.0.1", 70000, constant),
            "no columns": ("t", 1, "127.0.0.1", 1),
            "duplicate column": ("t", 1, "127.0.0.1", 1, constant, constant),
            "not callable": ("t", 1, "127.0.0.1", 1, 3.5),
        }
        for case, args in cases.items():
            with self.subTest(case=case):
                with self.assertRaises(trace_client.ConfigurationError):
                    trace_client.Tracer(*args)  # type: ignore[arg-type]


class LifecycleTests(TracerTestCase):
    """
    Tests for stopping tracers and running several at once.
    """

    async def test_cancel_stops_sending_and_closes_socket(self) -> None:
        """
        Cancelling the tracer's task stops the samples and closes its socket.
        """
        process = psutil.Process()
        fds_before = process.num_fds()
        task = self.start("brief", INTERVAL, "127.0.0.1", self.receiver.port, constant)
        await self.receiver.receive_samples(2)

        task.cancel()
        await asyncio.wait({task})
        await asyncio.sleep(3 * INTERVAL)

        self.assertTrue(task.cancelled())
        self.assertEqual(self.receiver.pending(), 0)
        self.assertEqual(process.num_fds(), fds_before)

    async def test_async_with_stops_on_exit(self) -> None:
        """
        A tracer used with async with sends inside the block, and at its end
        stops sending and closes its socket.
        """
        process = psutil.Process()
        fds_before = process.num_fds()
        tracer = trace_client.Tracer(
            "scoped", INTERVAL, "127.0.0.1", self.receiver.port, constant
        )

        async with tracer:
            samples = await self.receiver.receive_samples(2)
        await asyncio.sleep(3 * INTERVAL)

        self.assertEqual(samples[0]["run"], tracer.run_id)
        self.assertEqual(self.receiver.pending(), 0)
        self.assertEqual(process.num_fds(), fds_before)

    async def test_two_tracers(self) -> None:
        """
        Two tracers in one process send separate runs with their own columns
        and sequence numbers.
        """
        other = Receiver()
        self.addCleanup(other.close)

        self.start("first", INTERVAL, "127.0.0.1", self.receiver.port, constant)
        self.start("second", INTERVAL, "127.0.0.1", other.port, async_constant)
        first = [await self.receiver.receive() for _ in range(3)]
        second = [await other.receive() for _ in range(3)]

        self.assertEqual(first[0]["name"], "first")
        self.assertEqual(second[0]["name"], "second")
        self.assertNotEqual(first[0]["run"], second[0]["run"])
        self.assertEqual([m["seq"] for m in first[1:]], [0, 1])
        self.assertEqual([m["values"] for m in second[1:]], [[42], [42]])

    def test_column_name_not_utf8_raises(self) -> None:
        """
        A diagnostic whose name cannot be encoded as UTF-8 raises
        ConfigurationError.
        """

        def diagnostic() -> float:
            return 1.0

        diagnostic.__name__ = "value\udc80"

        with self.assertRaises(trace_client.ConfigurationError):
            trace_client.Tracer("t", 1, "127.0.0.1", 1, diagnostic)
