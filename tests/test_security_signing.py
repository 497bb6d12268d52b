"""
Tests for mnemic._signing and the --secret-file option: signed datagrams,
their verification and the detection of replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections import Counter
from typing import Any, cast
from unittest import mock

from twisted.internet.task import Clock
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from mnemic import _signing, tap
from mnemic._ingest import IngestProtocol
from mnemic._metrics import Metrics
from mnemic._protocol import MAX_DATAGRAM_BYTES, Announcement, InvalidDatagram, Sample
from mnemic._signing import (
    REPLAY_WINDOW,
    SIGNATURE_BYTES,
    SignedDecoder,
    sign,
)
from mnemic._writer import Writer

from .test_ingest import RecordingWriter, announcement_datagram, sample_datagram

SECRET = b"correct horse battery staple"
RUN = "6f1c0a52-8c1e-4d41-9d55-0a8d2f3b2e10"
NOW = 1796396500.0


def signed_sample(seq: int, secret: bytes = SECRET, run: str = RUN) -> bytes:
    """
    Return a version 1 sample signed with ``secret``.
    """
    return sign(sample_datagram(run=run, seq=seq), secret)


def reason(decoder: SignedDecoder, datagram: bytes) -> str:
    """
    Return the reason ``decoder`` rejects ``datagram`` for, or the class name
    of the message it decodes to.
    """
    try:
        message = decoder(datagram, NOW)
    except InvalidDatagram as error:
        return error.reason
    return type(message).__name__


class SignTests(SynchronousTestCase):
    """
    The signed datagram format of docs/protocol.md.
    """

    def test_signature_member_appended(self) -> None:
        """
        A signed datagram is the JSON object with a last member ``sig`` that
        contains the lowercase hex HMAC-SHA256 of the unsigned datagram.
        """
        unsigned = sample_datagram(seq=3)

        signed = sign(unsigned, SECRET)

        message = json.loads(signed)
        expected = hmac.new(SECRET, unsigned, hashlib.sha256).hexdigest()
        self.assertEqual(message.pop("sig"), expected)
        self.assertEqual(message, json.loads(unsigned))
        self.assertTrue(signed.endswith(f',"sig":"{expected}"}}'.encode()))
        self.assertEqual(len(signed), len(unsigned) + SIGNATURE_BYTES)


class SignedDecoderTests(SynchronousTestCase):
    """
    SignedDecoder accepts only correctly signed datagrams, each sample once.
    """

    def setUp(self) -> None:
        """
        Make a decoder for the test secret.
        """
        self.decoder = SignedDecoder(SECRET)

    def test_signed_messages_decode(self) -> None:
        """
        Signed announcements and samples decode as their unsigned form would.
        """
        announcement = self.decoder(sign(announcement_datagram(), SECRET), NOW)
        sample = self.decoder(signed_sample(5), NOW)

        self.assertIsInstance(announcement, Announcement)
        self.assertIsInstance(sample, Sample)
        assert isinstance(sample, Sample)
        self.assertEqual(sample.seq, 5)
        self.assertEqual(sample.values, (1.5, None))

    def test_unsigned_rejected(self) -> None:
        """
        Datagrams without a signature member are unsigned, whatever else they
        contain: the JSON decoder never sees them.
        """
        cases = {
            "valid sample": sample_datagram(),
            "valid announcement": announcement_datagram(),
            "earlier release": b'{"msg_type": "row", "uuid": "x", "row_data": [1]}',
            "not UTF-8": b"\xff\xfe" * 100,
            "not JSON": b"x" * 200,
            "empty": b"",
            "space before brace": signed_sample(1)[:-1] + b" }",
            "no closing brace": signed_sample(1)[:-1],
        }

        reasons = {name: reason(self.decoder, datagram)
                   for name, datagram in cases.items()}

        self.assertEqual(reasons, dict.fromkeys(cases, "unsigned"))

    def test_wrong_signature_rejected(self) -> None:
        """
        A signature made with another secret, a changed byte anywhere in the
        message, or a signature in another spelling is a bad signature.
        """
        good = signed_sample(7)
        tampered = good.replace(b'"seq": 7', b'"seq": 8')
        digits = good[-66:-2]
        cases = {
            "other secret": signed_sample(7, secret=b"another secret"),
            "tampered seq": tampered,
            "uppercase hex": good[:-66] + digits.upper() + b'"}',
            "truncated hex": good[:-66] + b"00" + digits[:-2] + b'"}',
            "not hex": good[:-66] + b"z" * 64 + b'"}',
            "signature only": b'{,"sig":"' + b"0" * 64 + b'"}',
        }
        self.assertNotEqual(tampered, good)

        reasons = {name: reason(self.decoder, datagram)
                   for name, datagram in cases.items()}

        self.assertEqual(reasons, dict.fromkeys(cases, "bad_signature"))

    def test_payload_errors_after_signature(self) -> None:
        """
        A correctly signed datagram that breaks the protocol is rejected for
        the protocol's reason.
        """
        cases = {
            "not_json": sign(b"{nope}", SECRET),
            "bad_value": sign(sample_datagram(values=(1e308,)), SECRET),
            "bad_seq": sign(sample_datagram(seq=-1), SECRET),
        }

        reasons = {name: reason(self.decoder, datagram)
                   for name, datagram in cases.items()}

        self.assertEqual(reasons, {name: name for name in cases})

    def test_signed_earlier_release_messages_rejected(self) -> None:
        """
        The earlier release's messages carry no sequence number to check for
        replays, so they are rejected even when signed.
        """
        row = json.dumps({"msg_type": "row", "uuid": RUN, "row_data": [1]})
        run = json.dumps({"msg_type": "create_trace_run", "uuid": RUN,
                          "app_name": "a", "column_names": ["x"]})

        self.assertEqual(reason(self.decoder, sign(row.encode(), SECRET)),
                         "bad_version")
        self.assertEqual(reason(self.decoder, sign(run.encode(), SECRET)),
                         "bad_version")

    def test_oversize_rejected_before_verifying(self) -> None:
        """
        The size limit applies to the signed datagram, signature included.
        """
        columns = tuple(f"c{i}" for i in range(2000))
        datagram = sign(announcement_datagram(columns=columns), SECRET)
        self.assertGreater(len(datagram), MAX_DATAGRAM_BYTES)

        self.assertEqual(reason(self.decoder, datagram), "oversize")

    def test_repeated_sequence_number_is_replay(self) -> None:
        """
        The second copy of a signed sample is a replay.
        """
        self.assertEqual(reason(self.decoder, signed_sample(0)), "Sample")
        self.assertEqual(reason(self.decoder, signed_sample(0)), "replay")

    def test_reordered_samples_accepted_once(self) -> None:
        """
        Samples that arrive out of order within the window are each accepted
        once, and a second copy of any of them is a replay.
        """
        order = [5, 1, 3, 0, 2, 4, 9, 6, 8, 7]

        first = [reason(self.decoder, signed_sample(seq)) for seq in order]
        again = [reason(self.decoder, signed_sample(seq)) for seq in order]

        self.assertEqual(first, ["Sample"] * len(order))
        self.assertEqual(again, ["replay"] * len(order))

    def test_older_than_window_is_replay(self) -> None:
        """
        A sequence number a full window below the highest one seen is a replay
        even if it was never seen. One just inside the window is accepted.
        """
        highest = 10 * REPLAY_WINDOW
        self.decoder(signed_sample(highest), NOW)

        self.assertEqual(
            reason(self.decoder, signed_sample(highest - REPLAY_WINDOW)), "replay"
        )
        self.assertEqual(
            reason(self.decoder, signed_sample(highest - REPLAY_WINDOW + 1)), "Sample"
        )

    def test_jump_forward_clears_window(self) -> None:
        """
        After a jump of more than the window, numbers below the new highest
        and inside the window are accepted, and the new highest is a replay.
        """
        self.decoder(signed_sample(3), NOW)
        jump = 3 + 5 * REPLAY_WINDOW

        self.assertEqual(reason(self.decoder, signed_sample(jump)), "Sample")
        self.assertEqual(reason(self.decoder, signed_sample(jump - 1)), "Sample")
        self.assertEqual(reason(self.decoder, signed_sample(jump)), "replay")

    def test_runs_tracked_separately(self) -> None:
        """
        The same sequence number in two runs is no replay.
        """
        other = "0b7e4f4e-2d55-4a8e-9a43-5b0c4a1f9e21"

        self.assertEqual(reason(self.decoder, signed_sample(0)), "Sample")
        self.assertEqual(reason(self.decoder, signed_sample(0, run=other)), "Sample")

    def test_tracked_runs_bounded(self) -> None:
        """
        Past the limit of tracked runs, the least recently seen run is
        forgotten, so its sequence numbers are accepted again.
        """
        self.patch(_signing, "MAX_TRACKED_RUNS", 2)
        runs = ["00000000-0000-4000-8000-00000000000" + str(i) for i in range(3)]
        for run in runs:
            self.decoder(signed_sample(0, run=run), NOW)

        self.assertEqual(reason(self.decoder, signed_sample(0, run=runs[0])),
                         "Sample")
        self.assertEqual(reason(self.decoder, signed_sample(0, run=runs[2])),
                         "replay")

    def test_announcement_repeats_accepted(self) -> None:
        """
        Announcements are repeated by design, so a repeat is no replay.
        """
        datagram = sign(announcement_datagram(), SECRET)

        self.assertEqual(reason(self.decoder, datagram), "Announcement")
        self.assertEqual(reason(self.decoder, datagram), "Announcement")


class SignedIngestTests(SynchronousTestCase):
    """
    IngestProtocol with a SignedDecoder counts what the decoder rejects.
    """

    def test_rejections_counted_valid_written(self) -> None:
        """
        Unsigned, wrongly signed and replayed datagrams are counted as
        invalid by reason; the signed samples between them are written.
        """
        writer = RecordingWriter()
        metrics = Metrics()
        protocol = IngestProtocol(cast(Writer, writer), metrics, Clock(),
                                  decode=SignedDecoder(SECRET))
        datagrams = [
            sign(announcement_datagram(), SECRET),
            signed_sample(0),
            sample_datagram(seq=1),
            signed_sample(1),
            signed_sample(2, secret=b"wrong"),
            signed_sample(2),
            signed_sample(1),
        ]

        for datagram in datagrams:
            protocol.datagramReceived(datagram, ("127.0.0.1", 5000))

        self.assertEqual(metrics.datagrams_received, len(datagrams))
        self.assertEqual(metrics.invalid, Counter(
            {"unsigned": 1, "bad_signature": 1, "replay": 1}))
        self.assertEqual(len(writer.announcements), 1)
        self.assertEqual([s.seq for s in writer.samples], [0, 1, 2])


class SecretOptionTests(SynchronousTestCase):
    """
    ``--secret-file`` and ``MNEMIC_SECRET`` set the shared secret.
    """

    def setUp(self) -> None:
        """
        Remove variables of the host that the options read.
        """
        patcher = mock.patch.dict(os.environ)
        patcher.start()
        self.addCleanup(patcher.stop)
        for name in ("MNEMIC_SECRET", "POSTGRES_CONN_STR", "BACK_END_PORT",
                     "FRONT_END_PORT"):
            os.environ.pop(name, None)

    def parse(self, *arguments: str) -> tap.Options:
        """
        Return options parsed from ``arguments`` with a fixed database.
        """
        options = tap.Options()
        options.parseOptions(["--postgres", "postgresql:///x", *arguments])
        return options

    def write_file(self, content: bytes) -> str:
        """
        Write ``content`` to a new file and return its path.
        """
        path = self.mktemp()
        with open(path, "wb") as secret_file:
            secret_file.write(content)
        return path

    def test_no_secret_by_default(self) -> None:
        """
        Without the option and the variable, datagrams are not signed.
        """
        self.assertIsNone(self.parse().settings().secret)

    def test_secret_file_read_and_stripped(self) -> None:
        """
        The secret is the file's content without surrounding whitespace.
        """
        path = self.write_file(b"  s3cret\xc3\xa9\n")

        self.assertEqual(self.parse("--secret-file", path).settings().secret,
                         "s3cret\u00e9".encode())

    def test_secret_from_environment(self) -> None:
        """
        MNEMIC_SECRET sets the secret as UTF-8 bytes.
        """
        os.environ["MNEMIC_SECRET"] = "from-env\n"

        self.assertEqual(self.parse().settings().secret, b"from-env")

    def test_file_wins_over_environment(self) -> None:
        """
        --secret-file takes precedence over MNEMIC_SECRET.
        """
        os.environ["MNEMIC_SECRET"] = "from-env"
        path = self.write_file(b"from-file")

        self.assertEqual(self.parse("--secret-file", path).settings().secret,
                         b"from-file")

    def test_bad_secret_sources(self) -> None:
        """
        A missing or empty file, or an empty variable, is a usage error that
        names its source and never shows the secret.
        """
        missing = os.path.abspath(self.mktemp())
        empty = self.write_file(b" \n")

        with self.assertRaises(UsageError) as caught:
            self.parse("--secret-file", missing)
        self.assertIn(f"--secret-file: cannot read {missing}", str(caught.exception))
        with self.assertRaises(UsageError) as caught:
            self.parse("--secret-file", empty)
        self.assertEqual(str(caught.exception), f"--secret-file: {empty} is empty")
        os.environ["MNEMIC_SECRET"] = "  "
        with self.assertRaises(UsageError) as caught:
            self.parse()
        self.assertEqual(str(caught.exception),
                         "MNEMIC_SECRET: the variable is set but empty")

    def test_secret_not_in_representations(self) -> None:
        """
        Neither the parsed options nor the settings show the secret when
        printed.
        """
        path = self.write_file(b"do-not-print-me")
        options = self.parse("--secret-file", path)

        self.assertNotIn("do-not-print-me", repr(options.settings()))
        self.assertNotIn("do-not-print-me", str(dict(options)))

    def test_service_decodes_signed(self) -> None:
        """
        With a secret, the service's protocol uses a SignedDecoder.
        """
        path = self.write_file(SECRET)
        service: Any = tap.makeService(self.parse("--secret-file", path),
                                       reactor=Clock())

        protocol = service._ingest_protocol(RecordingWriter())

        self.assertIsInstance(protocol._decode, SignedDecoder)
