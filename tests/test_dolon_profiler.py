"""
Tests for the @profiler decorator of dolon.trace_client.
"""

from __future__ import annotations

import asyncio
import inspect
import statistics
import unittest
from collections.abc import Iterator
from typing import Any
from unittest import mock

from dolon import _profiler, trace_client
from dolon._profiler import WINDOW_CAPACITY, ProfileColumns, Stats
from tests.test_dolon_trace_client import INTERVAL, Receiver

#: Column suffixes, in order, to read a row of ProfileColumns by name.
SUFFIXES = _profiler.COLUMN_SUFFIXES


def read(columns: ProfileColumns) -> dict[str, Any]:
    """
    Take one sample of ``columns`` and return it keyed by column suffix.
    """
    return dict(zip(SUFFIXES, columns()))


def clock(durations_ms: list[float]) -> Iterator[float]:
    """
    Return perf_counter readings that make consecutive calls last
    ``durations_ms``.
    """
    now = 100.0
    for duration in durations_ms:
        yield now
        now += duration / 1000
        yield now


class ProfilerTestCase(unittest.IsolatedAsyncioTestCase):
    """
    Base class that gives each test an empty registry of decorated
    functions.
    """

    def setUp(self) -> None:
        patcher = mock.patch.dict(_profiler._registry, clear=True)
        patcher.start()
        self.addCleanup(patcher.stop)

    def stats(self, name: str) -> Stats:
        """
        Return the registered counters named ``name``.
        """
        return _profiler._registry[name]

    def columns(self, name: str) -> ProfileColumns:
        """
        Attach columns to the counters named ``name`` for the rest of the
        test.
        """
        columns = ProfileColumns(self.stats(name))
        self.addCleanup(columns.close)
        return columns


class SyncProfilerTests(ProfilerTestCase):
    """
    Tests for decorated synchronous functions.
    """

    def test_result_and_counts(self) -> None:
        """
        A decorated function returns its result, and its calls show in
        hits, calls and the average duration, the counts as ints.
        """

        @trace_client.profiler
        def double(value: int) -> int:
            return 2 * value

        columns = self.columns(double.__qualname__)
        results = [double(value) for value in range(5)]
        row = read(columns)

        self.assertEqual(results, [0, 2, 4, 6, 8])
        self.assertEqual(row["hits"], 5)
        self.assertEqual(row["calls"], 5)
        self.assertEqual(row["active"], 0)
        self.assertEqual(row["errors"], 0)
        for count in ("hits", "active", "calls", "errors"):
            self.assertIs(type(row[count]), int, count)
        self.assertGreaterEqual(row["avg_ms"], 0.0)
        self.assertEqual(double.__name__, "double")

    def test_exception_passes_through(self) -> None:
        """
        An exception raised by a decorated function reaches the caller
        unchanged and counts as an error of that interval.
        """
        error = KeyError("missing")

        @trace_client.profiler(name="lookup")
        def lookup() -> None:
            raise error

        columns = self.columns("lookup")
        with self.assertRaises(KeyError) as raised:
            lookup()
        first = read(columns)
        second = read(columns)

        self.assertIs(raised.exception, error)
        self.assertEqual(first["errors"], 1)
        self.assertEqual(first["calls"], 1)
        self.assertEqual(second["errors"], 0)
        self.assertEqual(second["hits"], 1)

    def test_interval_counts_reset(self) -> None:
        """
        calls, p95_ms and max_ms cover the calls since the previous sample;
        with none, calls is 0 and the durations are null.
        """

        @trace_client.profiler(name="noop")
        def noop() -> None:
            pass

        columns = self.columns("noop")
        noop()
        noop()
        first = read(columns)
        second = read(columns)

        self.assertEqual(first["calls"], 2)
        self.assertIsNotNone(first["max_ms"])
        self.assertEqual(second["calls"], 0)
        self.assertIsNone(second["p95_ms"])
        self.assertIsNone(second["max_ms"])
        self.assertEqual(second["hits"], 2)

    def test_percentile_and_max(self) -> None:
        """
        For calls lasting 1 to 100 ms, p95_ms is 95, max_ms is 100 and
        avg_ms is 50.5.
        """

        @trace_client.profiler(name="timed")
        def timed() -> None:
            pass

        columns = self.columns("timed")
        readings = clock([float(ms) for ms in range(1, 101)])
        with mock.patch.object(_profiler, "perf_counter", lambda: next(readings)):
            for _ in range(100):
                timed()
        row = read(columns)

        self.assertAlmostEqual(row["p95_ms"], 95.0, places=6)
        self.assertAlmostEqual(row["max_ms"], 100.0, places=6)
        self.assertAlmostEqual(row["avg_ms"], 50.5, places=6)

    def test_methods(self) -> None:
        """
        Instance methods, class methods and static methods can be decorated
        and are named by their qualified names.
        """

        class Cache:
            factor = 3

            @trace_client.profiler
            def get(self, value: int) -> int:
                return value + 1

            @trace_client.profiler
            @classmethod
            def scale(cls, value: int) -> int:
                return cls.factor * value

            @trace_client.profiler
            @staticmethod
            def negate(value: int) -> int:
                return -value

        cache = Cache()

        self.assertEqual(cache.get(1), 2)
        self.assertEqual(Cache.scale(2), 6)
        self.assertEqual(cache.negate(4), -4)
        for method in ("get", "scale", "negate"):
            with self.subTest(method=method):
                name = f"{Cache.__qualname__}.{method}"
                self.assertEqual(self.stats(name).hits, 1)

    def test_generator_function_rejected(self) -> None:
        """
        Decorating a generator function raises ConfigurationError, because
        its call returns before its body runs.
        """

        def numbers() -> Iterator[int]:
            yield 1

        with self.assertRaises(trace_client.ConfigurationError):
            trace_client.profiler(numbers)

    def test_same_name_shares_counters(self) -> None:
        """
        A nested function decorated at every call of its parent adds to one
        set of counters instead of registering a new one each time.
        """

        def handle() -> int:
            @trace_client.profiler
            def step() -> int:
                return 1

            return step()

        for _ in range(3):
            handle()

        self.assertEqual(len(_profiler.registered()), 1)
        self.assertEqual(_profiler.registered()[0].hits, 3)


class WindowTests(unittest.TestCase):
    """
    Tests for the bounded window of durations.
    """

    def test_full_window_keeps_uniform_sample(self) -> None:
        """
        Past its capacity the window stays at its capacity, keeps the exact
        maximum, and its kept durations are spread over all calls.
        """

        @trace_client.profiler(name="busy")
        def busy() -> None:
            pass

        self.addCleanup(_profiler._registry.pop, "busy")
        columns = ProfileColumns(_profiler._registry["busy"])
        self.addCleanup(columns.close)
        count = 20 * WINDOW_CAPACITY
        durations = [float(ms) for ms in range(count)]
        readings = clock(durations)
        with mock.patch.object(_profiler, "perf_counter", lambda: next(readings)):
            for _ in range(count):
                busy()
        kept = list(columns._window)
        row = read(columns)

        self.assertEqual(len(kept), WINDOW_CAPACITY)
        self.assertAlmostEqual(row["max_ms"], count - 1, places=3)
        self.assertEqual(row["calls"], count)
        # The mean of a uniform sample of 0..count-1 is near count / 2; the
        # bound is about six standard errors wide.
        self.assertAlmostEqual(statistics.mean(kept), count / 2 / 1000, delta=1.5)
        self.assertAlmostEqual(row["p95_ms"], 0.95 * count, delta=0.03 * count)


class AsyncProfilerTests(ProfilerTestCase):
    """
    Tests for decorated coroutine functions.
    """

    async def test_active_counts_awaiting_calls(self) -> None:
        """
        Calls that are awaiting count as active until they return.
        """
        release = asyncio.Event()

        @trace_client.profiler(name="wait")
        async def wait() -> str:
            await release.wait()
            return "done"

        columns = self.columns("wait")
        calls = [asyncio.ensure_future(wait()) for _ in range(2)]
        await asyncio.sleep(0)
        during = read(columns)
        release.set()
        results = await asyncio.gather(*calls)
        after = read(columns)

        self.assertEqual(during["active"], 2)
        self.assertEqual(during["hits"], 2)
        self.assertEqual(during["calls"], 0)
        self.assertEqual(results, ["done", "done"])
        self.assertEqual(after["active"], 0)
        self.assertEqual(after["calls"], 2)

    async def test_cancellation_passes_through(self) -> None:
        """
        Cancelling a decorated coroutine cancels the caller's task, and the
        call counts as ended but not as an error.
        """

        @trace_client.profiler(name="forever")
        async def forever() -> None:
            await asyncio.sleep(3600)

        columns = self.columns("forever")
        task = asyncio.ensure_future(forever())
        await asyncio.sleep(0)
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        row = read(columns)

        self.assertEqual(row["calls"], 1)
        self.assertEqual(row["errors"], 0)
        self.assertEqual(row["active"], 0)

    async def test_async_methods(self) -> None:
        """
        Asynchronous instance methods and class methods can be decorated,
        receive their instance or class, and are named by their qualified
        names.
        """

        class Client:
            base = 10

            def __init__(self, offset: int) -> None:
                self.offset = offset

            @trace_client.profiler
            async def fetch(self, value: int) -> int:
                await asyncio.sleep(0)
                return value + self.offset

            @trace_client.profiler
            @classmethod
            async def scale(cls, value: int) -> int:
                await asyncio.sleep(0)
                return cls.base * value

        client = Client(5)

        self.assertEqual(await client.fetch(1), 6)
        self.assertEqual(await Client.scale(2), 20)
        for method in ("fetch", "scale"):
            with self.subTest(method=method):
                stats = self.stats(f"{Client.__qualname__}.{method}")
                self.assertEqual(stats.hits, 1)
                self.assertEqual(stats.completed, 1)
        self.assertTrue(inspect.iscoroutinefunction(Client.fetch))

    async def test_async_exception_passes_through(self) -> None:
        """
        An exception raised by a decorated coroutine reaches the awaiting
        caller unchanged and counts as an error.
        """

        @trace_client.profiler(name="failing")
        async def failing() -> None:
            raise ValueError("bad")

        columns = self.columns("failing")
        with self.assertRaisesRegex(ValueError, "bad"):
            await failing()

        self.assertEqual(read(columns)["errors"], 1)
        self.assertTrue(inspect.iscoroutinefunction(failing))


class TracerProfileTests(ProfilerTestCase):
    """
    Tests for the columns a tracer adds for decorated functions.
    """

    async def test_tracer_adds_columns(self) -> None:
        """
        A tracer started after a function was decorated announces its seven
        columns after the diagnostics and sends its call counts.
        """
        receiver = Receiver()
        self.addCleanup(receiver.close)

        @trace_client.profiler(name="work")
        def work() -> None:
            pass

        task = asyncio.ensure_future(
            trace_client.start_tracer(
                "profiled", INTERVAL, "127.0.0.1", receiver.port, trace_client.rss_mb
            )
        )
        try:
            announcement = await receiver.receive()
            for _ in range(3):
                work()
            samples = await receiver.receive_samples(2)
        finally:
            task.cancel()
            await asyncio.wait({task})

        self.assertEqual(
            announcement["columns"],
            ["rss_mb"] + [f"work.{suffix}" for suffix in SUFFIXES],
        )
        hits = announcement["columns"].index("work.hits")
        calls = announcement["columns"].index("work.calls")
        self.assertEqual(samples[-1]["values"][hits], 3)
        self.assertEqual(sum(s["values"][calls] for s in samples), 3)
        self.assertEqual(self.stats("work").windows, ())

    async def test_two_tracers_see_all_calls(self) -> None:
        """
        Two running tracers each count every call in their own intervals.
        """

        @trace_client.profiler(name="shared")
        def shared() -> None:
            pass

        first = self.columns("shared")
        second = self.columns("shared")
        for _ in range(4):
            shared()

        self.assertEqual(read(first)["calls"], 4)
        self.assertEqual(read(second)["calls"], 4)
        self.assertEqual(read(first)["calls"], 0)

    def test_profile_false_adds_no_columns(self) -> None:
        """
        A tracer made with profile=False has only its diagnostics' columns.
        """

        @trace_client.profiler(name="ignored")
        def ignored() -> None:
            pass

        tracer = trace_client.Tracer(
            "plain", 1, "127.0.0.1", 9, trace_client.rss_mb, profile=False
        )

        self.assertEqual(tracer.columns, ["rss_mb"])
