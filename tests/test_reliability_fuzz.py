"""
Fuzzing of the ingest path with hypothesis: generated and mutated datagrams
go through IngestProtocol, with and without signatures, and nothing escapes.
"""

from __future__ import annotations

from typing import cast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from mnemic._ingest import IngestProtocol
from mnemic._metrics import Metrics
from mnemic._protocol import MAX_ABS_VALUE, MAX_DATAGRAM_BYTES, InvalidDatagram
from mnemic._signing import SignedDecoder, sign
from mnemic._writer import Writer

from .test_ingest import RecordingWriter
from .test_protocol import (
    announcement,
    any_datagram,
    encode,
    legacy_announcement,
    legacy_row,
    sample,
)

# Examples of two to four datagrams each, so each run feeds at least 10,000
# datagrams through IngestProtocol.
INGEST_EXAMPLES = 5_000

# Signed datagrams each run mutates.
SIGNED_EXAMPLES = 3_000

SECRET = b"fuzzing secret"

# JSON fragments that are hard on a decoder: constants that are not JSON,
# numbers beyond a float, escapes of NUL and of lone surrogates, and deep
# nesting.
HOSTILE_FRAGMENTS = [
    b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400", b"1e308",
    b"123456789012345678901234567890", b'"\\u0000"', b'"\\ud800"', b'"\\udfff"',
    b"[" * 500 + b"]" * 500, b"{}", b"[]", b"null", b"true", b'"1.5"', b"-0",
    b'"' + b"x" * 300 + b'"', b"\xff", b"\xc0\x80", b"\x00",
]

valid_datagrams = st.sampled_from([
    encode(message) for message in
    (announcement(), sample(), legacy_announcement(), legacy_row())
])


@st.composite
def spliced_datagrams(draw: st.DrawFn) -> bytes:
    """
    Draw a valid datagram and replace one span of it with a hostile fragment,
    another span of it, or nothing.
    """
    datagram = draw(valid_datagrams)
    start = draw(st.integers(min_value=0, max_value=len(datagram)))
    end = draw(st.integers(min_value=start, max_value=len(datagram)))
    source = draw(st.integers(min_value=0, max_value=len(datagram)))
    replacement = draw(
        st.sampled_from(HOSTILE_FRAGMENTS)
        | st.just(datagram[source:source + draw(st.integers(0, 40))])
        | st.just(b"")
    )
    return datagram[:start] + replacement + datagram[end:]


fuzz_datagrams = any_datagram | spliced_datagrams() | valid_datagrams


class IngestFuzzTests(SynchronousTestCase):
    """
    IngestProtocol survives any sequence of datagrams and accounts for each.
    """

    @settings(
        max_examples=INGEST_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(fuzz_datagrams, min_size=2, max_size=4))
    def test_datagrams_accounted_for(self, datagrams: list[bytes]) -> None:
        """
        No exception leaves datagramReceived, no datagram counts as an
        internal error, and every datagram is invalid, rejected, or handed
        to the writer with values inside the protocol's limits.
        """
        writer = RecordingWriter()
        metrics = Metrics()
        protocol = IngestProtocol(cast(Writer, writer), metrics, Clock())

        for datagram in datagrams:
            protocol.datagramReceived(datagram, ("127.0.0.1", 9))

        self.assertEqual(metrics.invalid["internal_error"], 0)
        handled = (sum(metrics.invalid.values()) + sum(metrics.rejected.values())
                   + len(writer.samples) + len(writer.announcements))
        self.assertLessEqual(handled, len(datagrams))
        self.assertEqual(metrics.datagrams_received, len(datagrams))
        for queued in writer.samples:
            for value in queued.values:
                self.assertTrue(value is None or abs(value) <= MAX_ABS_VALUE)


class SignedFuzzTests(SynchronousTestCase):
    """
    A signed datagram changed in any way is never accepted.
    """

    @settings(
        max_examples=SIGNED_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        st.sampled_from([encode(announcement()), encode(sample())]),
        st.data(),
    )
    def test_mutated_signed_rejected(
        self, unsigned: bytes, data: st.DataObject
    ) -> None:
        """
        Overwriting, removing or inserting bytes anywhere in a signed
        datagram makes the decoder raise InvalidDatagram.
        """
        signed = sign(unsigned, SECRET)
        position = data.draw(st.integers(min_value=0, max_value=len(signed) - 1))
        operation = data.draw(st.sampled_from(["overwrite", "remove", "insert"]))
        byte = bytes([data.draw(st.integers(min_value=0, max_value=255))])
        if operation == "overwrite":
            mutated = signed[:position] + byte + signed[position + 1:]
        elif operation == "remove":
            mutated = signed[:position] + signed[position + 1:]
        else:
            mutated = signed[:position] + byte + signed[position:]
        if mutated == signed:
            return

        decoder = SignedDecoder(SECRET)
        with self.assertRaises(InvalidDatagram):
            decoder(mutated, 0.0)

    @settings(
        max_examples=SIGNED_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(fuzz_datagrams)
    def test_signed_garbage_contained(self, datagram: bytes) -> None:
        """
        Any datagram, signed correctly or not at all, decodes or raises
        InvalidDatagram, never another exception.
        """
        decoder = SignedDecoder(SECRET)

        for candidate in (datagram, sign(datagram or b"}", SECRET)):
            try:
                decoder(candidate, 0.0)
            except InvalidDatagram as error:
                if len(candidate) > MAX_DATAGRAM_BYTES:
                    self.assertEqual(error.reason, "oversize")
