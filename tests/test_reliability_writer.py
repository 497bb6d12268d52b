"""
Tests for mnemic._writer under database faults: a fake connection that fails
on demand, and a fake clock for the backoff and the shutdown time limit.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Optional

import psycopg2
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock, deferLater
from twisted.logger import ILogObserver, LogEvent, LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from mnemic._metrics import Metrics
from mnemic._protocol import Announcement, Sample
from mnemic._writer import Writer

RUN = uuid.UUID("6f1c0a52-8c1e-4d41-9d55-0a8d2f3b2e10")

# The writer's backoff: doubling from 0.25 s up to 10 s.
BACKOFF = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def sample(seq: int) -> Sample:
    """
    Return a sample of the test run.
    """
    return Sample(RUN, seq, 1796396400.0 + seq, (float(seq),))


class FakeDatabase:
    """
    A database that is up or down, and the connections the writer opens to it.

    While up, every interaction succeeds and its batch is recorded; while
    down, connecting fails and every interaction on an open connection fails
    as a lost connection does. Connecting takes one turn of ``clock``, as a
    real connection does, so a writer that retries for ever cannot spin
    without the clock moving.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.up = True
        self.connects = 0
        self.stored: list[Sample] = []
        self.announced: list[Announcement] = []
        self.error: Optional[Exception] = None

    def connect(self) -> Deferred[Any]:
        """
        Open a connection, or fail as a refused connection does.
        """
        self.connects += 1
        return deferLater(self.clock, 0, self._connection)

    def _connection(self) -> FakeConnection:
        if not self.up:
            raise psycopg2.OperationalError("connection refused")
        return FakeConnection(self)


class FakeConnection:
    """
    One connection to a `FakeDatabase`.
    """

    def __init__(self, database: FakeDatabase) -> None:
        self._database = database
        self.closed = False

    def runInteraction(
        self, interaction: Callable[..., Any], announcements: list[Announcement],
        batch: list[Sample], *statement: str,
    ) -> Deferred[None]:
        """
        Store the batch, or fail if the database is down or set to fail.
        """
        database = self._database
        if not database.up or self.closed:
            return fail(psycopg2.OperationalError("server closed the connection"))
        if database.error is not None:
            return fail(database.error)
        database.announced.extend(announcements)
        database.stored.extend(batch)
        return succeed(None)

    def close(self) -> None:
        """
        Close the connection.
        """
        self.closed = True


class WriterFaultTests(SynchronousTestCase):
    """
    The writer keeps rows through outages and counts every row it drops.
    """

    def setUp(self) -> None:
        """
        Start a writer on a fake database that is up, and record its log.
        """
        self.clock = Clock()
        self.database = FakeDatabase(self.clock)
        self.metrics = Metrics()
        self.events: list[LogEvent] = []
        observer: ILogObserver = self.events.append  # type: ignore[assignment]
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        self.writer = self.make_writer()

    def make_writer(self, **settings: Any) -> Writer:
        """
        Return a started writer on the fake database with ``settings``.
        """
        settings.setdefault("batch_rows", 100)
        settings.setdefault("flush_interval", 0.2)
        writer = Writer(self.database.connect, self.metrics, self.clock, **settings)
        writer.start()
        self.clock.advance(0)
        return writer

    def logged(self, level: LogLevel) -> list[LogEvent]:
        """
        Return the writer's log events of ``level``.
        """
        return [e for e in self.events
                if e.get("log_namespace") == "mnemic._writer.Writer"
                and e["log_level"] == level]

    def start_outage(self) -> None:
        """
        Take the database down and make the writer notice at once, as it
        does when a write fails on the lost connection.
        """
        self.database.up = False
        self.writer._lost_connection(RuntimeError("test outage"))

    def add(self, seqs: range) -> None:
        """
        Queue one sample per sequence number.
        """
        for seq in seqs:
            self.writer.add_sample(sample(seq))

    def run_for(self, seconds: float, step: float = 0.05) -> None:
        """
        Advance the clock by ``seconds`` in steps, firing due calls.
        """
        self.clock.pump([step] * int(round(seconds / step)))

    def test_outage_keeps_rows(self) -> None:
        """
        Rows queued while the database is down are all written, in order,
        once it is back, and the lost connection is counted.
        """
        self.add(range(0, 50))
        self.run_for(1)
        self.database.up = False

        self.add(range(50, 400))
        self.run_for(20)
        self.assertEqual(len(self.database.stored), 50)
        self.assertEqual(self.writer.queued, 350)
        self.database.up = True
        self.run_for(11)

        self.assertEqual([s.seq for s in self.database.stored], list(range(400)))
        self.assertEqual(self.writer.queued, 0)
        self.assertEqual(self.metrics.rows_written, 400)
        self.assertEqual(self.metrics.rows_dropped, 0)
        self.assertEqual(self.metrics.db_reconnects, 1)
        self.assertEqual(len(self.logged(LogLevel.info)), 1)

    def test_reconnect_backoff_doubles_to_limit(self) -> None:
        """
        Failed connection attempts are retried after 0.25 s, doubling up to
        10 s, and each retry is logged as a warning with its delay.
        """
        self.add(range(10))
        self.run_for(1)
        self.database.up = False
        self.add(range(10, 20))
        self.run_for(0.5)

        self.run_for(60)

        delays = [e["delay"] for e in self.logged(LogLevel.warn)]
        self.assertEqual(delays[:len(BACKOFF)], BACKOFF)
        self.assertEqual(set(delays[len(BACKOFF):]), {10.0})
        self.assertEqual(self.writer.queued, 10)

    def test_backoff_resets_after_reconnect(self) -> None:
        """
        After a successful reconnection, the next outage starts again at the
        shortest delay.
        """
        for _ in range(2):
            self.add(range(1))
            self.run_for(1)
            self.database.up = False
            self.add(range(1, 2))
            self.run_for(10)
            self.database.up = True
            self.run_for(10)

        delays = [e["delay"] for e in self.logged(LogLevel.warn)]
        self.assertEqual(delays.count(0.25), 2)
        self.assertEqual(self.metrics.db_reconnects, 2)

    def test_buffer_bound_drops_and_counts(self) -> None:
        """
        Past ``buffer_rows`` queued rows, new rows are dropped and counted;
        the rows held are written when the database returns.
        """
        self.writer = self.make_writer(buffer_rows=100)
        self.start_outage()

        self.add(range(250))
        self.assertEqual(self.writer.queued, 100)
        self.assertEqual(self.metrics.rows_dropped, 150)
        self.database.up = True
        self.run_for(11)

        self.assertEqual([s.seq for s in self.database.stored], list(range(100)))
        self.assertEqual(self.metrics.rows_written, 100)
        self.assertEqual(self.metrics.rows_dropped, 150)

    def test_drops_logged_at_doubling_counts(self) -> None:
        """
        Drops are logged when the count reaches 1, 2, 4, 8 and so on, so a
        long overload logs a few lines, not one per row.
        """
        self.writer = self.make_writer(buffer_rows=10)
        self.start_outage()

        self.add(range(10 + 1000))

        dropped = [e["dropped"] for e in self.logged(LogLevel.warn)
                   if "Buffer full" in e["log_format"]]
        self.assertEqual(dropped, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512])
        self.assertEqual(self.metrics.rows_dropped, 1000)

    def test_announcements_kept_through_outage(self) -> None:
        """
        A run announced while the database is down is written when it
        returns, in the same transaction as the samples queued after it.
        """
        self.start_outage()
        announcement = Announcement(RUN, "worker", ("a",), 1796396400.0, None,
                                    None, 1)

        self.writer.add_announcement(announcement)
        self.add(range(5))
        self.run_for(5)
        self.database.up = True
        self.run_for(11)

        self.assertEqual(self.database.announced, [announcement])
        self.assertEqual(len(self.database.stored), 5)

    def test_rejected_batch_dropped_and_counted(self) -> None:
        """
        A batch that PostgreSQL rejects as invalid data is dropped and
        counted once, not retried for ever, and later batches are written.
        """
        self.database.error = psycopg2.DataError("invalid input")
        self.add(range(30))
        self.run_for(1)
        self.database.error = None
        self.add(range(30, 40))
        self.run_for(1)

        self.assertEqual([s.seq for s in self.database.stored], list(range(30, 40)))
        self.assertEqual(self.metrics.rows_dropped, 30)
        self.assertEqual(len(self.flushLoggedErrors(psycopg2.DataError)), 1)

    def test_failing_writes_back_off(self) -> None:
        """
        Writes that fail on every fresh connection, without a data error,
        are retried with the growing backoff instead of in a tight loop, and
        the rows are kept until a write succeeds.
        """
        self.add(range(10))
        self.database.error = psycopg2.InternalError("cannot write")

        self.run_for(60)
        failing_connects = self.database.connects
        self.database.error = None
        self.run_for(11)

        # Delays of 0.25, 0.5, 1, 2, 4, 8 and then 10 s fill a minute with
        # at most a dozen attempts.
        self.assertLessEqual(failing_connects, 13)
        self.assertEqual(len(self.database.stored), 10)
        self.assertEqual(self.metrics.rows_dropped, 0)

    def test_stop_writes_queued_rows(self) -> None:
        """
        stop() writes every queued row, more than one batch's worth, before
        its Deferred fires.
        """
        self.add(range(350))
        stopped = self.writer.stop(timeout=5)

        self.run_for(1)

        self.successResultOf(stopped)
        self.assertEqual(len(self.database.stored), 350)
        self.assertEqual(self.metrics.rows_dropped, 0)

    def test_stop_gives_up_after_timeout(self) -> None:
        """
        With the database down, stop() gives up after its timeout, counts the
        unwritten rows as dropped and logs their number as an error.
        """
        self.start_outage()
        self.add(range(70))

        stopped = self.writer.stop(timeout=5)
        self.run_for(4.5)
        self.assertNoResult(stopped)
        self.run_for(1)

        self.successResultOf(stopped)
        self.assertEqual(self.metrics.rows_dropped, 70)
        [error] = self.logged(LogLevel.error)[-1:]
        self.assertEqual(error["rows"], 70)
        self.assertEqual(error["timeout"], 5)

    def test_stop_writes_after_database_returns(self) -> None:
        """
        A database that returns before the shutdown timeout receives every
        queued row.
        """
        self.start_outage()
        self.add(range(70))

        stopped = self.writer.stop(timeout=30)
        self.run_for(3)
        self.database.up = True
        self.run_for(11)

        self.successResultOf(stopped)
        self.assertEqual(len(self.database.stored), 70)
        self.assertEqual(self.metrics.rows_dropped, 0)
