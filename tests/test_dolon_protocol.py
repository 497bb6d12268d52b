"""
Tests for the encoding of protocol version 1 messages in dolon.
"""

from __future__ import annotations

import decimal
import fractions
import json
import math
import unittest
import uuid

from hypothesis import example, given
from hypothesis import strategies as st

from dolon._protocol import (
    MAX_ABS_VALUE,
    MAX_DATAGRAM_BYTES,
    InvalidValue,
    encode_announcement,
    encode_sample,
    largest_sample_size,
    to_json_number,
)
from mnemic._protocol import decode_datagram

RUN = str(uuid.UUID(int=0x6F1C0A528C1E4D419D550A8D2F3B2E10))

values_strategy = st.lists(
    st.one_of(
        st.none(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(min_value=-(2**53), max_value=2**53),
    ),
    max_size=50,
)


class EncodeSampleTests(unittest.TestCase):
    """
    Tests for encode_sample.
    """

    @given(
        seq=st.integers(min_value=0, max_value=2**63 - 1),
        t=st.floats(min_value=0, max_value=4e9),
        values=values_strategy,
    )
    def test_round_trip(self, seq: int, t: float, values: list[float | None]) -> None:
        """
        Any sequence number, time and list of converted values encodes to a
        JSON object that decodes to the same fields.
        """
        datagram = encode_sample(RUN, seq, t, values)

        message = json.loads(datagram.decode("utf-8"))

        self.assertEqual(
            message,
            {
                "v": 1,
                "type": "sample",
                "run": RUN,
                "seq": seq,
                "t": t,
                "values": values,
            },
        )

    def test_largest_sample_is_upper_bound(self) -> None:
        """
        largest_sample_size is at least the size of a sample of the longest
        values.
        """
        values = [-2.2250738585072014e-308, -(2**53), -1.7976931348623157e308] * 10
        size = len(encode_sample(RUN, 2**63 - 1, 1796396417.131, values))

        self.assertGreaterEqual(largest_sample_size(RUN, 30), size)


class EncodeAnnouncementTests(unittest.TestCase):
    """
    Tests for encode_announcement.
    """

    def test_fields(self) -> None:
        """
        An announcement carries the documented fields, with non-ASCII names
        as UTF-8.
        """
        datagram = encode_announcement(RUN, "prüfung", ["größe"], 1.5, "host", 42)

        message = json.loads(datagram.decode("utf-8"))

        self.assertEqual(
            message,
            {
                "v": 1,
                "type": "run",
                "run": RUN,
                "name": "prüfung",
                "columns": ["größe"],
                "started": 1.5,
                "host": "host",
                "pid": 42,
            },
        )
        self.assertLess(len(datagram), MAX_DATAGRAM_BYTES)


class ToJsonNumberTests(unittest.TestCase):
    """
    Tests for the conversion of diagnostic results to sample values.
    """

    def test_accepted_values(self) -> None:
        """
        Numbers convert to an int or a finite float of the same value.
        """
        cases: list[tuple[object, object]] = [
            (None, None),
            (True, 1),
            (False, 0),
            (7, 7),
            (2.5, 2.5),
            (2**60, float(2**60)),
            (1e300, 1e300),
            (-1e300, -1e300),
            (10**300, 1e300),
            (decimal.Decimal("1.25"), 1.25),
            (fractions.Fraction(1, 4), 0.25),
        ]
        for value, expected in cases:
            with self.subTest(value=value):
                converted = to_json_number(value)
                self.assertEqual(converted, expected)
                self.assertIs(type(converted), type(expected))

    def test_rejected_values(self) -> None:
        """
        NaN, infinities, magnitudes above 1e300 (which mnemic rejects) and
        non-numbers raise InvalidValue.
        """
        cases = [
            math.nan,
            math.inf,
            -math.inf,
            decimal.Decimal("NaN"),
            decimal.Decimal("sNaN"),
            10**400,
            1e301,
            -1.7976931348623157e308,
            10**301,
            decimal.Decimal("1e301"),
            "12",
            b"12",
            [1],
            1j,
        ]
        for value in cases:
            with self.subTest(value=value):
                with self.assertRaises(InvalidValue):
                    to_json_number(value)


class ServerAcceptsTests(unittest.TestCase):
    """
    Tests that mnemic's decoder accepts every sample dolon sends.
    """

    @given(
        value=st.one_of(
            st.floats(),
            st.integers(min_value=-(2**1100), max_value=2**1100),
            st.decimals(),
            st.booleans(),
            st.none(),
        )
    )
    @example(value=1e301)
    @example(value=-1.7976931348623157e308)
    @example(value=10**301)
    @example(value=decimal.Decimal("-1e301"))
    @example(value=1e300)
    def test_converted_value_accepted(self, value: object) -> None:
        """
        A value that to_json_number converts is decoded by mnemic to the same
        number; any other value raises InvalidValue, and dolon sends null.
        """
        try:
            converted = to_json_number(value)
        except InvalidValue:
            converted = None
        datagram = encode_sample(RUN, 0, 1796396417.131, [converted])

        decoded = decode_datagram(datagram, 1796396417.131)

        self.assertEqual(decoded.values, (converted,))  # type: ignore[union-attr]
        if converted is not None:
            self.assertLessEqual(abs(converted), MAX_ABS_VALUE)
