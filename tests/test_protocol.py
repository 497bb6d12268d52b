"""
Tests for mnemic._protocol, checked against the wire protocol in docs/protocol.md.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from mnemic._protocol import (
    MAX_DATAGRAM_BYTES,
    Announcement,
    InvalidDatagram,
    Sample,
    decode_datagram,
)

# Examples each property test runs. CI may raise it, so it lives in one place.
MAX_EXAMPLES = 2000

RUN_ID = "6f1c0a52-8c1e-4d41-9d55-0a8d2f3b2e10"

# The arrival time passed to the decoder, used for the earlier release's rows.
NOW = 1796396500.5

# Marks a field that a test removes from a message.
MISSING: Any = object()


def announcement(**changes: Any) -> dict[str, Any]:
    """
    Return the announcement example of docs/protocol.md with ``changes`` applied.
    """
    message = {
        "v": 1,
        "type": "run",
        "run": RUN_ID,
        "name": "hello-world",
        "columns": ["mem_allocation", "active_tasks"],
        "started": 1796396400.125,
        "host": "build-7",
        "pid": 4711,
    }
    return _apply(message, changes)


def sample(**changes: Any) -> dict[str, Any]:
    """
    Return the sample example of docs/protocol.md with ``changes`` applied.
    """
    message = {
        "v": 1,
        "type": "sample",
        "run": RUN_ID,
        "seq": 17,
        "t": 1796396417.131,
        "values": [12.5, None],
    }
    return _apply(message, changes)


def legacy_announcement(**changes: Any) -> dict[str, Any]:
    """
    Return an earlier-release ``create_trace_run`` message with ``changes`` applied.
    """
    message = {
        "msg_type": "create_trace_run",
        "uuid": RUN_ID,
        "app_name": "hello-world",
        "column_names": ["mem_allocation", "active_tasks"],
    }
    return _apply(message, changes)


def legacy_row(**changes: Any) -> dict[str, Any]:
    """
    Return an earlier-release ``row`` message with ``changes`` applied.
    """
    message = {"msg_type": "row", "uuid": RUN_ID, "row_data": [12.5, 3]}
    return _apply(message, changes)


def _apply(message: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    for field, value in changes.items():
        if value is MISSING:
            del message[field]
        else:
            message[field] = value
    return message


def encode(message: Any) -> bytes:
    """
    Encode a message the way a client does: JSON text in UTF-8.
    """
    return json.dumps(message).encode("utf-8")


def with_literal(message: dict[str, Any], literal: bytes) -> bytes:
    """
    Encode ``message`` with the placeholder value 0.125 replaced by ``literal``.

    This writes JSON spellings that json.dumps cannot produce, such as 1e400,
    or nesting deeper than the encoder allows.
    """
    datagram = encode(message)
    assert datagram.count(b"0.125") == 1, datagram
    return datagram.replace(b"0.125", literal)


def reason_of(datagram: bytes) -> str:
    """
    Decode ``datagram`` and return the reason it was rejected for.

    A datagram that decodes returns the name of the message class instead, so
    that a table of expected reasons shows it next to the other cases.
    """
    try:
        message = decode_datagram(datagram, NOW)
    except InvalidDatagram as error:
        return error.reason
    return f"decoded as {type(message).__name__}"


def reasons_of(cases: dict[str, bytes]) -> dict[str, str]:
    """
    Return the rejection reason of each datagram in ``cases``, keyed by case name.
    """
    return {name: reason_of(datagram) for name, datagram in cases.items()}


class DecodeValidTests(SynchronousTestCase):
    """
    Well-formed datagrams of protocol version 1 and of the earlier release.
    """

    def test_announcement_fields(self) -> None:
        """
        A version 1 announcement decodes to an Announcement carrying every field.
        """
        result = decode_datagram(encode(announcement()), NOW)

        self.assertEqual(
            result,
            Announcement(
                run_id=uuid.UUID(RUN_ID),
                name="hello-world",
                columns=("mem_allocation", "active_tasks"),
                started=1796396400.125,
                host="build-7",
                pid=4711,
                protocol=1,
            ),
        )

    def test_sample_fields(self) -> None:
        """
        A version 1 sample decodes to a Sample with its seq, time and values.
        """
        result = decode_datagram(encode(sample()), NOW)

        self.assertEqual(
            result,
            Sample(
                run_id=uuid.UUID(RUN_ID),
                seq=17,
                t=1796396417.131,
                values=(12.5, None),
            ),
        )

    def test_sample_integer_values_become_floats(self) -> None:
        """
        Integer values and an integer time decode to floats of the same value.
        """
        result = decode_datagram(encode(sample(t=1796396417, values=[3, -2])), NOW)

        assert isinstance(result, Sample)
        self.assertEqual(result.t, 1796396417.0)
        self.assertIsInstance(result.t, float)
        self.assertEqual(result.values, (3.0, -2.0))
        self.assertEqual([type(value) for value in result.values], [float, float])

    def test_sample_all_null(self) -> None:
        """
        A sample whose every diagnostic failed carries only nulls and is valid.
        """
        result = decode_datagram(encode(sample(values=[None, None])), NOW)

        assert isinstance(result, Sample)
        self.assertEqual(result.values, (None, None))

    def test_sample_values_at_limit(self) -> None:
        """
        Values of magnitude 1e300 are accepted, as is the first sequence number 0.
        """
        result = decode_datagram(encode(sample(seq=0, values=[1e300, -1e300])), NOW)

        assert isinstance(result, Sample)
        self.assertEqual(result.seq, 0)
        self.assertEqual(result.values, (1e300, -1e300))

    def test_uppercase_run_id(self) -> None:
        """
        A run id in upper case is the same UUID, because UUID text is
        case-insensitive on input.
        """
        result = decode_datagram(encode(sample(run=RUN_ID.upper())), NOW)

        assert isinstance(result, Sample)
        self.assertEqual(result.run_id, uuid.UUID(RUN_ID))

    def test_announcement_at_size_limit(self) -> None:
        """
        A datagram of exactly 8192 bytes is accepted, because the limit is
        inclusive (trailing JSON whitespace pads it here).
        """
        message = encode(announcement())
        datagram = message.ljust(MAX_DATAGRAM_BYTES)
        self.assertEqual(len(datagram), 8192)

        result = decode_datagram(datagram, NOW)

        self.assertEqual(result, decode_datagram(message, NOW))

    def test_announcement_without_host_and_pid(self) -> None:
        """
        An announcement without host and pid decodes with both set to None.
        """
        result = decode_datagram(encode(announcement(host=MISSING, pid=MISSING)), NOW)

        assert isinstance(result, Announcement)
        self.assertIsNone(result.host)
        self.assertIsNone(result.pid)

    def test_non_ascii_names(self) -> None:
        """
        Tracer and column names may use any Unicode text, sent as UTF-8.
        """
        datagram = json.dumps(
            announcement(name="données-δ", columns=["mémoire", "задачи"]),
            ensure_ascii=False,
        ).encode("utf-8")

        result = decode_datagram(datagram, NOW)

        assert isinstance(result, Announcement)
        self.assertEqual(result.name, "données-δ")
        self.assertEqual(result.columns, ("mémoire", "задачи"))

    def test_legacy_announcement(self) -> None:
        """
        A ``create_trace_run`` message decodes to an Announcement of protocol 0
        that started at the arrival time and has no host or pid.
        """
        result = decode_datagram(encode(legacy_announcement()), NOW)

        self.assertEqual(
            result,
            Announcement(
                run_id=uuid.UUID(RUN_ID),
                name="hello-world",
                columns=("mem_allocation", "active_tasks"),
                started=NOW,
                host=None,
                pid=None,
                protocol=0,
            ),
        )

    def test_legacy_row(self) -> None:
        """
        A ``row`` message decodes to a Sample with no sequence number, stamped
        with the arrival time.
        """
        result = decode_datagram(encode(legacy_row()), NOW)

        self.assertEqual(
            result,
            Sample(run_id=uuid.UUID(RUN_ID), seq=None, t=NOW, values=(12.5, 3.0)),
        )

    def test_legacy_run_id_without_hyphens(self) -> None:
        """
        Earlier-release run ids may be bare hex digits, unlike version 1 ids,
        because that release's id format is not documented.
        """
        result = decode_datagram(encode(legacy_row(uuid=uuid.UUID(RUN_ID).hex)), NOW)

        assert isinstance(result, Sample)
        self.assertEqual(result.run_id, uuid.UUID(RUN_ID))

    def test_legacy_row_null(self) -> None:
        """
        A ``row`` message may carry null for a failed diagnostic.
        """
        result = decode_datagram(encode(legacy_row(row_data=[None, 1])), NOW)

        assert isinstance(result, Sample)
        self.assertEqual(result.values, (None, 1.0))


class DecodeInvalidTests(SynchronousTestCase):
    """
    Each kind of broken datagram raises InvalidDatagram with its own reason.
    """

    def test_reason_and_detail(self) -> None:
        """
        InvalidDatagram carries the reason for the metric label and a detail
        for the log.
        """
        with self.assertRaises(InvalidDatagram) as caught:
            decode_datagram(encode(sample(seq=-1)), NOW)

        self.assertEqual(caught.exception.reason, "bad_seq")
        self.assertIn("-1", caught.exception.detail)

    def test_envelope(self) -> None:
        """
        Oversize, non-UTF-8, non-JSON and non-object datagrams are rejected
        before any field is read.
        """
        too_big = encode(announcement(host="h" * MAX_DATAGRAM_BYTES))
        cases = {
            "8193 bytes": encode(announcement(host="")).ljust(8193),
            "oversize announcement": too_big,
            "Latin-1 bytes": '{"v": 1, "name": "café"}'.encode("latin-1"),
            "invalid start byte": b"\xff\xfe{}",
            "truncated UTF-8": encode(announcement(name="é"))[:-1] + b"\xc3",
            "empty": b"",
            "text": b"hello",
            "truncated JSON": encode(sample())[:-1],
            "trailing comma": b'{"v": 1,}',
            "single quotes": b"{'v': 1}",
            "array": encode([1, 2]),
            "number": b"42",
            "string": b'"sample"',
            "null": b"null",
            "true": b"true",
        }
        expected = {
            "8193 bytes": "oversize",
            "oversize announcement": "oversize",
            "Latin-1 bytes": "not_utf8",
            "invalid start byte": "not_utf8",
            "truncated UTF-8": "not_utf8",
            "empty": "not_json",
            "text": "not_json",
            "truncated JSON": "not_json",
            "trailing comma": "not_json",
            "single quotes": "not_json",
            "array": "not_object",
            "number": "not_object",
            "string": "not_object",
            "null": "not_object",
            "true": "not_object",
        }

        self.assertEqual(reasons_of(cases), expected)

    def test_deep_nesting(self) -> None:
        """
        Deeply nested JSON is rejected without a RecursionError escaping the
        decoder.
        """
        cases = {
            "4000 arrays": b"[" * 4000 + b"]" * 4000,
            "unclosed arrays": b"[" * 8000,
            "nested objects": b'{"a":' * 1300 + b"1" + b"}" * 1300,
            "nested in values": with_literal(
                sample(values=[0.125]), b"[" * 4000 + b"]" * 4000
            ),
            "100000 arrays": b"[" * 100_000,
        }
        expected = {
            "4000 arrays": "not_json",
            "unclosed arrays": "not_json",
            "nested objects": "not_json",
            "nested in values": "not_json",
            "100000 arrays": "oversize",
        }

        self.assertEqual(reasons_of(cases), expected)

    def test_version(self) -> None:
        """
        Only the integer 1 is a known version; a missing version is unknown too.
        """
        cases = {
            "2": encode(sample(v=2)),
            "0": encode(sample(v=0)),
            "string 1": encode(sample(v="1")),
            "true": encode(sample(v=True)),
            "1.0": encode(sample(v=1.0)),
            "null": encode(sample(v=None)),
            "missing": encode(sample(v=MISSING)),
            "object": b"{}",
        }
        expected = dict.fromkeys(cases, "bad_version")

        self.assertEqual(reasons_of(cases), expected)

    def test_type(self) -> None:
        """
        A message type other than those in the protocol is rejected.
        """
        cases = {
            "unknown": encode(sample(type="samples")),
            "upper case": encode(sample(type="RUN")),
            "missing": encode(sample(type=MISSING)),
            "number": encode(sample(type=1)),
            "legacy unknown": encode(legacy_row(msg_type="delete_run")),
            "legacy list": encode(legacy_row(msg_type=["row"])),
        }
        expected = dict.fromkeys(cases, "bad_type")

        self.assertEqual(reasons_of(cases), expected)

    def test_missing_field(self) -> None:
        """
        Leaving out any required field of either message type is rejected.
        """
        cases = {}
        for field in ["run", "name", "columns", "started"]:
            cases[f"run {field}"] = encode(announcement(**{field: MISSING}))
        for field in ["run", "seq", "t", "values"]:
            cases[f"sample {field}"] = encode(sample(**{field: MISSING}))
        for field in ["uuid", "app_name", "column_names"]:
            cases[f"legacy run {field}"] = encode(
                legacy_announcement(**{field: MISSING})
            )
        for field in ["uuid", "row_data"]:
            cases[f"legacy row {field}"] = encode(legacy_row(**{field: MISSING}))
        expected = dict.fromkeys(cases, "missing_field")

        self.assertEqual(reasons_of(cases), expected)

    def test_extra_field(self) -> None:
        """
        A field that the protocol does not define is rejected.
        """
        cases = {
            "run": encode(announcement(extra=1)),
            "sample": encode(sample(host="build-7")),
            "sample with msg_type": encode(sample(msg_type="row")),
            "legacy run": encode(legacy_announcement(started=1)),
            "legacy row": encode(legacy_row(seq=1)),
        }
        expected = dict.fromkeys(cases, "extra_field")

        self.assertEqual(reasons_of(cases), expected)

    def test_wrong_type(self) -> None:
        """
        A field of the wrong JSON type is rejected, including a boolean where
        an integer belongs and a string where a number belongs.
        """
        cases = {
            "seq true": encode(sample(seq=True)),
            "seq float": encode(sample(seq=17.0)),
            "seq string": encode(sample(seq="17")),
            "t string": encode(sample(t="1796396417.131")),
            "t true": encode(sample(t=True)),
            "t null": encode(sample(t=None)),
            "values object": encode(sample(values={"a": 1})),
            "values number": encode(sample(values=12.5)),
            "started string": encode(announcement(started="now")),
            "name number": encode(announcement(name=7)),
            "columns string": encode(announcement(columns="a,b")),
            "column number": encode(announcement(columns=["a", 2])),
            "pid true": encode(announcement(pid=True)),
            "pid string": encode(announcement(pid="4711")),
            "pid negative": encode(announcement(pid=-1)),
            "host number": encode(announcement(host=7)),
            "host too long": encode(announcement(host="h" * 256)),
            "host NUL": encode(announcement(host="build\x007")),
            "app_name list": encode(legacy_announcement(app_name=["a"])),
            "row_data string": encode(legacy_row(row_data="1,2")),
        }
        expected = dict.fromkeys(cases, "wrong_type")

        self.assertEqual(reasons_of(cases), expected)

    def test_run_id(self) -> None:
        """
        A run id that is not a UUID in canonical text form is rejected.
        """
        cases = {
            "word": encode(sample(run="not-a-uuid")),
            "empty": encode(sample(run="")),
            "number": encode(sample(run=123)),
            "null": encode(sample(run=None)),
            "too short": encode(sample(run=RUN_ID[:-1])),
            "bad digit": encode(sample(run=RUN_ID[:-1] + "g")),
            "hex without hyphens": encode(sample(run=uuid.UUID(RUN_ID).hex)),
            "braces": encode(sample(run="{" + RUN_ID + "}")),
            "urn": encode(sample(run="urn:uuid:" + RUN_ID)),
            "misplaced hyphens": encode(
                sample(run="6f1c0a528-c1e4-d419-d550-a8d2f3b2e10")
            ),
            "announcement": encode(announcement(run="build-7")),
            "legacy row": encode(legacy_row(uuid="abc")),
        }
        expected = dict.fromkeys(cases, "bad_run_id")

        self.assertEqual(reasons_of(cases), expected)

    def test_values(self) -> None:
        """
        A value that is neither a finite number within 1e300 nor null is
        rejected, whatever JSON spelling carries it.
        """
        cases = {
            "NaN": with_literal(sample(values=[0.125, None]), b"NaN"),
            "Infinity": with_literal(sample(values=[0.125, None]), b"Infinity"),
            "-Infinity": with_literal(sample(values=[0.125, None]), b"-Infinity"),
            "NaN as t": with_literal(sample(t=0.125), b"NaN"),
            "1e308": encode(sample(values=[1e308, None])),
            "-1e308": encode(sample(values=[-1e308, None])),
            "1e301": encode(sample(values=[1e301, None])),
            "1e400 literal": with_literal(sample(values=[0.125, None]), b"1e400"),
            "10**400": encode(sample(values=[10**400, None])),
            "-10**400": encode(sample(values=[-(10**400), None])),
            "string": encode(sample(values=["12.5", None])),
            "true": encode(sample(values=[True, None])),
            "list": encode(sample(values=[[1], None])),
            "object": encode(sample(values=[{"v": 1}, None])),
            "legacy string": encode(legacy_row(row_data=["3"])),
            "legacy NaN": with_literal(legacy_row(row_data=[1, 0.125]), b"NaN"),
        }
        expected = dict.fromkeys(cases, "bad_value")

        self.assertEqual(reasons_of(cases), expected)

    def test_columns(self) -> None:
        """
        Column and value lists must hold 1 to 1000 entries, and column names
        must be unique.
        """
        names = [str(i) for i in range(1001)]
        cases = {
            "no columns": encode(announcement(columns=[])),
            "1001 columns": encode(announcement(columns=names)),
            "duplicate": encode(announcement(columns=["a", "b", "a"])),
            "legacy duplicate": encode(legacy_announcement(column_names=["a", "a"])),
            "no values": encode(sample(values=[])),
            "1001 values": encode(sample(values=[0] * 1001)),
            "legacy no values": encode(legacy_row(row_data=[])),
        }
        expected = dict.fromkeys(cases, "bad_columns")

        self.assertEqual(reasons_of(cases), expected)

    def test_names(self) -> None:
        """
        Tracer and column names must have 1 to 200 characters, no NUL and only
        characters that UTF-8 can encode.
        """
        cases = {
            "name NUL": encode(announcement(name="hello\x00world")),
            "name 201": encode(announcement(name="n" * 201)),
            "name empty": encode(announcement(name="")),
            "name surrogate": encode(announcement(name="hello\ud800")),
            "column NUL": encode(announcement(columns=["a", "b\x00"])),
            "column 201": encode(announcement(columns=["a", "c" * 201])),
            "column empty": encode(announcement(columns=["a", ""])),
            "column surrogate": encode(announcement(columns=["\udfff"])),
            "app_name 201": encode(legacy_announcement(app_name="n" * 201)),
        }
        expected = dict.fromkeys(cases, "bad_name")

        self.assertEqual(reasons_of(cases), expected)

    def test_name_length_limit(self) -> None:
        """
        Names of exactly 200 characters are accepted.
        """
        message = announcement(name="n" * 200, columns=["c" * 200])

        result = decode_datagram(encode(message), NOW)

        assert isinstance(result, Announcement)
        self.assertEqual(result.name, "n" * 200)
        self.assertEqual(result.columns, ("c" * 200,))

    def test_host_surrogate(self) -> None:
        """
        A host name that UTF-8 cannot encode is rejected like any invalid host.
        """
        self.assertEqual(reason_of(encode(announcement(host="\ud800"))), "wrong_type")

    def test_sequence(self) -> None:
        """
        Sequence numbers must be 0 or more and fit a signed 64-bit integer.
        """
        cases = {
            "-1": encode(sample(seq=-1)),
            "2**63": encode(sample(seq=2**63)),
            "10**400": encode(sample(seq=10**400)),
        }
        expected = dict.fromkeys(cases, "bad_seq")

        self.assertEqual(reasons_of(cases), expected)

    def test_timestamp(self) -> None:
        """
        Times must be Unix seconds from 1970 on; milliseconds are rejected.
        """
        cases = {
            "t in milliseconds": encode(sample(t=1796396417131)),
            "started in milliseconds": encode(announcement(started=1796396400125)),
            "t negative": encode(sample(t=-1)),
            "t year 2300": encode(sample(t=10_413_792_000)),
            "t 1e400 literal": with_literal(sample(t=0.125), b"1e400"),
        }
        expected = dict.fromkeys(cases, "bad_timestamp")

        self.assertEqual(reasons_of(cases), expected)


# JSON values of every kind, including the NaN and infinities that Python's
# json module writes, for replacing fields of a valid message.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)

valid_messages = st.sampled_from(
    [announcement(), sample(), legacy_announcement(), legacy_row()]
)


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    """
    Draw a valid message with one field replaced, removed or added, encoded.
    """
    message = dict(draw(valid_messages))
    field = draw(st.sampled_from(sorted(message)) | st.text(max_size=10))
    operation = draw(st.sampled_from(["replace", "remove"]))
    if operation == "remove":
        message.pop(field, None)
    else:
        message[field] = draw(json_values)
    return encode(message)


@st.composite
def damaged_datagrams(draw: st.DrawFn) -> bytes:
    """
    Draw the bytes of a valid message, then truncate or overwrite some of them.
    """
    datagram = bytearray(encode(draw(valid_messages)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        position = draw(st.integers(min_value=0, max_value=len(datagram) - 1))
        datagram[position] = draw(st.integers(min_value=0, max_value=255))
    end = draw(st.integers(min_value=0, max_value=len(datagram)))
    return bytes(datagram[:end])


any_datagram = (
    st.binary(max_size=MAX_DATAGRAM_BYTES + 16)
    | mutated_messages()
    | damaged_datagrams()
)


class DecodeFuzzTests(SynchronousTestCase):
    """
    Random input never makes the decoder raise anything but InvalidDatagram.
    """

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(any_datagram)
    def test_random_datagrams(self, datagram: bytes) -> None:
        """
        Every datagram decodes to an Announcement or a Sample that follows the
        protocol's limits, or raises InvalidDatagram.
        """
        try:
            message = decode_datagram(datagram, NOW)
        except InvalidDatagram as error:
            self.assertIsInstance(error.reason, str)
            return

        self.assertIsInstance(message, (Announcement, Sample))
        if isinstance(message, Sample):
            for value in message.values:
                self.assertTrue(value is None or abs(value) <= 1e300, value)
        else:
            self.assertTrue(1 <= len(message.columns) <= 1000)
            self.assertEqual(len(set(message.columns)), len(message.columns))
            for name in (message.name, *message.columns):
                self.assertNotIn("\x00", name)
                name.encode("utf-8")
                self.assertTrue(1 <= len(name) <= 200)
