"""
Per-run summaries of the samples: the minimum and maximum of every column in
fixed time buckets, so that a long run is reduced for drawing without reading
all of its samples.

The summaries are built on read: before the web app reduces a run from them,
it calls `refresh`, which brings the run's summary up to date with its
samples. While a page is open, `SummaryWarmer` also refreshes the summaries
of large runs in the background. Ingest pays nothing for them.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger

# Bucket widths in seconds, finest first. Each width is a multiple of the one
# before it, because a coarser level is built from the finer one.
WIDTHS = (10, 100, 1000, 10_000, 100_000)

# How far back, in seconds before the latest summarized sample, a refresh
# rebuilds the buckets, so that samples stored slightly out of order are
# included. A refresh that finds samples older than that rebuilds the run.
LATE_WINDOW = 60.0

# The sample_summary_state row of a run stores the latest sample time its
# summary covers and the run's sample count at that refresh. Both tables
# are removed with the run they belong to.
SCHEMA_STATEMENTS = (
    """
    CREATE TABLE IF NOT EXISTS sample_summary (
        run_id uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        width integer NOT NULL,
        bucket bigint NOT NULL,
        t_first timestamptz NOT NULL,
        t_last timestamptz NOT NULL,
        n bigint NOT NULL,
        mins float8[] NOT NULL,
        maxs float8[] NOT NULL,
        PRIMARY KEY (run_id, width, bucket)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS sample_summary_state (
        run_id uuid PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
        until timestamptz,
        samples bigint NOT NULL
    )
    """,
    # Rebuild every level of one run's summary from since_epoch (Unix
    # seconds, or -Infinity for all) onwards. A bucket is identified by
    # floor(epoch / width), so each level is deleted and rebuilt from the
    # first bucket that contains since_epoch.
    """
    CREATE OR REPLACE FUNCTION mnemic_summarize_from(
        for_run uuid, widths integer[], column_count integer, since_epoch float8
    ) RETURNS void LANGUAGE plpgsql AS $function$
    DECLARE
        level_width integer;
        finer_width integer := NULL;
        min_list text;
        max_list text;
    BEGIN
        FOREACH level_width IN ARRAY widths LOOP
            DELETE FROM sample_summary
            WHERE run_id = for_run AND width = level_width
              AND bucket >= floor(since_epoch / level_width);
            IF finer_width IS NULL THEN
                SELECT string_agg(format('min(vals[%s])', i), ', '),
                       string_agg(format('max(vals[%s])', i), ', ')
                INTO min_list, max_list FROM generate_series(1, column_count) AS i;
                -- The time condition lets the index find the first rows; the
                -- bucket condition matches the DELETE above exactly.
                EXECUTE format($query$
                    INSERT INTO sample_summary
                        (run_id, width, bucket, t_first, t_last, n, mins, maxs)
                    SELECT $1, $2, b, min(t), max(t), count(*),
                           ARRAY[%s], ARRAY[%s]
                    FROM (
                        SELECT floor(date_part('epoch', t) / $2)::bigint AS b,
                               t, vals
                        FROM samples
                        WHERE run_id = $1
                          AND t >= to_timestamp((floor($3 / $2) - 1) * $2)
                    ) AS s
                    WHERE b >= floor($3 / $2)
                    GROUP BY b
                $query$, min_list, max_list)
                USING for_run, level_width, since_epoch;
            ELSE
                SELECT string_agg(format('min(mins[%s])', i), ', '),
                       string_agg(format('max(maxs[%s])', i), ', ')
                INTO min_list, max_list FROM generate_series(1, column_count) AS i;
                EXECUTE format($query$
                    INSERT INTO sample_summary
                        (run_id, width, bucket, t_first, t_last, n, mins, maxs)
                    SELECT $1, $2, floor(bucket::float8 * $4 / $2)::bigint,
                           min(t_first), max(t_last), sum(n), ARRAY[%s], ARRAY[%s]
                    FROM sample_summary
                    WHERE run_id = $1 AND width = $4
                      AND bucket >= floor($3 / $2) * ($2 / $4)
                    GROUP BY 3
                $query$, min_list, max_list)
                USING for_run, level_width, since_epoch, finer_width;
            END IF;
            finer_width := level_width;
        END LOOP;
    END
    $function$
    """,
    # Bring one run's summary up to date. Samples are stored nearly in time
    # order, so the buckets from late_window seconds before the latest
    # summarized sample are rebuilt. runs.samples grows in the same statement
    # that stores the samples: if the summary then counts fewer samples than
    # runs.samples contained before the rebuild, some arrived out of that
    # window, and the whole run is rebuilt.
    # NOTE: this count check assumes that samples are deleted only with
    # their run. Deleting some samples of a run would leave them in its
    # summary until a full rebuild.
    """
    CREATE OR REPLACE FUNCTION mnemic_refresh_summary(
        for_run uuid, widths integer[], late_window float8
    ) RETURNS void LANGUAGE plpgsql AS $function$
    DECLARE
        total bigint;
        column_count integer;
        known record;
        since_epoch float8 := '-Infinity';
        covered bigint;
        coarsest integer := widths[array_upper(widths, 1)];
    BEGIN
        -- One refresh per run at a time; the statements below then see what
        -- a concurrent refresh committed.
        PERFORM pg_advisory_xact_lock(1835363693, hashtext(for_run::text));
        SELECT r.samples, coalesce(array_length(r.columns, 1), 0)
        INTO total, column_count FROM runs AS r WHERE r.id = for_run;
        IF NOT FOUND OR column_count = 0 THEN
            RETURN;
        END IF;
        SELECT s.until, s.samples INTO known
        FROM sample_summary_state AS s WHERE s.run_id = for_run;
        IF FOUND AND known.samples = total THEN
            RETURN;
        END IF;
        IF FOUND AND known.until IS NOT NULL THEN
            since_epoch := date_part('epoch', known.until) - late_window;
        END IF;
        LOOP
            PERFORM mnemic_summarize_from(for_run, widths, column_count, since_epoch);
            SELECT coalesce(sum(n), 0) INTO covered FROM sample_summary
            WHERE run_id = for_run AND width = coarsest;
            EXIT WHEN covered >= total OR since_epoch = '-Infinity';
            since_epoch := '-Infinity';
        END LOOP;
        INSERT INTO sample_summary_state AS s (run_id, until, samples)
        SELECT for_run, max(t_last), total FROM sample_summary
        WHERE run_id = for_run AND width = coarsest
        ON CONFLICT (run_id) DO UPDATE
        SET until = EXCLUDED.until, samples = EXCLUDED.samples;
    END
    $function$
    """,
)


def refresh(pool: Any, run_id: uuid.UUID) -> Any:
    """
    Bring the run's summary up to date with its stored samples.

    :return: a Deferred that fires when the summary is current.
    """
    return pool.runQuery(
        "SELECT mnemic_refresh_summary(%s, %s, %s)",
        (str(run_id), list(WIDTHS), LATE_WINDOW),
    )


def pick_width(bucket_seconds: float) -> Optional[int]:
    """
    Return the widest summary level that puts at least four of its buckets in
    each output bucket of ``bucket_seconds``, or None when even the finest is
    too wide.
    """
    fitting = [width for width in WIDTHS if 4 * width <= bucket_seconds]
    return fitting[-1] if fitting else None


def aggregate_lists(column_count: int, low: str, high: str) -> tuple[str, str]:
    """
    Return SQL array constructors of the per-column minimum of ``low`` and
    maximum of ``high``, e.g. ``ARRAY[min(vals[1]), min(vals[2])]``.
    """
    indexes = range(1, column_count + 1)
    mins = ", ".join(f"min({low}[{i}])" for i in indexes)
    maxs = ", ".join(f"max({high}[{i}])" for i in indexes)
    return f"ARRAY[{mins}]::float8[]", f"ARRAY[{maxs}]::float8[]"


def bucket_query(column_count: int, lower_operator: str) -> str:
    """
    Return the query that reduces a time range of a run from its summary.

    The whole summary buckets from ``first`` to ``last`` are read from
    sample_summary. The partial buckets at either end are read from samples:
    from ``start`` to the first whole bucket's start (``first_start``), and
    from the last whole bucket's end (``last_end``) to ``end``. The result
    therefore covers the range exactly. Every ``group`` summary buckets make
    one output bucket. Times are Unix seconds, and an infinity marks an open
    end.

    :param lower_operator: ``>=`` for an inclusive range start, ``>`` for an
        exclusive one.
    """
    mins, maxs = aggregate_lists(column_count, "mins", "maxs")
    return f"""
        SELECT g, date_part('epoch', min(t_first)), date_part('epoch', max(t_last)),
               sum(n), {mins}, {maxs}
        FROM (
            SELECT floor(bucket::float8 / %(group)s) AS g, t_first, t_last, n,
                   mins, maxs
            FROM sample_summary
            WHERE run_id = %(run)s AND width = %(width)s
              AND bucket >= %(first)s AND bucket <= %(last)s
            UNION ALL
            SELECT floor(floor(date_part('epoch', t) / %(width)s) / %(group)s),
                   t, t, 1, vals, vals
            FROM samples
            WHERE run_id = %(run)s
              AND ((t {lower_operator} to_timestamp(%(start)s)
                    AND t < to_timestamp(%(first_start)s))
                OR (t >= to_timestamp(%(last_end)s)
                    AND t <= to_timestamp(%(end)s)))
        ) AS parts
        GROUP BY g ORDER BY g
    """


# Runs with fewer samples are reduced from their samples fast enough, so
# `SummaryWarmer` leaves their summaries to be built when first needed.
WARM_MIN_SAMPLES = 50_000

_STALE_RUNS = """
SELECT r.id FROM runs AS r
LEFT JOIN sample_summary_state AS s ON s.run_id = r.id
WHERE r.name IS NOT NULL AND r.samples >= %s
  AND (s.samples IS NULL OR s.samples <> r.samples)
ORDER BY r.last_seen DESC NULLS LAST
LIMIT %s
"""


class SummaryWarmer:
    """
    Refreshes the summaries of large runs in the background while the page
    is open, so that opening a run of millions of samples does not wait for
    its summary to be built.

    The web app calls `poke` whenever a page polls the tree. At most every
    ``interval`` seconds, and never while the previous refresh is running, it
    refreshes up to ``batch`` large runs whose summary is behind, most
    recently active first.
    """

    log = Logger()

    def __init__(self, pool: Any, clock: Callable[[], float], interval: float = 30.0,
                 batch: int = 5) -> None:
        self._pool = pool
        self._clock = clock
        self._interval = interval
        self._batch = batch
        self._last: Optional[float] = None
        self.running: Optional[Deferred[None]] = None

    def poke(self) -> None:
        """
        Start a refresh in the background if one is due.
        """
        now = self._clock()
        if self.running is not None or (
            self._last is not None and now - self._last < self._interval
        ):
            return
        self._last = now
        self.running = self._refresh_stale()
        self.running.addBoth(self._finished)

    def _finished(self, result: Any) -> None:
        self.running = None

    @inlineCallbacks
    def _refresh_stale(self) -> Any:
        try:
            arguments = (WARM_MIN_SAMPLES, self._batch)
            rows = yield self._pool.runQuery(_STALE_RUNS, arguments)
            for (run_id,) in rows:
                yield refresh(self._pool, uuid.UUID(str(run_id)))
        except Exception:
            self.log.failure("Refreshing the summaries of large runs failed")
