"""
Tests for mnemic._ingest: datagrams in, writer calls, metrics and log events out.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any, Optional, cast

from twisted.internet.task import Clock
from twisted.logger import (
    ILogObserver,
    LogEvent,
    LogLevel,
    formatEvent,
    globalLogPublisher,
)
from twisted.trial.unittest import SynchronousTestCase

from mnemic import _ingest
from mnemic._ingest import LOG_INTERVAL_SECONDS, LOG_LIMIT_PER_INTERVAL, IngestProtocol
from mnemic._metrics import Metrics
from mnemic._protocol import Announcement, Sample, decode_datagram
from mnemic._writer import Writer

PEER = ("127.0.0.1", 40000)

RUN_A = "6f1c0a52-8c1e-4d41-9d55-0a8d2f3b2e10"
RUN_B = "0b7e4f4e-2d55-4a8e-9a43-5b0c4a1f9e21"

# Datagrams the decoder rejects, with the reason each is counted under.
INVALID = [
    (b"\xff\xfe", "not_utf8"),
    (b"not json", "not_json"),
    (b"[1, 2]", "not_object"),
    (b'{"v": 2, "type": "sample"}', "bad_version"),
]


def announcement_datagram(
    run: str = RUN_A, name: str = "worker", columns: tuple[str, ...] = ("a", "b")
) -> bytes:
    """
    Return a version 1 run announcement.
    """
    return json.dumps(
        {
            "v": 1,
            "type": "run",
            "run": run,
            "name": name,
            "columns": list(columns),
            "started": 1796396400.0,
            "host": "build-7",
            "pid": 4711,
        }
    ).encode()


def sample_datagram(
    run: str = RUN_A, seq: int = 0, values: tuple[Optional[float], ...] = (1.5, None)
) -> bytes:
    """
    Return a version 1 sample.
    """
    return json.dumps(
        {
            "v": 1,
            "type": "sample",
            "run": run,
            "seq": seq,
            "t": 1796396401.0 + seq,
            "values": list(values),
        }
    ).encode()


class RecordingWriter:
    """
    A fake batch writer that records the announcements and samples it receives.
    """

    def __init__(self) -> None:
        self.announcements: list[Announcement] = []
        self.samples: list[Sample] = []

    def add_announcement(self, announcement: Announcement) -> None:
        """
        Record a run announcement.
        """
        self.announcements.append(announcement)

    def add_sample(self, sample: Sample) -> None:
        """
        Record a sample.
        """
        self.samples.append(sample)


class IngestTestCase(SynchronousTestCase):
    """
    A protocol wired to a recording writer, real metrics, a clock and a log
    observer.
    """

    def setUp(self) -> None:
        """
        Build the protocol and start recording its log events.
        """
        self.writer = RecordingWriter()
        self.metrics = Metrics()
        self.clock = Clock()
        self.clock.advance(1796396500)
        self.protocol = IngestProtocol(
            cast(Writer, self.writer), self.metrics, self.clock
        )
        self.events: list[LogEvent] = []
        observer = cast(ILogObserver, self._record)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def _record(self, event: LogEvent) -> None:
        if event.get("log_namespace", "").startswith("mnemic._ingest"):
            self.events.append(event)

    def receive(self, *datagrams: bytes) -> None:
        """
        Deliver each datagram to the protocol from the same peer.
        """
        for datagram in datagrams:
            self.protocol.datagramReceived(datagram, PEER)

    def warnings(self) -> list[LogEvent]:
        """
        Return the warning events logged so far.
        """
        return [e for e in self.events if e["log_level"] == LogLevel.warn]


class IngestValidTests(IngestTestCase):
    """
    Valid datagrams reach the writer.
    """

    def test_announcement_and_samples_written(self) -> None:
        """
        An announcement and its samples are passed to the writer in order.
        """
        self.receive(
            announcement_datagram(),
            sample_datagram(seq=0, values=(1.5, None)),
            sample_datagram(seq=1, values=(2.0, 3.0)),
        )

        self.assertEqual(len(self.writer.announcements), 1)
        self.assertEqual(self.writer.announcements[0].run_id, uuid.UUID(RUN_A))
        self.assertEqual(self.writer.announcements[0].name, "worker")
        self.assertEqual(self.writer.announcements[0].columns, ("a", "b"))
        self.assertEqual([s.seq for s in self.writer.samples], [0, 1])
        self.assertEqual(
            [s.values for s in self.writer.samples], [(1.5, None), (2.0, 3.0)]
        )
        self.assertEqual(self.metrics.invalid, Counter())
        self.assertEqual(self.metrics.rejected, Counter())
        self.assertEqual(self.warnings(), [])

    def test_samples_before_announcement_kept(self) -> None:
        """
        Samples of a run not yet announced are passed on, whatever their
        number of values, and the later announcement is written too.
        """
        self.receive(
            sample_datagram(seq=0, values=(1.0,)),
            sample_datagram(seq=1, values=(1.0, 2.0, 3.0)),
            announcement_datagram(),
        )

        self.assertEqual([s.seq for s in self.writer.samples], [0, 1])
        self.assertEqual(len(self.writer.announcements), 1)
        self.assertEqual(self.metrics.rejected, Counter())

    def test_reannouncement_written_once(self) -> None:
        """
        The periodic repeat of an announcement is not written again, and the
        samples between the repeats are.
        """
        self.receive(
            announcement_datagram(),
            sample_datagram(seq=0),
            announcement_datagram(),
            sample_datagram(seq=1),
            announcement_datagram(),
        )

        self.assertEqual(len(self.writer.announcements), 1)
        self.assertEqual([s.seq for s in self.writer.samples], [0, 1])
        self.assertEqual(self.metrics.rejected, Counter())

    def test_two_runs_written(self) -> None:
        """
        Runs with different ids are tracked apart, even with the same name.
        """
        self.receive(
            announcement_datagram(run=RUN_A, columns=("a", "b")),
            announcement_datagram(run=RUN_B, columns=("a",)),
            sample_datagram(run=RUN_A, values=(1.0, 2.0)),
            sample_datagram(run=RUN_B, values=(1.0,)),
        )

        self.assertEqual(
            [a.run_id for a in self.writer.announcements],
            [uuid.UUID(RUN_A), uuid.UUID(RUN_B)],
        )
        self.assertEqual(
            [s.run_id for s in self.writer.samples],
            [uuid.UUID(RUN_A), uuid.UUID(RUN_B)],
        )
        self.assertEqual(self.metrics.rejected, Counter())

    def test_legacy_row_stamped_with_clock(self) -> None:
        """
        An earlier-release row carries no time, so it gets the clock's time.
        """
        self.clock.advance(7.25)
        row = {"msg_type": "row", "uuid": RUN_A, "row_data": [1, 2]}

        self.receive(json.dumps(row).encode())

        self.assertEqual(len(self.writer.samples), 1)
        self.assertEqual(self.writer.samples[0].t, 1796396507.25)
        self.assertIsNone(self.writer.samples[0].seq)

    def test_forgotten_run_announced_again(self) -> None:
        """
        Beyond MAX_KNOWN_RUNS the oldest run is forgotten, so its next
        announcement is written again.
        """
        self.patch(_ingest, "MAX_KNOWN_RUNS", 2)
        runs = [str(uuid.UUID(int=i + 1)) for i in range(3)]

        self.receive(*[announcement_datagram(run=run) for run in runs])
        self.receive(announcement_datagram(run=runs[2]))
        self.receive(announcement_datagram(run=runs[0]))

        self.assertEqual(
            [str(a.run_id) for a in self.writer.announcements],
            [runs[0], runs[1], runs[2], runs[0]],
        )


class IngestInvalidTests(IngestTestCase):
    """
    Invalid and rejected datagrams are counted and logged, never written.
    """

    def test_invalid_counted_by_reason(self) -> None:
        """
        Each invalid datagram is counted under its reason and the valid
        datagrams around them all reach the writer.
        """
        self.receive(announcement_datagram())
        for seq, (datagram, _) in enumerate(INVALID):
            self.receive(datagram, sample_datagram(seq=seq))
        self.receive(b"not json")

        self.assertEqual(
            self.metrics.invalid,
            Counter({"not_utf8": 1, "not_json": 2, "not_object": 1, "bad_version": 1}),
        )
        self.assertEqual([s.seq for s in self.writer.samples], [0, 1, 2, 3])
        self.assertEqual(len(self.writer.announcements), 1)
        self.assertEqual(self.metrics.rejected, Counter())

    def test_invalid_logged_with_peer_and_reason(self) -> None:
        """
        A rejection is logged as a warning naming the peer, the reason and
        the size, but not the payload.
        """
        datagram = b'{"v": 1, "type": "run", "name": "SECRET-PAYLOAD"'

        self.receive(datagram)

        [event] = self.warnings()
        text = formatEvent(event)
        self.assertEqual(event["reason"], "not_json")
        self.assertEqual(event["size"], len(datagram))
        self.assertIn("127.0.0.1:40000", text)
        self.assertIn("not_json", text)
        self.assertNotIn("SECRET-PAYLOAD", text)

    def test_column_count_rejected(self) -> None:
        """
        A sample with more or fewer values than its run has columns is
        rejected as column_count and not written.
        """
        self.receive(
            announcement_datagram(columns=("a", "b")),
            sample_datagram(seq=0, values=(1.0,)),
            sample_datagram(seq=1, values=(1.0, 2.0)),
            sample_datagram(seq=2, values=(1.0, 2.0, 3.0)),
        )

        self.assertEqual(self.metrics.rejected, Counter({"column_count": 2}))
        self.assertEqual([s.seq for s in self.writer.samples], [1])
        self.assertEqual(self.metrics.invalid, Counter())
        self.assertEqual(
            [e["reason"] for e in self.warnings()], ["column_count", "column_count"]
        )

    def test_conflicting_announcement_rejected(self) -> None:
        """
        An announcement reusing a known run id with another name or other
        columns is rejected as run_conflict and not written.
        """
        conflicts = {
            "other name": announcement_datagram(name="other"),
            "renamed column": announcement_datagram(columns=("a", "c")),
            "reordered columns": announcement_datagram(columns=("b", "a")),
            "extra column": announcement_datagram(columns=("a", "b", "c")),
        }
        self.receive(announcement_datagram(name="worker", columns=("a", "b")))

        for datagram in conflicts.values():
            self.receive(datagram)

        self.assertEqual(
            self.metrics.rejected, Counter({"run_conflict": len(conflicts)})
        )
        self.assertEqual(len(self.writer.announcements), 1)
        self.assertEqual(self.writer.announcements[0].columns, ("a", "b"))

    def test_run_kept_after_conflict(self) -> None:
        """
        A rejected conflicting announcement leaves the first announcement in
        force for checking samples.
        """
        self.receive(
            announcement_datagram(columns=("a", "b")),
            announcement_datagram(columns=("a", "b", "c")),
            sample_datagram(seq=0, values=(1.0, 2.0, 3.0)),
            sample_datagram(seq=1, values=(1.0, 2.0)),
        )

        self.assertEqual(
            self.metrics.rejected, Counter({"run_conflict": 1, "column_count": 1})
        )
        self.assertEqual([s.seq for s in self.writer.samples], [1])

    def test_decoder_error_contained(self) -> None:
        """
        An unexpected exception from the decoder is counted as internal_error
        and logged as a failure, and the next datagram is still written.
        """

        decode = decode_datagram
        calls: list[bytes] = []

        def fail_once(datagram: bytes, now: float) -> Any:
            calls.append(datagram)
            if len(calls) == 1:
                raise RuntimeError("decoder bug")
            return decode(datagram, now)

        self.protocol = IngestProtocol(
            cast(Writer, self.writer), self.metrics, self.clock, decode=fail_once
        )

        self.receive(sample_datagram(seq=0), sample_datagram(seq=1))

        self.assertEqual(self.metrics.invalid, Counter({"internal_error": 1}))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual([s.seq for s in self.writer.samples], [1])

    def test_datagrams_received_counts_all(self) -> None:
        """
        datagrams_received counts valid, invalid and rejected datagrams alike.
        """
        self.receive(
            announcement_datagram(),
            sample_datagram(seq=0),
            b"not json",
            sample_datagram(seq=1, values=(1.0,)),
            announcement_datagram(name="other"),
            announcement_datagram(),
        )

        self.assertEqual(self.metrics.datagrams_received, 6)
        self.assertEqual(self.metrics.invalid, Counter({"not_json": 1}))
        self.assertEqual(
            self.metrics.rejected, Counter({"column_count": 1, "run_conflict": 1})
        )


class IngestLogLimitTests(IngestTestCase):
    """
    Rejections are logged at most LOG_LIMIT_PER_INTERVAL times per interval.
    """

    def test_burst_logged_up_to_limit(self) -> None:
        """
        A burst of rejections logs only the first LOG_LIMIT_PER_INTERVAL, and
        still counts every one of them.
        """
        self.receive(*[b"not json"] * (LOG_LIMIT_PER_INTERVAL + 5))

        self.assertEqual(len(self.warnings()), LOG_LIMIT_PER_INTERVAL)
        self.assertEqual(
            self.metrics.invalid, Counter({"not_json": LOG_LIMIT_PER_INTERVAL + 5})
        )

    def test_summary_after_interval(self) -> None:
        """
        When the interval ends, one warning gives the number of rejections
        that were not logged, even if no further datagram arrives.
        """
        self.receive(*[b"not json"] * (LOG_LIMIT_PER_INTERVAL + 5))
        self.clock.advance(LOG_INTERVAL_SECONDS - 0.5)
        self.assertEqual(len(self.warnings()), LOG_LIMIT_PER_INTERVAL)

        self.clock.advance(0.5)

        warnings = self.warnings()
        self.assertEqual(len(warnings), LOG_LIMIT_PER_INTERVAL + 1)
        self.assertEqual(warnings[-1]["count"], 5)
        self.assertIn("5", formatEvent(warnings[-1]))

    def test_logging_resumes_after_interval(self) -> None:
        """
        After the interval, rejections are logged again, up to the limit.
        """
        self.receive(*[b"not json"] * (LOG_LIMIT_PER_INTERVAL + 5))
        self.clock.advance(LOG_INTERVAL_SECONDS)
        before = len(self.warnings())

        self.receive(*[b"[1]"] * (LOG_LIMIT_PER_INTERVAL + 1))

        new = self.warnings()[before:]
        self.assertEqual(len(new), LOG_LIMIT_PER_INTERVAL)
        self.assertEqual({e["reason"] for e in new}, {"not_object"})

    def test_no_summary_below_limit(self) -> None:
        """
        No summary is logged when every rejection of the interval was logged.
        """
        self.receive(*[b"not json"] * LOG_LIMIT_PER_INTERVAL)

        self.clock.advance(LOG_INTERVAL_SECONDS * 3)

        self.assertEqual(len(self.warnings()), LOG_LIMIT_PER_INTERVAL)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_rejections_share_the_limit(self) -> None:
        """
        Invalid datagrams and rejected samples count against one limit.
        """
        self.receive(announcement_datagram(columns=("a", "b")))
        for _ in range(LOG_LIMIT_PER_INTERVAL):
            self.receive(b"not json", sample_datagram(values=(1.0,)))

        self.assertEqual(len(self.warnings()), LOG_LIMIT_PER_INTERVAL)
        self.assertEqual(
            self.metrics.rejected, Counter({"column_count": LOG_LIMIT_PER_INTERVAL})
        )

    def test_stop_logs_pending_summary(self) -> None:
        """
        Stopping the protocol logs the pending summary at once and leaves no
        delayed call behind.
        """
        self.protocol.doStart()
        self.receive(*[b"not json"] * (LOG_LIMIT_PER_INTERVAL + 2))

        self.protocol.doStop()

        warnings = self.warnings()
        self.assertEqual(len(warnings), LOG_LIMIT_PER_INTERVAL + 1)
        self.assertEqual(warnings[-1]["count"], 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])
