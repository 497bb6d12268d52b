"""
Hostile datagrams sent over loopback UDP to a running service: each invalid
one is counted by reason and logged with rate limiting, and every valid
datagram sent between them is stored.

docs/reliability.md summarises these cases in a table.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Optional, cast

import treq
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from mnemic._ingest import LOG_LIMIT_PER_INTERVAL
from mnemic._protocol import InvalidDatagram, decode_datagram
from mnemic._service import MnemicService, Settings

from ._postgres import new_name, query, test_dsn
from ._sending import Sender, announcement, new_run_id, sample
from .test_service import wait_for

# Marks text that must never reach the log: the service logs sizes, peers and
# reasons, never payloads.
SECRET_TEXT = "payload-text-never-logged"

# Control characters, a right-to-left override and a right-to-left mark are
# valid in names: they are stored as sent and shown as text.
CONTROL_NAME = f"tab\tline\nesc\x1b[31mred\x7f\u202eevil\u200f-{SECRET_TEXT}"


def encode(message: Any) -> bytes:
    """
    Encode ``message`` as JSON text in UTF-8.
    """
    return json.dumps(message).encode("utf-8")


def v1_sample(**changes: Any) -> dict[str, Any]:
    """
    Return a valid version 1 sample of a made-up run with ``changes`` applied;
    a change to None removes the field.
    """
    message: dict[str, Any] = {"v": 1, "type": "sample", "run": new_run_id(),
                               "seq": 0, "t": 1796396417.0, "values": [1.0]}
    for field, value in changes.items():
        if value is None:
            del message[field]
        else:
            message[field] = value
    return message


def v1_run(**changes: Any) -> dict[str, Any]:
    """
    Return a valid version 1 announcement of a made-up run with ``changes``.
    """
    message: dict[str, Any] = {"v": 1, "type": "run", "run": new_run_id(),
                               "name": "hostile", "columns": ["a"],
                               "started": 1796396400.0}
    message.update(changes)
    return message


def literal(message: dict[str, Any], text: bytes) -> bytes:
    """
    Encode ``message`` with its ``values`` replaced by the raw JSON ``text``,
    for spellings that json.dumps does not write.
    """
    return encode(message).replace(b'"values": [1.0]', b'"values": ' + text)


def compact(message: Any) -> bytes:
    """
    Encode ``message`` as JSON without spaces.
    """
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


def short_name(index: int) -> str:
    """
    Return a unique three-character name for ``index`` (below 36**3).
    """
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "".join(digits[index // 36**power % 36] for power in (2, 1, 0))


def largest_udp_datagram() -> bytes:
    """
    Return an announcement of 65,507 bytes, the largest UDP payload over IPv4.
    """
    datagram = encode(v1_run(name=""))
    return encode(v1_run(name="n" * (MAX_UDP_PAYLOAD - len(datagram))))


# The largest payload of one UDP datagram over IPv4: 65,535 bytes less the IP
# and UDP headers.
MAX_UDP_PAYLOAD = 65_507

# Each hostile datagram and the reason it is counted under.
INVALID: list[tuple[str, bytes, str]] = [
    ("not UTF-8", b"\xff\xfe\xfd", "not_utf8"),
    ("cut UTF-8 sequence", b'{"v": 1, "name": "\xe2\x82"}', "not_utf8"),
    ("not JSON", f"hello {SECRET_TEXT}".encode(), "not_json"),
    ("empty", b"", "not_json"),
    ("JSON array", b"[1, 2, 3]", "not_object"),
    ("JSON number", b"42", "not_object"),
    ("JSON string", b'"sample"', "not_object"),
    ("missing field", encode(v1_sample(t=None)), "missing_field"),
    ("missing columns", encode({k: v for k, v in v1_run().items()
                                if k != "columns"}), "missing_field"),
    ("extra field", encode(v1_sample(extra=SECRET_TEXT)), "extra_field"),
    ("values not a list", encode(v1_sample(values={"a": 1})), "wrong_type"),
    ("name a number", encode(v1_run(name=7)), "wrong_type"),
    ("seq a string", encode(v1_sample(seq="3")), "wrong_type"),
    ("t a string", encode(v1_sample(t="1796396417")), "wrong_type"),
    ("version 2", encode(v1_sample(v=2)), "bad_version"),
    ("version as text", encode(v1_sample(v="1")), "bad_version"),
    ("unknown type", encode(v1_sample(type="metric")), "bad_type"),
    ("run id not a UUID", encode(v1_sample(run="'; DROP TABLE runs; --")),
     "bad_run_id"),
    ("run id without hyphens",
     encode(v1_sample(run="6f1c0a528c1e4d419d550a8d2f3b2e10")), "bad_run_id"),
    ("NaN", literal(v1_sample(), b"[NaN]"), "bad_value"),
    ("Infinity", literal(v1_sample(), b"[Infinity]"), "bad_value"),
    ("-Infinity", literal(v1_sample(), b"[-Infinity]"), "bad_value"),
    ("1e308", literal(v1_sample(), b"[1e308]"), "bad_value"),
    ("1e400", literal(v1_sample(), b"[1e400]"), "bad_value"),
    ("string for a number", encode(v1_sample(values=["1.5"])), "bad_value"),
    ("bool for a number", encode(v1_sample(values=[True])), "bad_value"),
    ("nested values", literal(v1_sample(), b"[" * 3000 + b"]" * 3000), "not_json"),
    ("10,000 columns",
     compact(v1_run(columns=[short_name(i) for i in range(10_000)])), "oversize"),
    ("10,000 values", encode(v1_sample(values=[0] * 10_000)), "oversize"),
    ("64 KiB datagram", largest_udp_datagram(), "oversize"),
    ("NUL in name", encode(v1_run(name="a\x00b")), "bad_name"),
    ("NUL in column", encode(v1_run(columns=["a", "\x00"])), "bad_name"),
    ("lone surrogate in name", encode(v1_run(name="\ud800")), "bad_name"),
    ("201-character name", encode(v1_run(name="n" * 201)), "bad_name"),
    ("empty column name", encode(v1_run(columns=[""])), "bad_name"),
    ("duplicate columns", encode(v1_run(columns=["a", "a"])), "bad_columns"),
    ("negative seq", encode(v1_sample(seq=-1)), "bad_seq"),
    ("seq beyond bigint", encode(v1_sample(seq=2**63)), "bad_seq"),
    ("milliseconds for seconds", encode(v1_sample(t=1796396417000)),
     "bad_timestamp"),
]


class HostileInputTests(TestCase):
    """
    A running service with a real database receives hostile datagrams
    between valid ones.
    """

    timeout = 120

    def setUp(self) -> Any:
        """
        Start the service and record every log event.
        """
        self.events: list[LogEvent] = []
        observer = cast(ILogObserver, self.events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        self.service = MnemicService(
            Settings(udp_port=0, http_port=0, dsn=test_dsn(), flush_interval=0.05),
            reactor,
        )
        self.service.startService()
        self.addCleanup(lambda: self.service.running and self.service.stopService())
        assert self.service.udp_port is not None and self.service.writer is not None
        self.sender = Sender(self.service.udp_port.getHost().port)
        self.addCleanup(self.sender.close)
        return self.service.writer.wait_connected()

    def stored_seqs(self, run_id: str) -> list[int]:
        """
        Return the sequence numbers stored for ``run_id``, in order.
        """
        rows = query("SELECT seq FROM samples WHERE run_id = %s ORDER BY seq",
                     (run_id,))
        return [row[0] for row in rows]

    @inlineCallbacks
    def wait_stored(self, run_id: str, count: int) -> Any:
        """
        Wait until ``count`` samples of ``run_id`` are stored.
        """
        yield wait_for(lambda: len(self.stored_seqs(run_id)) >= count, timeout=30)

    def messages(self) -> list[str]:
        """
        Return the text of every log event recorded so far.
        """
        return [formatEvent(event) for event in self.events]

    @inlineCallbacks
    def test_invalid_counted_valid_stored(self) -> Any:
        """
        Each invalid datagram is counted under its reason, the valid sample
        sent after each one is stored, and at most the log limit of
        rejections is logged, followed by a count of the rest on stop.
        """
        witness = new_run_id()
        self.sender.send(announcement(witness, new_name("witness"), ["x"]))
        for seq, (_, datagram, _) in enumerate(INVALID):
            self.sender.send(datagram, sample(witness, seq, [float(seq)]))
        yield self.wait_stored(witness, len(INVALID))
        yield wait_for(lambda: self.service.metrics.datagrams_received
                       >= 2 * len(INVALID) + 1)

        expected = Counter(reason for _, _, reason in INVALID)
        self.assertEqual(dict(self.service.metrics.invalid), dict(expected))
        self.assertEqual(self.stored_seqs(witness), list(range(len(INVALID))))
        rejections = [m for m in self.messages() if m.startswith("Rejected a")]
        self.assertEqual(len(rejections), LOG_LIMIT_PER_INTERVAL)

        yield self.service.stopService()

        suppressed = len(INVALID) - LOG_LIMIT_PER_INTERVAL
        self.assertIn(f"{suppressed} more rejected datagrams were not logged",
                      self.messages())
        for message in self.messages():
            self.assertNotIn(SECRET_TEXT, message)

    @inlineCallbacks
    def test_invalid_counts_in_metrics_page(self) -> Any:
        """
        /metrics shows each reason with its count.
        """
        for _, datagram, _ in INVALID:
            self.sender.send(datagram)
        yield wait_for(lambda: self.service.metrics.datagrams_received
                       >= len(INVALID))

        assert self.service.http_port is not None
        url = f"http://127.0.0.1:{self.service.http_port.getHost().port}/metrics"
        response = yield treq.get(url, persistent=False)
        body = yield response.text()

        for reason, count in Counter(reason for _, _, reason in INVALID).items():
            self.assertIn(
                f'mnemic_datagrams_invalid_total{{reason="{reason}"}} {count}\n', body
            )

    @inlineCallbacks
    def test_sequence_number_disorder(self) -> Any:
        """
        Repeated sequence numbers are stored once and out-of-order ones are
        all stored; lost counts only the numbers never received.
        """
        run_id = new_run_id()
        self.sender.send(announcement(run_id, new_name("order"), ["x"]))
        order = [5, 0, 3, 3, 1, 9, 0, 2, 5, 7]
        for seq in order:
            self.sender.send(sample(run_id, seq, [float(seq)]))
        yield self.wait_stored(run_id, len(set(order)))
        yield deferLater(reactor, 0.3, lambda: None)

        self.assertEqual(self.stored_seqs(run_id), sorted(set(order)))
        [(samples, max_seq)] = query(
            "SELECT samples, max_seq FROM runs WHERE id = %s", (run_id,))
        self.assertEqual(samples, len(set(order)))
        self.assertEqual(max_seq, 9)
        self.assertEqual(self.service.metrics.invalid, Counter())

    @inlineCallbacks
    def test_unannounced_run_linked_later(self) -> Any:
        """
        Samples of a run never announced are stored, and linked to its name
        and columns when the announcement arrives later.
        """
        run_id = new_run_id()
        name = new_name("late")
        self.sender.send(*(sample(run_id, seq, [1.0, 2.0]) for seq in range(3)))
        yield self.wait_stored(run_id, 3)
        self.assertEqual(query("SELECT name FROM runs WHERE id = %s", (run_id,)),
                         [(None,)])

        self.sender.send(announcement(run_id, name, ["a", "b"]),
                         sample(run_id, 3, [1.0, 2.0]))
        yield self.wait_stored(run_id, 4)
        yield wait_for(lambda: query("SELECT name FROM runs WHERE id = %s",
                                     (run_id,)) == [(name,)])

        [(columns, samples)] = query(
            "SELECT columns, samples FROM runs WHERE id = %s", (run_id,))
        self.assertEqual(columns, ["a", "b"])
        self.assertEqual(samples, 4)

    @inlineCallbacks
    def test_control_characters_stored_verbatim(self) -> Any:
        """
        Control characters and right-to-left marks in names are valid: the
        tracer and column names are stored exactly as sent, and never logged.
        """
        run_id = new_run_id()
        columns = ["\u202ecol", "bell\x07", "\u200fmark"]
        self.sender.send(announcement(run_id, CONTROL_NAME, columns),
                         sample(run_id, 0, [1.0, None, -1e300]))
        yield self.wait_stored(run_id, 1)
        yield wait_for(lambda: query("SELECT name FROM runs WHERE id = %s",
                                     (run_id,)) == [(CONTROL_NAME,)])

        [(stored_columns,)] = query("SELECT columns FROM runs WHERE id = %s",
                                    (run_id,))
        [(values,)] = query("SELECT vals FROM samples WHERE run_id = %s", (run_id,))
        self.assertEqual(stored_columns, columns)
        self.assertEqual(values, [1.0, None, -1e300])
        for message in self.messages():
            self.assertNotIn(SECRET_TEXT, message)

    @inlineCallbacks
    def test_contradictions_rejected(self) -> Any:
        """
        A sample with the wrong number of values, and a second announcement
        of a run with other columns, are rejected and counted. The run's
        valid samples are stored.
        """
        run_id = new_run_id()
        name = new_name("contradict")
        self.sender.send(announcement(run_id, name, ["a", "b"]),
                         sample(run_id, 0, [1.0]),
                         sample(run_id, 1, [1.0, 2.0]),
                         announcement(run_id, name, ["a", "b", "c"]),
                         sample(run_id, 2, [1.0, 2.0]))
        yield self.wait_stored(run_id, 2)

        self.assertEqual(self.stored_seqs(run_id), [1, 2])
        self.assertEqual(dict(self.service.metrics.rejected),
                         {"column_count": 1, "run_conflict": 1})


class LargeNameTests(SynchronousTestCase):
    """
    Names too large for any UDP datagram.
    """

    def test_megabyte_name_rejected_as_oversize(self) -> None:
        """
        A 1 MB tracer name cannot travel in one UDP datagram (at most 65,507
        bytes over IPv4). A datagram carrying it is rejected by its size
        before it is decoded.
        """
        datagram = encode(v1_run(name="n" * 1_000_000))

        reason: Optional[str] = None
        try:
            decode_datagram(datagram)
        except InvalidDatagram as error:
            reason = error.reason

        self.assertEqual(reason, "oversize")
