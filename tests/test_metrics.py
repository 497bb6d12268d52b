"""
Tests for mnemic._metrics, parsed back with prometheus_client's text parser.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SynchronousTestCase

from mnemic._metrics import Metrics

# Each family that /metrics always exposes, with its Prometheus type. The
# parser names counter families without the _total suffix.
FAMILIES = {
    "mnemic_datagrams_received": "counter",
    "mnemic_datagrams_invalid": "counter",
    "mnemic_datagrams_rejected": "counter",
    "mnemic_rows_written": "counter",
    "mnemic_rows_dropped": "counter",
    "mnemic_flush_seconds": "summary",
    "mnemic_last_flush_seconds": "gauge",
    "mnemic_db_reconnects": "counter",
}


def parse(text: str) -> dict[str, Metric]:
    """
    Parse Prometheus text exposition output into metric families by name.
    """
    return {family.name: family for family in text_string_to_metric_families(text)}


def values(family: Metric) -> dict[tuple[str, tuple[tuple[str, str], ...]], Any]:
    """
    Return the value of each sample of ``family``, keyed by name and labels.
    """
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}


def constant(value: float) -> Callable[[], float]:
    """
    Return a gauge callable that always reads ``value``.
    """
    return lambda: value


class MetricsRenderTests(SynchronousTestCase):
    """
    Metrics.render writes valid Prometheus text with every counter and gauge.
    """

    def test_families_and_types(self) -> None:
        """
        A fresh Metrics renders every family with its type, each sample
        belonging to a declared family.
        """
        families = parse(Metrics().render())

        self.assertEqual({name: f.type for name, f in families.items()}, FAMILIES)

    def test_help_lines(self) -> None:
        """
        Every family has a HELP line.
        """
        families = parse(Metrics().render())

        for name, family in families.items():
            self.assertTrue(family.documentation, name)

    def test_ends_with_line_feed(self) -> None:
        """
        The output ends with a line feed, as the text format requires.
        """
        self.assertTrue(Metrics().render().endswith("\n"))

    def test_initial_values(self) -> None:
        """
        Every counter and the flush summary start at zero.
        """
        families = parse(Metrics().render())

        self.assertEqual(
            values(families["mnemic_datagrams_received"]),
            {("mnemic_datagrams_received_total", ()): 0},
        )
        self.assertEqual(values(families["mnemic_datagrams_invalid"]), {})
        self.assertEqual(values(families["mnemic_datagrams_rejected"]), {})
        self.assertEqual(
            values(families["mnemic_flush_seconds"]),
            {
                ("mnemic_flush_seconds_count", ()): 0,
                ("mnemic_flush_seconds_sum", ()): 0,
            },
        )

    def test_plain_counters(self) -> None:
        """
        The unlabelled counters show the attributes of the same name.
        """
        metrics = Metrics()
        metrics.datagrams_received = 12345678
        metrics.rows_dropped = 7
        metrics.db_reconnects = 2

        families = parse(metrics.render())

        self.assertEqual(
            values(families["mnemic_datagrams_received"]),
            {("mnemic_datagrams_received_total", ()): 12345678},
        )
        self.assertEqual(
            values(families["mnemic_rows_dropped"]),
            {("mnemic_rows_dropped_total", ()): 7},
        )
        self.assertEqual(
            values(families["mnemic_db_reconnects"]),
            {("mnemic_db_reconnects_total", ()): 2},
        )

    def test_counters_by_reason(self) -> None:
        """
        Invalid and rejected datagrams appear as one sample per reason, with
        the reason as a label.
        """
        metrics = Metrics()
        metrics.invalid["not_json"] += 3
        metrics.invalid["bad_value"] += 1
        metrics.rejected["column_count"] += 2

        families = parse(metrics.render())

        self.assertEqual(
            values(families["mnemic_datagrams_invalid"]),
            {
                ("mnemic_datagrams_invalid_total", (("reason", "not_json"),)): 3,
                ("mnemic_datagrams_invalid_total", (("reason", "bad_value"),)): 1,
            },
        )
        self.assertEqual(
            values(families["mnemic_datagrams_rejected"]),
            {("mnemic_datagrams_rejected_total", (("reason", "column_count"),)): 2},
        )

    def test_record_flush(self) -> None:
        """
        Each recorded flush adds its rows and duration, and the latest
        duration is also exposed as a gauge.
        """
        metrics = Metrics()
        metrics.record_flush(100, 0.25)
        metrics.record_flush(50, 0.125)

        families = parse(metrics.render())

        self.assertEqual(
            values(families["mnemic_rows_written"]),
            {("mnemic_rows_written_total", ()): 150},
        )
        self.assertEqual(
            values(families["mnemic_flush_seconds"]),
            {
                ("mnemic_flush_seconds_count", ()): 2,
                ("mnemic_flush_seconds_sum", ()): 0.375,
            },
        )
        self.assertEqual(
            values(families["mnemic_last_flush_seconds"]),
            {("mnemic_last_flush_seconds", ()): 0.125},
        )


class MetricsGaugeTests(SynchronousTestCase):
    """
    Gauges registered with add_gauge are read when the metrics are rendered.
    """

    def test_gauge_read_at_render(self) -> None:
        """
        A gauge shows the value its callable returns at each render, not at
        registration.
        """
        depth = [0.0]
        metrics = Metrics()
        metrics.add_gauge("mnemic_queue_rows", "Rows waiting.", lambda: depth[0])
        depth[0] = 3.0

        first = parse(metrics.render())
        depth[0] = 42.0
        second = parse(metrics.render())

        self.assertEqual(first["mnemic_queue_rows"].type, "gauge")
        self.assertEqual(first["mnemic_queue_rows"].documentation, "Rows waiting.")
        self.assertEqual(
            values(first["mnemic_queue_rows"]), {("mnemic_queue_rows", ()): 3.0}
        )
        self.assertEqual(
            values(second["mnemic_queue_rows"]), {("mnemic_queue_rows", ()): 42.0}
        )

    def test_gauge_values_exact(self) -> None:
        """
        Large and fractional gauge values are written without rounding.
        """
        cases = [1234567.0, 1_000_001.0, 123456789.0, 0.1, 2.5e-7, -3.0]
        metrics = Metrics()
        for i, value in enumerate(cases):
            metrics.add_gauge(f"mnemic_test_{i}", "A test gauge.", constant(value))

        families = parse(metrics.render())

        rendered = [
            families[f"mnemic_test_{i}"].samples[0].value for i in range(len(cases))
        ]
        self.assertEqual(rendered, cases)

    def test_gauge_non_finite(self) -> None:
        """
        NaN and infinite gauge values use the spellings of the text format.
        """
        metrics = Metrics()
        metrics.add_gauge("mnemic_test_nan", "NaN.", lambda: math.nan)
        metrics.add_gauge("mnemic_test_inf", "Infinity.", lambda: math.inf)
        metrics.add_gauge("mnemic_test_minus_inf", "-Infinity.", lambda: -math.inf)

        text = metrics.render()

        self.assertIn("mnemic_test_nan NaN\n", text)
        self.assertIn("mnemic_test_inf +Inf\n", text)
        self.assertIn("mnemic_test_minus_inf -Inf\n", text)
        self.assertTrue(math.isnan(parse(text)["mnemic_test_nan"].samples[0].value))

    def test_gauge_registered_again(self) -> None:
        """
        Registering a gauge name again replaces the earlier callable.
        """
        metrics = Metrics()
        metrics.add_gauge("mnemic_queue_rows", "Rows waiting.", lambda: 1.0)
        metrics.add_gauge("mnemic_queue_rows", "Rows waiting.", lambda: 2.0)

        text = metrics.render()

        self.assertEqual(text.count("# TYPE mnemic_queue_rows gauge"), 1)
        self.assertEqual(
            values(parse(text)["mnemic_queue_rows"]), {("mnemic_queue_rows", ()): 2.0}
        )

    def test_gauges_beside_counters(self) -> None:
        """
        Registered gauges are added to the built-in families.
        """
        metrics = Metrics()
        metrics.add_gauge("mnemic_queue_rows", "Rows waiting.", lambda: 0.0)

        families = parse(metrics.render())

        self.assertEqual(
            {name: f.type for name, f in families.items()},
            {**FAMILIES, "mnemic_queue_rows": "gauge"},
        )
