"""
Tests that the decoder's fast path for samples of known runs accepts and
rejects exactly what the full decoder does.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from mnemic._protocol import InvalidDatagram, Sample, decode_datagram

NOW = 1_800_000_000.0


def encode(**fields: Any) -> bytes:
    """
    Encode a sample whose fields default to a valid one.
    """
    message = {"v": 1, "type": "sample", "run": fields.pop("run"), "seq": 3,
               "t": 1_700_000_000.5, "values": [1.5, 2, None]}
    message.update(fields)
    return json.dumps(message).encode("utf-8")


class FastPathTests(SynchronousTestCase):
    """
    Samples of a run whose id the decoder has seen before.
    """

    def setUp(self) -> None:
        self.run = str(uuid.uuid4())
        # The first sample of a run takes the full decoder and caches its id.
        decode_datagram(encode(run=self.run), NOW)

    def test_valid_sample_decoded(self) -> None:
        """
        A usual sample decodes to the same fields as on the first pass.
        """
        result = decode_datagram(encode(run=self.run, seq=9, values=[0.25, 7, None]),
                                 NOW)

        self.assertEqual(result, Sample(uuid.UUID(self.run), 9, 1_700_000_000.5,
                                        (0.25, 7.0, None)))

    def test_integer_time_accepted(self) -> None:
        """
        A whole-second time sent as a JSON integer is accepted as a float.
        """
        result = decode_datagram(encode(run=self.run, t=1_700_000_000), NOW)

        assert isinstance(result, Sample)
        self.assertEqual(result.t, 1_700_000_000.0)
        self.assertIsInstance(result.t, float)

    def test_large_integer_value_accepted(self) -> None:
        """
        An integer value past 2**53 is still accepted, as a float.
        """
        result = decode_datagram(encode(run=self.run, values=[2**60, 1, 1]), NOW)

        assert isinstance(result, Sample)
        self.assertEqual(result.values[0], float(2**60))

    def test_invalid_samples_rejected(self) -> None:
        """
        Each invalid sample of a known run is rejected with its reason.
        """
        cases = {
            "string value": ({"values": ["1"]}, "bad_value"),
            "bool value": ({"values": [True]}, "bad_value"),
            "nested value": ({"values": [[1.0]]}, "bad_value"),
            "huge float": ({"values": [1e308]}, "bad_value"),
            "huge integer": ({"values": [10**301]}, "bad_value"),
            "empty values": ({"values": []}, "bad_columns"),
            "values not a list": ({"values": 1.0}, "wrong_type"),
            "negative seq": ({"seq": -1}, "bad_seq"),
            "float seq": ({"seq": 1.0}, "wrong_type"),
            "bool seq": ({"seq": True}, "wrong_type"),
            "seq too large": ({"seq": 2**63}, "bad_seq"),
            "time in milliseconds": ({"t": 1_700_000_000_000.0}, "bad_timestamp"),
            "negative time": ({"t": -1.0}, "bad_timestamp"),
            "string time": ({"t": "1700000000"}, "wrong_type"),
            "version 2": ({"v": 2}, "bad_version"),
            "float version": ({"v": 1.0}, "bad_version"),
            "unknown type": ({"type": "samples"}, "bad_type"),
        }
        for name, (fields, reason) in cases.items():
            with self.subTest(name):
                with self.assertRaises(InvalidDatagram) as caught:
                    decode_datagram(encode(run=self.run, **fields), NOW)
                self.assertEqual(caught.exception.reason, reason, name)

    def test_extra_field_rejected(self) -> None:
        """
        A known run's sample with one more field is rejected as extra_field.
        """
        datagram = json.loads(encode(run=self.run))
        datagram["note"] = "x"

        with self.assertRaises(InvalidDatagram) as caught:
            decode_datagram(json.dumps(datagram).encode(), NOW)

        self.assertEqual(caught.exception.reason, "extra_field")
