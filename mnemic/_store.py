"""
Read queries behind the web app and its JSON API.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from twisted.internet.defer import inlineCallbacks

from . import _summary

_RUN_FIELDS = """
    id, name, columns, started, last_seen, samples,
    CASE WHEN max_seq >= 0 THEN greatest(max_seq + 1 - samples, 0) ELSE 0 END,
    host, pid, first_sample
"""

# Summary bucket numbers beyond any real sample, for a range with an open end.
_FAR_BUCKET_BEFORE = -(2**62)
_FAR_BUCKET_AFTER = 2**62


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
    first_sample: Optional[datetime] = None


@dataclass(frozen=True)
class Series:
    """
    A run's samples, one list of values per column, reduced for drawing.
    """

    columns: list[str]
    t: list[float]
    values: list[list[Optional[float]]]


@dataclass(frozen=True)
class Correlations:
    """
    The correlation of every pair of a run's columns.

    ``matrix[i][j]`` is None where it is undefined: a column without at least
    two values, or a constant one. ``samples`` is how many samples were read
    out of ``total`` in the range, fewer when ``sampled`` is true.
    """

    columns: list[str]
    matrix: list[list[Optional[float]]]
    samples: int
    total: int
    sampled: bool


def correlation_sample_limit(pairs: int) -> int:
    """
    Return how many samples a correlation of ``pairs`` column pairs reads at
    most, so that it evaluates about two million ``corr`` steps.
    """
    return max(2000, min(200_000, 2_000_000 // max(pairs, 1)))


def _run(row: tuple[Any, ...]) -> Run:
    return Run(uuid.UUID(str(row[0])), row[1], list(row[2]), row[3], row[4],
               int(row[5]), int(row[6]), row[7], row[8], row[9])


class _RangeQuery:
    """
    The SQL condition that selects a run's samples in a time range.
    """

    def __init__(self, run: Run, start: Optional[float], end: Optional[float],
                 exclusive: bool = False) -> None:
        self.run = run
        self.start = start
        self.end = end
        self.exclusive = exclusive
        conditions = ["run_id = %s"]
        arguments: list[Any] = [str(run.id)]
        if start is not None:
            conditions.append(f"t {'>' if exclusive else '>='} to_timestamp(%s)")
            arguments.append(start)
        if end is not None:
            conditions.append("t <= to_timestamp(%s)")
            arguments.append(end)
        self.where = " AND ".join(conditions)
        self.arguments = tuple(arguments)


class Store:
    """
    Runs the read queries on a ``txpostgres.ConnectionPool``.
    """

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._warmer = _summary.SummaryWarmer(pool, time.monotonic)

    def warm_summaries(self) -> None:
        """
        Refresh the summaries of large runs in the background, if due.
        """
        self._warmer.poke()

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
               end: Optional[float] = None, since: Optional[float] = None) -> Any:
        """
        Return the run's samples between ``start`` and ``end`` (Unix seconds,
        both included), or after ``since`` (excluded), reduced to at most
        ``points`` points per column.

        When there are more samples in the range than ``points``, the range is
        cut into equal time buckets. Each bucket gives two points, so that
        spikes stay visible: the minimum of every column at the bucket's first
        sample time, and the maximum at its last. A long range is
        reduced from the run's summary (see `mnemic._summary`), and a short one
        from its samples.
        """
        query = _RangeQuery(run, start if since is None else since, end,
                            exclusive=since is not None)
        if run.samples <= points:
            return (yield self._raw_series(query))
        summarized = self._summary_plan(query, points)
        if summarized is not None:
            series = yield self._summary_series(query, points, *summarized)
            if series is not None:
                return series
        bounds = yield self._pool.runQuery(
            "SELECT count(*), date_part('epoch', min(t)), date_part('epoch', max(t))"
            f" FROM samples WHERE {query.where}",
            query.arguments,
        )
        count, low, high = bounds[0]
        if count <= points:
            return (yield self._raw_series(query))
        mins, maxs = _summary.aggregate_lists(len(run.columns), "vals", "vals")
        rows = yield self._pool.runQuery(
            "SELECT width_bucket(date_part('epoch', t), %s, %s, %s) AS b,"
            " date_part('epoch', min(t)), date_part('epoch', max(t)), count(*),"
            f" {mins}, {maxs} FROM samples WHERE {query.where}"
            " GROUP BY b ORDER BY b",
            (low, high + 1e-3, max(points // 2, 1)) + query.arguments,
        )
        return _series_from_buckets(run.columns, rows)

    @inlineCallbacks
    def _raw_series(self, query: _RangeQuery) -> Any:
        rows = yield self._pool.runQuery(
            "SELECT date_part('epoch', t), vals FROM samples"
            f" WHERE {query.where} ORDER BY t, seq",
            query.arguments,
        )
        return _series_from_rows(query.run.columns, rows)

    def _summary_plan(self, query: _RangeQuery,
                      points: int) -> Optional[tuple[int, int]]:
        # Return the summary width and the number of its buckets per output
        # bucket. Return None when the range is better reduced from the
        # samples, which is when it contains few samples by the run's average
        # rate, or when output buckets would be narrower than four of the
        # finest summary buckets.
        run = query.run
        if points < 4 or run.first_sample is None or run.last_seen is None:
            return None
        first = run.first_sample.timestamp()
        last = run.last_seen.timestamp()
        low = first if query.start is None else max(query.start, first)
        high = last if query.end is None else min(query.end, last)
        if high <= low or last <= first:
            return None
        if run.samples * (high - low) / (last - first) <= 4 * points:
            return None
        # At most points // 2 - 1 output buckets of at least this length
        # cover the range, and each gives two points.
        bucket_seconds = (high - low) / (points // 2 - 1)
        width = _summary.pick_width(bucket_seconds)
        if width is None:
            return None
        return width, math.ceil(bucket_seconds / width)

    @inlineCallbacks
    def _summary_series(self, query: _RangeQuery, points: int, width: int,
                        group: int) -> Any:
        # Return None when the range contains no more than ``points`` samples,
        # which are then returned unreduced.
        yield _summary.refresh(self._pool, query.run.id)
        start, end = query.start, query.end
        first = _FAR_BUCKET_BEFORE if start is None else math.ceil(start / width)
        last = _FAR_BUCKET_AFTER if end is None else math.floor(end / width) - 1
        arguments = {
            "run": str(query.run.id), "width": width, "group": group,
            "first": first, "last": last,
            "start": -math.inf if start is None else start,
            "first_start": -math.inf if start is None else first * width,
            "last_end": math.inf if end is None else (last + 1) * width,
            "end": math.inf if end is None else end,
        }
        operator = ">" if query.exclusive else ">="
        rows = yield self._pool.runQuery(
            _summary.bucket_query(len(query.run.columns), operator), arguments
        )
        if sum(row[3] for row in rows) <= points:
            return None
        return _series_from_buckets(query.run.columns, rows)

    @inlineCallbacks
    def correlations(self, run: Run, start: Optional[float] = None,
                     end: Optional[float] = None) -> Any:
        """
        Return the Pearson correlation of every pair of the run's columns
        between ``start`` and ``end``, computed by PostgreSQL's ``corr``.

        Each pair uses the samples where both columns have a value. A range
        with more samples than `correlation_sample_limit` allows is thinned
        to an evenly spaced subset by sequence number (rows of the earlier
        protocol, which carry none, at random).
        """
        query = _RangeQuery(run, start, end)
        columns = len(run.columns)
        indexes = range(1, columns + 1)
        pairs = [(i, j) for i in indexes for j in indexes if i < j]
        limit = correlation_sample_limit(len(pairs))
        if start is None and end is None:
            count = run.samples
        else:
            counted = yield self._pool.runQuery(
                f"SELECT count(*) FROM samples WHERE {query.where}", query.arguments
            )
            count = counted[0][0]
        step = max(1, math.ceil(count / limit))
        correlations = ", ".join(f"corr(vals[{i}], vals[{j}])" for i, j in pairs)
        deviations = ", ".join(f"stddev_samp(vals[{i}])" for i in indexes)
        rows = yield self._pool.runQuery(
            f"SELECT count(*), ARRAY[{correlations or 'NULL'}]::float8[],"
            f" ARRAY[{deviations or 'NULL'}]::float8[]"
            f" FROM samples WHERE {query.where}"
            " AND (%s = 1 OR seq %% %s = 0 OR (seq IS NULL AND random() * %s < 1))",
            query.arguments + (step, step, step),
        )
        used, values, spreads = rows[0]
        matrix: list[list[Optional[float]]] = [[None] * columns for _ in indexes]
        for (i, j), value in zip(pairs, values or []):
            matrix[i - 1][j - 1] = matrix[j - 1][i - 1] = value
        for i, spread in enumerate((spreads or [])[:columns]):
            # corr is undefined for a constant column, even with itself.
            matrix[i][i] = 1.0 if spread else None
        return Correlations(run.columns, matrix, used, count, step > 1)

    @inlineCallbacks
    def delete_run(self, run_id: uuid.UUID) -> Any:
        """
        Delete a run with its samples and summary, and return whether it
        existed.

        A run that is still sending starts again with the samples and
        announcements that arrive after this.
        """
        rows = yield self._pool.runQuery(
            "WITH gone AS (DELETE FROM samples WHERE run_id = %s)"
            " DELETE FROM runs WHERE id = %s RETURNING id",
            (str(run_id), str(run_id)),
        )
        return bool(rows)

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
    # Each row is (bucket, first time, last time, count, minima, maxima).
    width = len(columns)
    t: list[float] = []
    values: list[list[Optional[float]]] = [[] for _ in columns]
    for _, first, last, _, lows, highs in rows:
        t.append(first)
        for i in range(width):
            values[i].append(lows[i] if i < len(lows) else None)
        if last > first:
            t.append(last)
            for i in range(width):
                values[i].append(highs[i] if i < len(highs) else None)
    return Series(columns, t, values)
