"""
Tests for dolon.trace_client.start_thread_tracer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import unittest
from typing import Any

from dolon import trace_client

#: Seconds a test waits for one datagram before failing.
RECEIVE_TIMEOUT = 5.0


def constant() -> float:
    """
    A diagnostic that always returns 2.5.
    """
    return 2.5


class ThreadTracerTests(unittest.TestCase):
    """
    Tests for tracers that run in their own thread.
    """

    def setUp(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(RECEIVE_TIMEOUT)
        self.addCleanup(self.socket.close)
        self.port = self.socket.getsockname()[1]

    def receive(self) -> dict[str, Any]:
        """
        Wait for the next datagram and return its decoded JSON object.
        """
        message: dict[str, Any] = json.loads(self.socket.recv(65536))
        return message

    def test_sends_without_event_loop(self) -> None:
        """
        A thread tracer started from code without an event loop sends an
        announcement and samples.
        """
        handle = trace_client.start_thread_tracer(
            "threaded", 0.05, "127.0.0.1", self.port, constant
        )
        self.addCleanup(handle.stop)

        messages = [self.receive() for _ in range(3)]

        self.assertEqual(messages[0]["type"], "run")
        self.assertEqual(messages[0]["columns"], ["constant"])
        self.assertEqual([m["seq"] for m in messages[1:]], [0, 1])
        self.assertEqual(messages[1]["values"], [2.5])

    def test_stop_ends_thread_and_sending(self) -> None:
        """
        stop() ends the thread within its timeout and no datagram follows.
        """
        handle = trace_client.start_thread_tracer(
            "threaded", 0.05, "127.0.0.1", self.port, True, constant
        )
        self.receive()

        stopped = handle.stop(timeout=5.0)
        self.socket.setblocking(False)
        try:
            while True:
                self.socket.recv(65536)  # sent before stop() returned
        except BlockingIOError:
            pass
        time.sleep(0.3)

        self.assertTrue(stopped)
        self.assertFalse(handle.running)
        with self.assertRaises(BlockingIOError):
            self.socket.recv(65536)

    def test_with_block_stops(self) -> None:
        """
        Leaving a with block around the handle stops the thread.
        """
        threads_before = threading.active_count()

        with trace_client.start_thread_tracer(
            "scoped", 0.05, "127.0.0.1", self.port, constant
        ) as handle:
            self.receive()
            self.assertTrue(handle.running)

        self.assertFalse(handle.running)
        self.assertEqual(threading.active_count(), threads_before)

    def test_invalid_argument_raises_in_caller(self) -> None:
        """
        An invalid argument raises ConfigurationError in the calling thread
        and starts no thread.
        """
        threads_before = threading.active_count()

        with self.assertRaises(trace_client.ConfigurationError):
            trace_client.start_thread_tracer(
                "bad", -1, "127.0.0.1", self.port, constant
            )

        self.assertEqual(threading.active_count(), threads_before)

    def test_failures_keep_thread_running(self) -> None:
        """
        A thread tracer whose diagnostics raise and hang, sending to a port
        where nothing listens, keeps running, and stop() still ends it.
        """
        closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()

        def failing() -> float:
            raise RuntimeError("diagnostic failed on purpose")

        async def hanging() -> float:
            await asyncio.sleep(3600)
            return 1.0

        with self.assertLogs("dolon", logging.WARNING) as logs:
            handle = trace_client.start_thread_tracer(
                "troubled", 0.05, "127.0.0.1", port, failing, hanging, time_limit=0.01
            )
            time.sleep(0.5)
            running = handle.running
            stopped = handle.stop(timeout=5.0)

        self.assertTrue(running)
        self.assertTrue(stopped)
        output = "\n".join(logs.output)
        self.assertIn("'failing' raised RuntimeError", output)
        self.assertIn("'hanging' timed out", output)
        self.assertIn("nothing is listening", output)

    def test_stop_twice(self) -> None:
        """
        A second stop() of a stopped tracer returns True at once.
        """
        handle = trace_client.start_thread_tracer(
            "twice", 0.05, "127.0.0.1", self.port, constant
        )
        self.receive()

        first = handle.stop()
        second = handle.stop(timeout=0.0)

        self.assertTrue(first)
        self.assertTrue(second)
