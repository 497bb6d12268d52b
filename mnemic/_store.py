"""
Read queries behind the web app and its JSON API.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from twisted.internet.defer import inlineCallbacks

_RUN_FIELDS = """
    id, name, columns, started, last_seen, samples,
    CASE WHEN max_seq >= 0 THEN greatest(max_seq + 1 - samples, 0) ELSE 0 END,
    host, pid
"""


@dataclass(frozen=True)
class Run:
    """
    One announced run and its counters.
    """

    id: uuid.UUID
    name: str
    columns: list[str]
    started: datetime
    last_seen: Optional[datetime]
    samples: int
    lost: int
    host: Optional[str]
    pid: Optional[int]


@dataclass(frozen=True)
class Series:
    """
    A run's samples, one list of values per column, reduced for drawing.
    """

    columns: list[str]
    t: list[float]
    values: list[list[Optional[float]]]


def _run(row: tuple[Any, ...]) -> Run:
    return Run(uuid.UUID(str(row[0])), row[1], list(row[2]), row[3], row[4],
               int(row[5]), int(row[6]), row[7], row[8])


class Store:
    """
    Runs the read queries on a ``txpostgres.ConnectionPool``.
    """

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @inlineCallbacks
    def runs(self) -> Any:
        """
        Return every announced run, newest first.
        """
        rows = yield self._pool.runQuery(
            f"SELECT {_RUN_FIELDS} FROM runs WHERE name IS NOT NULL"
            " ORDER BY started DESC, id"
        )
        return [_run(row) for row in rows]

    @inlineCallbacks
    def run(self, run_id: uuid.UUID) -> Any:
        """
        Return one announced run, or None if there is none with that id.
        """
        rows = yield self._pool.runQuery(
            f"SELECT {_RUN_FIELDS} FROM runs WHERE id = %s AND name IS NOT NULL",
            (str(run_id),),
        )
        return _run(rows[0]) if rows else None

    @inlineCallbacks
    def series(self, run: Run, points: int, start: Optional[float] = None,
               end: Optional[float] = None) -> Any:
        """
        Return the run's samples between ``start`` and ``end`` (Unix seconds).

        When there are more than ``points`` samples in the range, they are
        grouped into ``points // 2`` equal time buckets, and each bucket gives
        two points: the minimum and the maximum of every column, so spikes
        stay visible.
        """
        where = "run_id = %s AND t >= to_timestamp(%s) AND t <= to_timestamp(%s)"
        arguments = (str(run.id), start if start is not None else 0.0,
                     end if end is not None else 1e11)
        bounds = yield self._pool.runQuery(
            "SELECT count(*), extract(epoch FROM min(t))::float8,"
            f" extract(epoch FROM max(t))::float8 FROM samples WHERE {where}",
            arguments,
        )
        count, low, high = bounds[0]
        if count <= points:
            rows = yield self._pool.runQuery(
                "SELECT extract(epoch FROM t)::float8, vals FROM samples"
                f" WHERE {where} ORDER BY t, seq",
                arguments,
            )
            return _series_from_rows(run.columns, rows)
        buckets = max(points // 2, 1)
        rows = yield self._pool.runQuery(
            f"""
            SELECT b, u.i, min(u.v), max(u.v), min(s.e), max(s.e)
            FROM (
                SELECT width_bucket(extract(epoch FROM t)::float8, %s, %s, %s) AS b,
                       extract(epoch FROM t)::float8 AS e, vals
                FROM samples
                WHERE {where}
            ) AS s, unnest(s.vals) WITH ORDINALITY AS u(v, i)
            GROUP BY b, u.i ORDER BY b, u.i
            """,
            (low, high + 1e-3, buckets) + arguments,
        )
        return _series_from_buckets(run.columns, rows)

    @inlineCallbacks
    def sample_pages(self, run: Run, page_rows: int = 10000) -> Any:
        """
        Return a list of pages of ``(time, values)`` rows for the whole run.
        """
        pages: list[list[tuple[Any, Any]]] = []
        last: tuple[Any, ...] = ("-infinity", -1)
        while True:
            rows = yield self._pool.runQuery(
                "SELECT t, coalesce(seq, -1), vals FROM samples WHERE run_id = %s"
                " AND (t, coalesce(seq, -1)) > (%s::timestamptz, %s)"
                " ORDER BY t, coalesce(seq, -1) LIMIT %s",
                (str(run.id), last[0], last[1], page_rows),
            )
            if not rows:
                return pages
            pages.append([(row[0], row[2]) for row in rows])
            last = (rows[-1][0], rows[-1][1])


def _series_from_rows(columns: list[str], rows: list[Any]) -> Series:
    width = len(columns)
    values: list[list[Optional[float]]] = [[] for _ in columns]
    for _, vals in rows:
        for i in range(width):
            values[i].append(vals[i] if i < len(vals) else None)
    return Series(columns, [row[0] for row in rows], values)


def _series_from_buckets(columns: list[str], rows: list[Any]) -> Series:
    width = len(columns)
    by_bucket: dict[int, dict[str, Any]] = {}
    for bucket, index, low, high, first, last in rows:
        entry = by_bucket.setdefault(
            bucket, {"first": first, "last": last, "low": [None] * width,
                     "high": [None] * width})
        if 1 <= index <= width:
            entry["low"][index - 1] = low
            entry["high"][index - 1] = high
    t: list[float] = []
    values: list[list[Optional[float]]] = [[] for _ in columns]
    for bucket in sorted(by_bucket):
        entry = by_bucket[bucket]
        t.append(entry["first"])
        for i in range(width):
            values[i].append(entry["low"][i])
        if entry["last"] > entry["first"]:
            t.append(entry["last"])
            for i in range(width):
                values[i].append(entry["high"][i])
    return Series(columns, t, values)
