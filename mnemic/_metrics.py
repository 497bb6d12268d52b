"""
The service's own counters, rendered in Prometheus' text exposition format.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Callable


class Metrics:
    """
    Counters and gauges of one mnemic process.

    Gauges that live elsewhere (the writer's queue depth) are read through
    callables registered with `add_gauge` when `/metrics` is rendered.
    """

    def __init__(self) -> None:
        self.datagrams_received = 0
        self.invalid: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.rows_written = 0
        self.rows_dropped = 0
        self.flushes = 0
        self.flush_seconds_total = 0.0
        self.last_flush_seconds = 0.0
        self.db_reconnects = 0
        # By name: the Prometheus type, the help text and the reading callable.
        self._gauges: dict[str, tuple[str, str, Callable[[], float]]] = {}

    def add_gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """
        Register a gauge whose value is read when the metrics are rendered.
        """
        self._gauges[name] = ("gauge", help_text, read)

    def add_counter(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """
        Register a counter kept elsewhere (by the kernel, for example), read
        when the metrics are rendered. ``name`` should end in ``_total``.
        """
        self._gauges[name] = ("counter", help_text, read)

    def record_flush(self, rows: int, seconds: float) -> None:
        """
        Count one successful batch write of ``rows`` rows.
        """
        self.rows_written += rows
        self.flushes += 1
        self.flush_seconds_total += seconds
        self.last_flush_seconds = seconds

    def render(self) -> str:
        """
        Return all metrics in Prometheus' text exposition format, version 0.0.4.
        """
        lines: list[str] = []

        def emit(name: str, kind: str, help_text: str, samples: list[str]) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(samples)

        emit("mnemic_datagrams_received_total", "counter",
             "UDP datagrams received.",
             [f"mnemic_datagrams_received_total {self.datagrams_received}"])
        emit("mnemic_datagrams_invalid_total", "counter",
             "Datagrams that broke the wire protocol, by reason.",
             _labelled("mnemic_datagrams_invalid_total", self.invalid))
        emit("mnemic_datagrams_rejected_total", "counter",
             "Well-formed datagrams that were rejected, by reason.",
             _labelled("mnemic_datagrams_rejected_total", self.rejected))
        emit("mnemic_rows_written_total", "counter",
             "Sample rows written to PostgreSQL.",
             [f"mnemic_rows_written_total {self.rows_written}"])
        emit("mnemic_rows_dropped_total", "counter",
             "Sample rows dropped because the buffer was full.",
             [f"mnemic_rows_dropped_total {self.rows_dropped}"])
        emit("mnemic_flush_seconds", "summary",
             "Time taken by batch writes to PostgreSQL.",
             [f"mnemic_flush_seconds_count {self.flushes}",
              f"mnemic_flush_seconds_sum {self.flush_seconds_total:.6f}"])
        emit("mnemic_last_flush_seconds", "gauge",
             "Duration of the latest batch write.",
             [f"mnemic_last_flush_seconds {self.last_flush_seconds:.6f}"])
        emit("mnemic_db_reconnects_total", "counter",
             "Reconnections to PostgreSQL after a lost connection.",
             [f"mnemic_db_reconnects_total {self.db_reconnects}"])
        for name, (kind, help_text, read) in sorted(self._gauges.items()):
            emit(name, kind, help_text, [f"{name} {_format_value(read())}"])
        return "\n".join(lines) + "\n"


def _format_value(value: float) -> str:
    # The "g" format keeps only 6 significant digits, so a queue of 1234567
    # rows read as 1.23457e+06. repr() of a float round-trips exactly.
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _labelled(name: str, counts: Counter[str]) -> list[str]:
    # Reasons are fixed labels chosen by the decoder, never client text.
    return [f'{name}{{reason="{reason}"}} {count}'
            for reason, count in sorted(counts.items())]
