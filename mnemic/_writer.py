"""
The batch writer: queues decoded messages and stores them with txpostgres.

Rows wait in memory until a batch is full or a short interval has passed, then
one statement stores the whole batch. While PostgreSQL is unreachable the
writer keeps up to ``buffer_rows`` rows and reconnects with backoff; past that
bound new rows are dropped and counted.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from typing import Any, Callable, Optional

import psycopg2
import psycopg2.errors
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._metrics import Metrics
from ._protocol import Announcement, Sample

# Stores a batch and adds its rows to their runs' counters. {on_conflict} is
# empty in the usual statement: skipping rows already stored costs
# PostgreSQL about a fifth more per row, so that form runs only after the
# usual one failed on a repeated sequence number.
_INSERT_TEMPLATE = """
WITH ins AS (
    INSERT INTO samples (run_id, seq, t, vals)
    SELECT r::uuid, s, to_timestamp(t), v::float8[]
    FROM unnest(%s::text[], %s::bigint[], %s::float8[], %s::text[]) AS u(r, s, t, v)
    {on_conflict}
    RETURNING run_id, seq, t
), per_run AS (
    SELECT run_id, count(*) AS n, coalesce(max(seq), -1) AS max_seq,
           min(t) AS first_t, max(t) AS last_t
    FROM ins GROUP BY run_id
)
INSERT INTO runs AS r (id, samples, max_seq, first_sample, last_seen)
SELECT run_id, n, max_seq, first_t, last_t FROM per_run
ON CONFLICT (id) DO UPDATE SET
    samples = r.samples + EXCLUDED.samples,
    max_seq = greatest(r.max_seq, EXCLUDED.max_seq),
    first_sample = least(r.first_sample, EXCLUDED.first_sample),
    last_seen = greatest(r.last_seen, EXCLUDED.last_seen)
"""
_INSERT_SAMPLES = _INSERT_TEMPLATE.format(on_conflict="")
_INSERT_NEW_SAMPLES = _INSERT_TEMPLATE.format(on_conflict="ON CONFLICT DO NOTHING")

# A run row may already exist, created by samples that came first: the
# announcement fills in its name, but never renames an announced run.
_UPSERT_RUN = """
INSERT INTO runs AS r (id, name, columns, started, host, pid, protocol)
VALUES (%s, %s, %s, to_timestamp(%s), %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, columns = EXCLUDED.columns, started = EXCLUDED.started,
    host = EXCLUDED.host, pid = EXCLUDED.pid, protocol = EXCLUDED.protocol
WHERE r.name IS NULL
"""

# Errors that mean the statement itself is wrong, not the connection. Retrying
# the same batch would fail forever, so it is dropped and counted instead.
_DATA_ERRORS = (
    psycopg2.DataError,
    psycopg2.IntegrityError,
    psycopg2.ProgrammingError,
    UnicodeEncodeError,
)


# Encodes a whole batch in one C call. JSON's numbers and its null are also
# valid elements of PostgreSQL array literals, where NULL is case-insensitive.
_encode_json = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode

# Text of run ids, because str(UUID) costs more than the rest of a row's
# encoding, and a batch contains few distinct runs.
_run_id_texts: dict[uuid.UUID, str] = {}


def _run_id_text(run_id: uuid.UUID) -> str:
    text = _run_id_texts.get(run_id)
    if text is None:
        if len(_run_id_texts) >= 10_000:
            _run_id_texts.clear()
        text = _run_id_texts[run_id] = str(run_id)
    return text


def _batch_arguments(batch: list[Sample]) -> tuple[str, str, str, str]:
    """
    Encode a batch as four array literals, one per column of the insert.

    One text parameter per column is much cheaper for psycopg2 to quote, and
    for PostgreSQL to parse, than a list that psycopg2 turns into an
    ARRAY[...] expression of thousands of elements. Every element is a UUID,
    a number, null or a nested array of those, so none needs escaping.
    """
    run_ids = ",".join([_run_id_text(s.run_id) for s in batch])
    seqs = _encode_json([s.seq for s in batch])
    times = _encode_json([s.t for s in batch])
    # "[[1.5,null],[2,3]]" becomes {"{1.5,null}","{2,3}"}: a text[] whose
    # elements are float8[] literals, cast row by row in the insert.
    values = _encode_json([s.values for s in batch])[1:-1]
    values = values.replace("[", '"{').replace("]", '}"')
    return ("{" + run_ids + "}", "{" + seqs[1:-1] + "}", "{" + times[1:-1] + "}",
            "{" + values + "}")


class Writer:
    """
    Batches samples and announcements and writes them to PostgreSQL.

    :param connect: returns a Deferred firing with a connected
        ``txpostgres.Connection`` whose schema exists.
    :param batch_rows: the most sample rows written by one statement.
    :param flush_interval: seconds a row may wait for a batch to fill.
    :param buffer_rows: the most rows held while the database is slow or
        unreachable; rows beyond it are dropped and counted.
    """

    log = Logger()

    def __init__(
        self,
        connect: Callable[[], Deferred[Any]],
        metrics: Metrics,
        clock: IReactorTime,
        batch_rows: int = 20000,
        flush_interval: float = 0.2,
        buffer_rows: int = 1_000_000,
    ) -> None:
        self._connect = connect
        self._metrics = metrics
        self._clock = clock
        self._batch_rows = batch_rows
        self._flush_interval = flush_interval
        self._buffer_rows = buffer_rows
        self._announcements: dict[uuid.UUID, Announcement] = {}
        self._samples: deque[Sample] = deque()
        self._connection: Any = None
        self._connecting = False
        self._flushing: Optional[Deferred[None]] = None
        self._timer: Optional[IDelayedCall] = None
        self._retry: Optional[IDelayedCall] = None
        self._backoff = 0.0
        # Writes that failed as a lost connection since the last success.
        self._failed_writes = 0
        self._drop_logged = 0
        self._connection_waiters: list[Deferred[None]] = []
        self._abandoned = False
        metrics.add_gauge("mnemic_queue_rows", "Sample rows waiting to be written.",
                          lambda: float(len(self._samples)))
        metrics.add_gauge("mnemic_db_connected",
                          "1 while the writer is connected to PostgreSQL, else 0.",
                          lambda: float(self._connection is not None))

    @property
    def queued(self) -> int:
        """
        The number of sample rows not yet written.
        """
        return len(self._samples)

    def add_announcement(self, announcement: Announcement) -> None:
        """
        Queue a run announcement; it is written before the next batch.
        """
        self._announcements[announcement.run_id] = announcement
        self._schedule()

    def add_sample(self, sample: Sample) -> None:
        """
        Queue one sample row, or drop and count it if the buffer is full.
        """
        if len(self._samples) >= self._buffer_rows:
            self._metrics.rows_dropped += 1
            if self._metrics.rows_dropped >= 2 * self._drop_logged:
                self._drop_logged = self._metrics.rows_dropped
                self.log.warn(
                    "Buffer full at {limit} rows: dropped {dropped} rows so far",
                    limit=self._buffer_rows, dropped=self._metrics.rows_dropped,
                )
            return
        self._samples.append(sample)
        if self._flushing is not None:
            # The running flush schedules the next one when it ends.
            return
        if len(self._samples) >= self._batch_rows:
            self._flush_soon(0)
        else:
            self._schedule()

    def wait_connected(self) -> Deferred[None]:
        """
        Return a Deferred that fires once a connection is open and the schema
        exists.
        """
        if self._connection is not None:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._connection_waiters.append(waiter)
        return waiter

    def start(self) -> None:
        """
        Connect to the database, retrying with backoff until it succeeds.
        """
        self._ensure_connection()

    @inlineCallbacks
    def stop(self, timeout: float = 30.0) -> Any:
        """
        Write everything queued, then close the connection.

        Gives up after ``timeout`` seconds and logs how many rows were lost.
        """
        deadline = self._clock.seconds() + timeout
        while self._samples or self._announcements:
            if self._clock.seconds() >= deadline or self._abandoned:
                break
            if self._connection is None:
                self._ensure_connection()
                yield _sleep(self._clock, 0.1)
                continue
            yield self._flush()
        if self._flushing is not None:
            yield self._flushing
        left = len(self._samples)
        if left:
            self._metrics.rows_dropped += left
            if self._abandoned:
                self.log.error("Shutdown interrupted: {rows} rows not written",
                               rows=left)
            else:
                self.log.error(
                    "Shutdown timed out after {timeout} s: {rows} rows not written",
                    timeout=timeout, rows=left,
                )
        for call in (self._timer, self._retry):
            if call is not None and call.active():
                call.cancel()
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def abandon(self) -> None:
        """
        Make a running `stop` give up writing as soon as it can.
        """
        self._abandoned = True

    def _schedule(self) -> None:
        if self._timer is None or not self._timer.active():
            self._flush_soon(self._flush_interval)

    def _flush_soon(self, delay: float) -> None:
        due = self._clock.seconds() + delay
        if self._timer is not None and self._timer.active():
            if self._timer.getTime() <= due:
                return
            self._timer.cancel()
        self._timer = self._clock.callLater(delay, self._flush)

    def _flush(self) -> Deferred[None]:
        if self._flushing is not None:
            return self._flushing
        if self._connection is None or not (self._samples or self._announcements):
            return succeed(None)
        self._flushing = self._write_batch()
        self._flushing.addBoth(self._flush_done)
        return self._flushing

    def _flush_done(self, result: object) -> None:
        self._flushing = None
        if self._samples and self._connection is not None:
            full = len(self._samples) >= self._batch_rows
            self._flush_soon(0 if full else self._flush_interval)

    @inlineCallbacks
    def _write_batch(self) -> Any:
        announcements = list(self._announcements.values())
        count = min(len(self._samples), self._batch_rows)
        batch = [self._samples[i] for i in range(count)]
        started = self._clock.seconds()
        try:
            try:
                yield self._connection.runInteraction(
                    self._store, announcements, batch, _INSERT_SAMPLES)
            except psycopg2.errors.UniqueViolation:
                # A datagram arrived twice, which is rare: write the batch
                # again with the slower statement that skips stored rows.
                yield self._connection.runInteraction(
                    self._store, announcements, batch, _INSERT_NEW_SAMPLES)
        except _DATA_ERRORS:
            self.log.failure("Batch of {rows} rows rejected by PostgreSQL; dropped",
                             rows=count)
            self._metrics.rows_dropped += count
            self._forget(announcements, count)
        except Exception as error:
            self._lost_connection(error)
        else:
            self._metrics.record_flush(count, self._clock.seconds() - started)
            self._forget(announcements, count)
            self._failed_writes = 0
            self._backoff = 0.0

    def _forget(self, announcements: list[Announcement], count: int) -> None:
        for announcement in announcements:
            if self._announcements.get(announcement.run_id) is announcement:
                del self._announcements[announcement.run_id]
        for _ in range(count):
            self._samples.popleft()

    @staticmethod
    @inlineCallbacks
    def _store(cursor: Any, announcements: list[Announcement],
               batch: list[Sample], insert: str) -> Any:
        for a in announcements:
            yield cursor.execute(_UPSERT_RUN, (
                str(a.run_id), a.name, list(a.columns), a.started, a.host, a.pid,
                a.protocol,
            ))
        if batch:
            yield cursor.execute(insert, _batch_arguments(batch))

    def _lost_connection(self, error: Exception) -> None:
        self.log.error("Write to PostgreSQL failed: {error}; {rows} rows kept",
                       error=_one_line(str(error)), rows=len(self._samples))
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:
                pass
            self._connection = None
        self._metrics.db_reconnects += 1
        self._failed_writes += 1
        if self._failed_writes == 1:
            # Usually the server restarted or closed the connection.
            self._ensure_connection()
            return
        # Writes fail on fresh connections too: wait, or the writer would
        # reconnect and fail in a tight loop.
        self._backoff = min(max(self._backoff * 2, 0.25), 10.0)
        self._retry = self._clock.callLater(self._backoff, self._ensure_connection)

    def _ensure_connection(self) -> None:
        if self._connection is not None or self._connecting:
            return
        if self._retry is not None and self._retry.active():
            return
        self._connecting = True
        d = self._connect()
        d.addCallbacks(self._connected, self._connect_failed)

    def _connected(self, connection: Any) -> None:
        self._connecting = False
        self._connection = connection
        if self._backoff:
            self.log.info("Reconnected to PostgreSQL; {rows} rows queued",
                          rows=len(self._samples))
        if not self._failed_writes:
            self._backoff = 0.0
        if self._samples or self._announcements:
            self._flush_soon(0)
        waiters, self._connection_waiters = self._connection_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _connect_failed(self, failure: Failure) -> None:
        self._connecting = False
        self._backoff = min(max(self._backoff * 2, 0.25), 10.0)
        self.log.warn(
            "Cannot connect to PostgreSQL ({error}); retrying in {delay} s,"
            " {rows} rows queued",
            error=_one_line(failure.getErrorMessage()), delay=self._backoff,
            rows=len(self._samples),
        )
        self._retry = self._clock.callLater(self._backoff, self._ensure_connection)


def _sleep(clock: IReactorTime, seconds: float) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    clock.callLater(seconds, d.callback, None)
    return d


def _one_line(message: str) -> str:
    # libpq's messages span several lines, which would split one log event.
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())
