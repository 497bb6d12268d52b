"""
Tests of the web app's read queries, summaries, correlations and deletion,
against the embedded PostgreSQL.
"""

from __future__ import annotations

import math
import random
import uuid
from typing import Any, Optional, Sequence

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase, TestCase
from txpostgres import txpostgres

from mnemic._pool import ReadPool
from mnemic._schema import create_schema
from mnemic._store import Store, correlation_sample_limit
from mnemic._summary import WARM_MIN_SAMPLES, WIDTHS, SummaryWarmer

from ._postgres import new_name, query, test_dsn

# A fixed start, on a round number of seconds so that bucket edges are known.
T0 = 1_700_000_000.0

Row = tuple[float, Sequence[Optional[float]]]


def store_run(columns: Sequence[str], rows: Sequence[Row],
              run_id: Optional[str] = None, first_seq: int = 0) -> str:
    """
    Store a run's samples as the writer does: the samples, then the run's
    counters updated from them in the same transaction.

    :param rows: ``(unix time, values)`` pairs.
    :return: the run id.
    """
    run_id = run_id or str(uuid.uuid4())
    seqs = list(range(first_seq, first_seq + len(rows)))
    query(
        """
        WITH ins AS (
            INSERT INTO samples (run_id, seq, t, vals)
            SELECT %s, s, to_timestamp(t), v::float8[]
            FROM unnest(%s::bigint[], %s::float8[], %s::text[]) AS u(s, t, v)
            RETURNING run_id, seq, t
        ), per_run AS (
            SELECT run_id, count(*) AS n, max(seq) AS max_seq,
                   min(t) AS first_t, max(t) AS last_t FROM ins GROUP BY run_id
        )
        INSERT INTO runs AS r (id, name, columns, started, samples, max_seq,
                               first_sample, last_seen)
        SELECT run_id, %s, %s, first_t, n, max_seq, first_t, last_t FROM per_run
        ON CONFLICT (id) DO UPDATE SET
            samples = r.samples + EXCLUDED.samples,
            max_seq = greatest(r.max_seq, EXCLUDED.max_seq),
            first_sample = least(r.first_sample, EXCLUDED.first_sample),
            last_seen = greatest(r.last_seen, EXCLUDED.last_seen)
        """,
        (run_id, seqs, [t for t, _ in rows],
         ["{" + ",".join("NULL" if v is None else repr(v) for v in values) + "}"
          for _, values in rows],
         new_name("store"), list(columns)),
    )
    return run_id


def brute_summary(rows: Sequence[Row], width: int,
                  columns: int) -> dict[int, tuple[int, list[Any], list[Any]]]:
    """
    Return, per bucket of ``width`` seconds, the count and the per-column
    minimum and maximum, computed in Python.
    """
    buckets: dict[int, tuple[int, list[Any], list[Any]]] = {}
    for t, values in rows:
        bucket = math.floor(t / width)
        count, lows, highs = buckets.get(bucket) or (0, [None] * columns,
                                                     [None] * columns)
        for i, value in enumerate(values):
            if value is not None:
                lows[i] = value if lows[i] is None else min(lows[i], value)
                highs[i] = value if highs[i] is None else max(highs[i], value)
        buckets[bucket] = (count + 1, lows, highs)
    return buckets


def stored_summary(run_id: str,
                   width: int) -> dict[int, tuple[int, list[Any], list[Any]]]:
    """
    Return the summary level ``width`` of a run as stored.
    """
    rows = query(
        "SELECT bucket, n, mins, maxs FROM sample_summary"
        " WHERE run_id = %s AND width = %s",
        (run_id, width),
    )
    return {bucket: (n, list(mins), list(maxs)) for bucket, n, mins, maxs in rows}


def wave(count: int, start: float = T0, step: float = 1.0) -> list[Row]:
    """
    Return ``count`` samples of three columns, ``step`` seconds apart: a sine
    wave, a counter and a column that is null every third sample.
    """
    return [
        (start + i * step,
         [math.sin(i / 50), float(i), None if i % 3 == 0 else float(i % 7)])
        for i in range(count)
    ]


class StoreTests(TestCase):
    """
    Tests of `Store` on a real database.
    """

    timeout = 120

    @inlineCallbacks
    def setUp(self) -> Any:
        connection = txpostgres.Connection()
        yield connection.connect(test_dsn())
        try:
            yield create_schema(connection)
        finally:
            connection.close()
        self.pool = ReadPool(test_dsn())
        self.addCleanup(self.pool.close)
        self.store = Store(self.pool)

    @inlineCallbacks
    def load_run(self, run_id: str) -> Any:
        run = yield self.store.run(uuid.UUID(run_id))
        self.assertIsNotNone(run)
        return run

    @inlineCallbacks
    def test_summary_matches_samples(self) -> Any:
        """
        Reducing a long run builds a summary whose every level stores each
        bucket's exact count, minimum and maximum.
        """
        rows = wave(20_000)
        run_id = store_run(["a", "b", "c"], rows)
        run = yield self.load_run(run_id)

        series = yield self.store.series(run, 100)

        self.assertLessEqual(len(series.t), 100)
        for width in WIDTHS:
            self.assertEqual(stored_summary(run_id, width),
                             brute_summary(rows, width, 3), width)

    @inlineCallbacks
    def test_reduction_keeps_extremes(self) -> Any:
        """
        A reduced long run keeps every column's minimum and maximum, including
        one-sample spikes, in time order.
        """
        rows = wave(30_000)
        rows[12_345] = (rows[12_345][0], [50.0, -3.0, 1000.0])
        run = yield self.load_run(store_run(["a", "b", "c"], rows))

        series = yield self.store.series(run, 200)

        self.assertLessEqual(len(series.t), 200)
        self.assertGreater(len(series.t), 100)
        self.assertEqual(series.t, sorted(series.t))
        for i in range(3):
            present = [v[i] for _, v in rows if v[i] is not None]
            values = [v for v in series.values[i] if v is not None]
            self.assertEqual(max(values), max(present), i)
            self.assertEqual(min(values), min(present), i)

    @inlineCallbacks
    def test_reduced_range_is_exact(self) -> Any:
        """
        A reduced time range that starts and ends inside summary buckets
        contains no point outside the range and keeps the range's extremes.
        """
        rows = wave(40_000)
        run = yield self.load_run(store_run(["a", "b", "c"], rows))
        start, end = T0 + 5_003.5, T0 + 35_007.25

        series = yield self.store.series(run, 100, start, end)

        inside = [v for t, v in rows if start <= t <= end]
        self.assertLessEqual(len(series.t), 100)
        self.assertGreaterEqual(min(series.t), start)
        self.assertLessEqual(max(series.t), end)
        self.assertEqual(min(v for v in series.values[1] if v is not None),
                         min(v[1] for v in inside))
        self.assertEqual(max(v for v in series.values[1] if v is not None),
                         max(v[1] for v in inside))

    @inlineCallbacks
    def test_summary_follows_new_samples(self) -> Any:
        """
        Samples stored after a summary was built, in order or far out of
        order, reach the next reduction.
        """
        rows = wave(20_000)
        run_id = store_run(["a", "b", "c"], rows)
        run = yield self.load_run(run_id)
        yield self.store.series(run, 100)

        later = [(T0 + 20_000 + i, [0.0, 9e9, 1.0]) for i in range(50)]
        store_run(["a", "b", "c"], later, run_id, first_seq=20_000)
        run = yield self.load_run(run_id)
        series = yield self.store.series(run, 100)
        self.assertEqual(max(v for v in series.values[1] if v is not None), 9e9)

        # A sample hours older than the summary's latest bucket.
        early = [(T0 + 100.5, [0.0, -9e9, 1.0])]
        store_run(["a", "b", "c"], early, run_id, first_seq=30_000)
        run = yield self.load_run(run_id)
        series = yield self.store.series(run, 100)
        self.assertEqual(min(v for v in series.values[1] if v is not None), -9e9)
        everything = rows + later + early
        for width in WIDTHS:
            self.assertEqual(stored_summary(run_id, width),
                             brute_summary(everything, width, 3), width)

    @inlineCallbacks
    def test_since_returns_newer_samples(self) -> Any:
        """
        ``since`` returns only the samples after it, unreduced when few.
        """
        rows = wave(100)
        run = yield self.load_run(store_run(["a", "b", "c"], rows))

        series = yield self.store.series(run, 1000, since=T0 + 89)

        self.assertEqual(series.t, [T0 + i for i in range(90, 100)])
        self.assertEqual(series.values[1], [float(i) for i in range(90, 100)])

    @inlineCallbacks
    def test_short_run_unreduced(self) -> Any:
        """
        A run with no more samples than ``points`` is returned as stored,
        with nulls kept.
        """
        rows = wave(30)
        run = yield self.load_run(store_run(["a", "b", "c"], rows))

        series = yield self.store.series(run, 30)

        self.assertEqual(series.t, [t for t, _ in rows])
        self.assertEqual(series.values[2], [v[2] for _, v in rows])

    @inlineCallbacks
    def test_correlations(self) -> Any:
        """
        Correlations are 1 and -1 for linear relations, near 0 for noise, and
        undefined (None) for a constant or empty column.
        """
        generator = random.Random(7)
        rows: list[Row] = []
        for i in range(500):
            a = generator.uniform(-1, 1)
            rows.append((T0 + i, [a, 2 * a + 1, -a, generator.uniform(-1, 1), 4.0,
                                  None]))
        columns = ["a", "double", "negated", "noise", "constant", "empty"]
        run = yield self.load_run(store_run(columns, rows))

        result = yield self.store.correlations(run)

        matrix = result.matrix
        self.assertEqual(result.columns, columns)
        self.assertEqual((result.samples, result.total, result.sampled),
                         (500, 500, False))
        self.assertAlmostEqual(matrix[0][1], 1.0)
        self.assertAlmostEqual(matrix[1][0], 1.0)
        self.assertAlmostEqual(matrix[0][2], -1.0)
        self.assertLess(abs(matrix[0][3]), 0.2)
        self.assertEqual([matrix[i][i] for i in range(6)],
                         [1.0, 1.0, 1.0, 1.0, None, None])
        self.assertEqual(matrix[4], [None] * 6)
        self.assertEqual(matrix[5], [None] * 6)

    @inlineCallbacks
    def test_correlations_thin_large_runs(self) -> Any:
        """
        A run with more samples than the limit for its column pairs is
        thinned to about that limit, evenly by sequence number.
        """
        columns = [f"c{i}" for i in range(30)]
        limit = correlation_sample_limit(30 * 29 // 2)
        rows = [(T0 + i, [float(i * (c + 1) % 17) for c in range(30)])
                for i in range(3 * limit)]
        run = yield self.load_run(store_run(columns, rows))

        result = yield self.store.correlations(run, T0, T0 + 3 * limit)

        self.assertTrue(result.sampled)
        self.assertEqual(result.total, 3 * limit)
        self.assertEqual(result.samples, limit)
        self.assertEqual(len(result.matrix), 30)

    @inlineCallbacks
    def test_delete_run(self) -> Any:
        """
        Deleting a run removes it, its samples and its summary, and reports
        whether there was one.
        """
        run_id = store_run(["a", "b", "c"], wave(20_000))
        run = yield self.load_run(run_id)
        yield self.store.series(run, 100)
        self.assertNotEqual(stored_summary(run_id, WIDTHS[0]), {})

        deleted = yield self.store.delete_run(uuid.UUID(run_id))
        again = yield self.store.delete_run(uuid.UUID(run_id))

        self.assertTrue(deleted)
        self.assertFalse(again)
        gone = yield self.store.run(uuid.UUID(run_id))
        self.assertIsNone(gone)
        for table, key in (("samples", "run_id"), ("sample_summary", "run_id"),
                           ("sample_summary_state", "run_id"), ("runs", "id")):
            count = query(f"SELECT count(*) FROM {table} WHERE {key} = %s", (run_id,))
            self.assertEqual(count[0][0], 0, table)

    @inlineCallbacks
    def test_warmer_builds_large_summaries(self) -> Any:
        """
        The warmer builds the summary of a large run whose summary is behind,
        and leaves small runs alone.
        """
        large_rows = [(T0 + i, [float(i % 13)]) for i in range(WARM_MIN_SAMPLES)]
        large = store_run(["a"], large_rows)
        small = store_run(["a"], [(T0 + i, [1.0]) for i in range(10)])
        warmer = SummaryWarmer(self.pool, lambda: 0.0, batch=1000)

        warmer.poke()
        assert warmer.running is not None
        yield warmer.running

        self.assertEqual(stored_summary(large, WIDTHS[-1]),
                         brute_summary(large_rows, WIDTHS[-1], 1))
        state = query("SELECT samples FROM sample_summary_state WHERE run_id = %s",
                      (large,))
        self.assertEqual(state, [(WARM_MIN_SAMPLES,)])
        self.assertEqual(stored_summary(small, WIDTHS[0]), {})


class RecordingPool:
    """
    A pool whose queries return Deferreds that the test fires by hand.
    """

    def __init__(self) -> None:
        self.queries: list[tuple[str, Any]] = []
        self.pending: list[Deferred[Any]] = []

    def runQuery(self, sql: str, args: Any = None) -> Deferred[Any]:
        self.queries.append((sql, args))
        result: Deferred[Any] = Deferred()
        self.pending.append(result)
        return result


class SummaryWarmerTests(SynchronousTestCase):
    """
    Tests of when `SummaryWarmer` refreshes.
    """

    def setUp(self) -> None:
        self.now = 100.0
        self.pool = RecordingPool()
        self.warmer = SummaryWarmer(self.pool, lambda: self.now, interval=30.0)

    def test_one_refresh_at_a_time(self) -> None:
        """
        A poke while a refresh is running starts nothing.
        """
        self.warmer.poke()
        self.now += 60
        self.warmer.poke()

        self.assertEqual(len(self.pool.queries), 1)

    def test_interval_between_refreshes(self) -> None:
        """
        After a refresh, the next starts only ``interval`` seconds later, and
        it refreshes each run the first query lists.
        """
        self.warmer.poke()
        self.pool.pending[0].callback([(str(uuid.uuid4()),)])
        self.pool.pending[1].callback([])
        self.assertIsNone(self.warmer.running)

        self.now += 29
        self.warmer.poke()
        self.assertEqual(len(self.pool.queries), 2)
        self.now += 1
        self.warmer.poke()
        self.assertEqual(len(self.pool.queries), 3)
        self.assertIn("mnemic_refresh_summary", self.pool.queries[1][0])

    def test_failure_logged(self) -> None:
        """
        A failed query is logged, and the next refresh starts as usual.
        """
        self.warmer.poke()
        self.pool.pending[0].errback(RuntimeError("database gone"))

        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertIsNone(self.warmer.running)
        self.now += 30
        self.warmer.poke()
        self.assertEqual(len(self.pool.queries), 2)
