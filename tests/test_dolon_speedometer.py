"""
Tests for dolon.trace_client.Speedometer.
"""

from __future__ import annotations

import unittest
from unittest import mock

from dolon import trace_client
from dolon._columns import column_name


class FakeClock:
    """
    A monotonic clock that moves only when a test sets its time.
    """

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SpeedometerTests(unittest.TestCase):
    """
    Tests for the rate a Speedometer reports.
    """

    def setUp(self) -> None:
        self.clock = FakeClock()
        patcher = mock.patch("dolon._speedometer.monotonic", self.clock)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_rate_of_added_events(self) -> None:
        """
        Events added over two seconds give their number divided by two.
        """
        speedometer = trace_client.Speedometer("requests_per_s")
        speedometer.dolon_prime()
        speedometer.add(10)
        speedometer.add()
        self.clock.now += 2.0

        self.assertEqual(speedometer(), 5.5)
        self.assertEqual(speedometer.count, 11)

    def test_rate_per_window(self) -> None:
        """
        Each call measures the growth since the previous call only.
        """
        speedometer = trace_client.Speedometer("events")
        speedometer.add(100)
        self.clock.now += 1.0
        first = speedometer()
        speedometer.add(3)
        self.clock.now += 1.0
        second = speedometer()

        self.assertEqual(first, 100.0)
        self.assertEqual(second, 3.0)

    def test_counter_callable(self) -> None:
        """
        With a counter callable, the rate follows the counter's value; the
        first call without priming has no earlier value and returns None.
        """
        total = [0.0]
        speedometer = trace_client.Speedometer("bytes_per_s", lambda: total[0])

        first = speedometer()
        total[0] = 4096.0
        self.clock.now += 4.0
        second = speedometer()

        self.assertIsNone(first)
        self.assertEqual(second, 1024.0)

    def test_counter_reset_gives_none(self) -> None:
        """
        A counter that goes down gives None once, then rates from its new
        value.
        """
        total = [50.0]
        speedometer = trace_client.Speedometer("rows_per_s", lambda: total[0])
        speedometer.dolon_prime()
        total[0] = 10.0
        self.clock.now += 1.0
        after_reset = speedometer()
        total[0] = 30.0
        self.clock.now += 1.0
        after_growth = speedometer()

        self.assertIsNone(after_reset)
        self.assertEqual(after_growth, 20.0)

    def test_calls_close_together_repeat_rate(self) -> None:
        """
        A call right after another returns the same rate, so that two
        tracers sharing a speedometer both get the rate.
        """
        speedometer = trace_client.Speedometer("shared")
        speedometer.add(8)
        self.clock.now += 2.0
        first = speedometer()
        self.clock.now += 0.01
        second = speedometer()

        self.assertEqual(first, 4.0)
        self.assertEqual(second, 4.0)

    def test_column_name(self) -> None:
        """
        The column of a speedometer is its name.
        """
        speedometer = trace_client.Speedometer("jobs_per_s")

        self.assertEqual(column_name(speedometer), "jobs_per_s")

    def test_invalid_arguments(self) -> None:
        """
        An empty name or a counter that is not callable raises
        ConfigurationError.
        """
        with self.assertRaises(trace_client.ConfigurationError):
            trace_client.Speedometer("")
        with self.assertRaises(trace_client.ConfigurationError):
            trace_client.Speedometer("x", 5)  # type: ignore[arg-type]
