"""
Tests for the built-in diagnostics of dolon.trace_client.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
import tracemalloc
import unittest

import psutil

from dolon import _diagnostics, trace_client
from dolon._columns import column_name
from tests.test_dolon_trace_client import Receiver


def spin(seconds: float) -> None:
    """
    Keep one CPU core busy for ``seconds``.
    """
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def spin_until(stop: threading.Event) -> None:
    """
    Keep one CPU core busy until ``stop`` is set.
    """
    while not stop.is_set():
        spin(0.01)


class MemAllocationTests(unittest.TestCase):
    """
    Tests for mem_allocation.
    """

    def setUp(self) -> None:
        was_tracing = tracemalloc.is_tracing()
        self.addCleanup(tracemalloc.start if was_tracing else tracemalloc.stop)

    def test_traced_size_in_mb(self) -> None:
        """
        With tracemalloc tracing, the value is the traced size in MB and
        grows with an allocation.
        """
        tracemalloc.start()
        before = trace_client.mem_allocation()
        block = bytearray(4 * 1024 * 1024)
        after = trace_client.mem_allocation()

        self.assertIsInstance(before, float)
        self.assertIsInstance(after, float)
        assert before is not None and after is not None
        self.assertAlmostEqual(after - before, 4.0, delta=0.5)
        del block

    def test_not_tracing_returns_none_and_warns_once(self) -> None:
        """
        Without tracemalloc tracing, the value is None and one warning tells
        the user to call tracemalloc.start().
        """
        tracemalloc.stop()
        self.addCleanup(setattr, _diagnostics, "_warned_tracemalloc_off", False)
        _diagnostics._warned_tracemalloc_off = False

        with self.assertLogs("dolon", logging.WARNING) as logs:
            values = [trace_client.mem_allocation() for _ in range(3)]

        self.assertEqual(values, [None, None, None])
        self.assertEqual(len(logs.records), 1)
        self.assertIn("tracemalloc.start()", logs.output[0])


class ActiveTasksTests(unittest.IsolatedAsyncioTestCase):
    """
    Tests for active_tasks.
    """

    async def test_counts_not_done_tasks(self) -> None:
        """
        The value counts the tasks of the running loop that are not done.
        """
        before = trace_client.active_tasks()
        sleepers = [asyncio.ensure_future(asyncio.sleep(10)) for _ in range(3)]
        during = trace_client.active_tasks()
        for sleeper in sleepers:
            sleeper.cancel()
        await asyncio.wait(sleepers)
        after = trace_client.active_tasks()

        self.assertIsInstance(before, int)
        self.assertGreaterEqual(before, 1)
        self.assertEqual(during, before + 3)
        self.assertEqual(after, before)


class CpuTests(unittest.TestCase):
    """
    Tests for cpu_percent and process_cpu_percent.
    """

    def test_machine_cpu_percent_range(self) -> None:
        """
        cpu_percent is a float from 0 to 100 and above zero while this
        process keeps a core busy.
        """
        trace_client.cpu_percent.dolon_prime()
        spin(0.3)
        value = trace_client.cpu_percent()

        self.assertIsInstance(value, float)
        assert value is not None
        self.assertGreater(value, 100 / (psutil.cpu_count() or 1) / 4)
        self.assertLessEqual(value, 100.0)

    def test_first_value_meaningful(self) -> None:
        """
        The first call after import measures the time since the import,
        unlike psutil's first cpu_percent(interval=None) call, which returns
        0.0.
        """
        first = trace_client.process_cpu_percent()

        self.assertIsInstance(first, float)

    def test_process_cpu_percent_of_busy_process(self) -> None:
        """
        process_cpu_percent is well above zero while this process keeps one
        core busy.
        """
        trace_client.process_cpu_percent.dolon_prime()
        spin(0.3)
        value = trace_client.process_cpu_percent()

        assert value is not None
        # Near 100 on an idle machine; other busy processes on the same cores
        # (parallel test runs, for one) can take half of that or more.
        self.assertGreater(value, 20.0)
        self.assertLess(value, 100.0 * (psutil.cpu_count() or 1) + 1)

    def test_calls_close_together_repeat_value(self) -> None:
        """
        A second call right after the first repeats its value, so that two
        tracers sharing the diagnostic do not shorten each other's windows.
        """
        trace_client.process_cpu_percent.dolon_prime()
        spin(0.2)
        first = trace_client.process_cpu_percent()
        second = trace_client.process_cpu_percent()

        self.assertEqual(first, second)


class FirstSampleTests(unittest.IsolatedAsyncioTestCase):
    """
    Tests that the first sample of a tracer carries meaningful CPU figures.
    """

    async def test_first_cpu_sample_of_busy_process(self) -> None:
        """
        While a thread keeps a core busy, the first sample of a new tracer
        shows it in process_cpu_percent and cpu_percent, where an unprimed
        psutil cpu_percent() would report 0.0.
        """
        receiver = Receiver()
        self.addCleanup(receiver.close)
        stop = threading.Event()
        busy = threading.Thread(target=spin_until, args=(stop,))
        busy.start()
        self.addCleanup(busy.join)
        self.addCleanup(stop.set)

        task = asyncio.ensure_future(
            trace_client.start_tracer(
                "cpu",
                0.3,
                "127.0.0.1",
                receiver.port,
                trace_client.process_cpu_percent,
                trace_client.cpu_percent,
                profile=False,
            )
        )
        try:
            [first] = await receiver.receive_samples(1)
        finally:
            task.cancel()
            await asyncio.wait({task})

        process_cpu, machine_cpu = first["values"]
        self.assertEqual(first["seq"], 0)
        self.assertGreater(process_cpu, 30.0)
        self.assertGreater(machine_cpu, 100 / (psutil.cpu_count() or 1) / 4)


class MemoryTests(unittest.TestCase):
    """
    Tests for memory_use, rss_mb and virtual_memory_percent.
    """

    def test_rss_in_mb(self) -> None:
        """
        memory_use and rss_mb return this process's RSS in MB.
        """
        rss = psutil.Process().memory_info().rss / 2**20

        for diagnostic in (trace_client.memory_use, trace_client.rss_mb):
            with self.subTest(diagnostic=diagnostic.__name__):
                value = diagnostic()
                self.assertIsInstance(value, float)
                self.assertAlmostEqual(value, rss, delta=max(5.0, rss * 0.1))

    def test_virtual_memory_percent(self) -> None:
        """
        virtual_memory_percent is a percentage above 0 and at most 100.
        """
        value = trace_client.virtual_memory_percent()

        self.assertIsInstance(value, float)
        self.assertGreater(value, 0.0)
        self.assertLessEqual(value, 100.0)


class EventLoopLagTests(unittest.IsolatedAsyncioTestCase):
    """
    Tests for event_loop_lag_ms.
    """

    async def test_idle_loop_small_lag(self) -> None:
        """
        On an idle loop the lag is a small non-negative number of ms.
        """
        value = await trace_client.event_loop_lag_ms()

        self.assertIsInstance(value, float)
        self.assertGreaterEqual(value, 0.0)
        self.assertLess(value, 50.0)

    async def test_blocked_loop_large_lag(self) -> None:
        """
        A callback that blocks the loop for 100 ms ahead of the measurement
        shows as a lag of at least 100 ms.
        """
        loop = asyncio.get_running_loop()
        loop.call_soon(time.sleep, 0.1)

        value = await trace_client.event_loop_lag_ms()

        self.assertGreaterEqual(value, 95.0)


class ProcessCountTests(unittest.TestCase):
    """
    Tests for gc_collections, open_fds and thread_count.
    """

    def test_gc_collections_grows(self) -> None:
        """
        gc_collections is an int that grows by at least one per collection.
        """
        before = trace_client.gc_collections()
        gc.collect()
        after = trace_client.gc_collections()

        self.assertIsInstance(before, int)
        self.assertGreaterEqual(after, before + 1)

    def test_open_fds_counts_open_file(self) -> None:
        """
        open_fds grows by one while one more file is open.
        """
        before = trace_client.open_fds()
        with open(os.devnull, "rb"):
            during = trace_client.open_fds()

        self.assertIsInstance(before, int)
        self.assertEqual(during, before + 1)

    def test_thread_count_counts_thread(self) -> None:
        """
        thread_count grows by one while one more thread runs.
        """
        before = trace_client.thread_count()
        release = threading.Event()
        thread = threading.Thread(target=release.wait)
        thread.start()
        try:
            during = trace_client.thread_count()
        finally:
            release.set()
            thread.join()

        self.assertIsInstance(before, int)
        self.assertEqual(during, before + 1)


class ColumnNameTests(unittest.TestCase):
    """
    Tests for the column names of the built-in diagnostics.
    """

    def test_builtin_column_names(self) -> None:
        """
        Each built-in fills the column named like its attribute.
        """
        names = [
            "mem_allocation",
            "active_tasks",
            "cpu_percent",
            "memory_use",
            "virtual_memory_percent",
            "process_cpu_percent",
            "rss_mb",
            "event_loop_lag_ms",
            "gc_collections",
            "open_fds",
            "thread_count",
        ]
        for name in names:
            with self.subTest(name=name):
                self.assertEqual(column_name(getattr(trace_client, name)), name)
