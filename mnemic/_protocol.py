"""
Decode and validate datagrams of the wire protocol (docs/protocol.md).

Version 1 messages and the earlier release's ``msg_type`` messages both decode
to `Announcement` or `Sample`. Anything else raises `InvalidDatagram` with a
short, fixed reason that the metrics use as a label.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import AbstractSet, Any, NamedTuple, Optional, Union

MAX_DATAGRAM_BYTES = 8192
MAX_NAME_CHARS = 200
MAX_COLUMNS = 1000
MAX_HOST_CHARS = 255

# Larger magnitudes are legal JSON and finite floats, but sums and averages of
# them overflow to infinity in charts and in SQL aggregates.
MAX_ABS_VALUE = 1e300

PROTOCOL_VERSION = 1


class InvalidDatagram(Exception):
    """
    A datagram that does not follow the protocol.

    ``reason`` is one of a fixed set of short labels, safe to use as a metric
    label; ``detail`` explains it for the log.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Announcement:
    """
    A run announcement: the run's id, tracer name and columns.
    """

    run_id: uuid.UUID
    name: str
    columns: tuple[str, ...]
    started: float
    host: Optional[str]
    pid: Optional[int]
    protocol: int


class Sample(NamedTuple):
    """
    One sample of a run; ``seq`` is None for the earlier release's rows.

    A named tuple rather than a dataclass: one is built per datagram, and a
    tuple is several times cheaper to create.
    """

    run_id: uuid.UUID
    seq: Optional[int]
    t: float
    values: tuple[Optional[float], ...]


Message = Union[Announcement, Sample]


def decode_datagram(data: bytes, now: Optional[float] = None) -> Message:
    """
    Decode one datagram into an `Announcement` or a `Sample`.

    :param now: the arrival time in Unix seconds, used for the earlier
        release's messages, which carry no timestamp.
    :raises InvalidDatagram: if the datagram breaks the protocol.
    """
    if len(data) > MAX_DATAGRAM_BYTES:
        raise InvalidDatagram("oversize", f"{len(data)} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidDatagram("not_utf8") from None
    try:
        message = _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise InvalidDatagram("not_json") from None
    if not isinstance(message, dict):
        raise InvalidDatagram("not_object", type(message).__name__)

    sample = _fast_sample(message)
    if sample is not None:
        return sample
    if now is None:
        now = time.time()
    if "msg_type" in message and "v" not in message:
        return _decode_legacy(message, now)
    return _decode_v1(message)


def _fast_sample(message: dict[str, Any]) -> Optional[Sample]:
    """
    Decode the usual sample of a known run in one pass, or return None.

    This is the hot path: a busy service decodes tens of thousands of these a
    second. Anything unusual (a new run id, an integer time, a value out of
    range, any error) returns None, and the full decoder then accepts the
    message or rejects it with the right reason.
    """
    if message.keys() != _SAMPLE_FIELDS:
        return None
    version = message["v"]
    if type(version) is not int or version != PROTOCOL_VERSION:
        return None
    if message["type"] != "sample":
        return None
    run = message["run"]
    run_id = _RUN_IDS.get(run) if type(run) is str else None
    seq = message["seq"]
    t = message["t"]
    values = message["values"]
    if (
        run_id is None
        or type(seq) is not int
        or not 0 <= seq < _MAX_SEQ
        or type(t) is not float
        or not 0.0 <= t < _MAX_TIMESTAMP
        or type(values) is not list
        or not 1 <= len(values) <= MAX_COLUMNS
    ):
        return None
    for item in values:
        kind = type(item)
        if kind is float:
            # NaN fails both comparisons, so it takes the full decoder.
            if not -MAX_ABS_VALUE <= item <= MAX_ABS_VALUE:
                return None
        elif kind is int:
            if not -_MAX_EXACT_INT <= item <= _MAX_EXACT_INT:
                return None
        elif item is not None:
            return None
    return Sample(run_id, seq, t, tuple(values))


def _reject_constant(name: str) -> Any:
    # json.loads accepts NaN, Infinity and -Infinity, which are not JSON.
    raise InvalidDatagram("bad_value", f"non-finite constant {name}")


# One decoder for all datagrams: json.loads with keyword arguments builds a
# new decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_SAMPLE_FIELDS = frozenset({"v", "type", "run", "seq", "t", "values"})
_MAX_SEQ = 2**63
# Between 1970 and 2200: anything else is a unit mistake (milliseconds).
_MAX_TIMESTAMP = 7258118400.0
# Integers beyond this lose precision as float8; the full decoder checks them.
_MAX_EXACT_INT = 2**53


def _decode_v1(message: dict[str, Any]) -> Message:
    version = message.get("v")
    # type() rather than isinstance(), because True and 1.0 both equal 1.
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise InvalidDatagram("bad_version", repr(version)[:40])
    kind = message.get("type")
    if kind == "run":
        _check_fields(message, {"v", "type", "run", "name", "columns", "started"},
                      {"host", "pid"})
        return Announcement(
            run_id=_run_id(message["run"], canonical=True),
            name=_name(message["name"], "name"),
            columns=_columns(message["columns"]),
            started=_timestamp(message["started"], "started"),
            host=_optional_host(message.get("host")),
            pid=_optional_pid(message.get("pid")),
            protocol=PROTOCOL_VERSION,
        )
    if kind == "sample":
        if message.keys() != _SAMPLE_FIELDS:
            _check_fields(message, _SAMPLE_FIELDS, set())
        return Sample(
            run_id=_run_id(message["run"], canonical=True),
            seq=_sequence(message["seq"]),
            t=_timestamp(message["t"], "t"),
            values=_values(message["values"]),
        )
    raise InvalidDatagram("bad_type", repr(kind)[:40])


def _decode_legacy(message: dict[str, Any], now: float) -> Message:
    kind = message["msg_type"]
    if kind == "create_trace_run":
        _check_fields(message, {"msg_type", "uuid", "app_name", "column_names"},
                      set())
        return Announcement(
            run_id=_run_id(message["uuid"]),
            name=_name(message["app_name"], "app_name"),
            columns=_columns(message["column_names"]),
            started=now,
            host=None,
            pid=None,
            protocol=0,
        )
    if kind == "row":
        _check_fields(message, {"msg_type", "uuid", "row_data"}, set())
        return Sample(
            run_id=_run_id(message["uuid"]),
            seq=None,
            t=now,
            values=_values(message["row_data"]),
        )
    raise InvalidDatagram("bad_type", repr(kind)[:40])


def _check_fields(
    message: dict[str, Any], required: AbstractSet[str], optional: AbstractSet[str]
) -> None:
    missing = required - message.keys()
    if missing:
        raise InvalidDatagram("missing_field", ",".join(sorted(missing))[:80])
    extra = message.keys() - required - optional
    if extra:
        raise InvalidDatagram("extra_field", ",".join(sorted(extra))[:80])


# Parsed run ids by their text. A tracer sends the same id every second, and
# uuid.UUID() costs more than the rest of a sample's checks together.
_RUN_IDS: dict[str, uuid.UUID] = {}
_MAX_CACHED_RUN_IDS = 10_000


def _run_id(value: Any, canonical: bool = False) -> uuid.UUID:
    if canonical:
        cached = _RUN_IDS.get(value) if type(value) is str else None
        if cached is not None:
            return cached
        run_id = _parse_run_id(value, canonical)
        if len(_RUN_IDS) >= _MAX_CACHED_RUN_IDS:
            _RUN_IDS.clear()
        _RUN_IDS[value] = run_id
        return run_id
    return _parse_run_id(value, canonical)


def _parse_run_id(value: Any, canonical: bool) -> uuid.UUID:
    # uuid.UUID also parses 32 bare hex digits, braces and stray hyphens.
    # Version 1 requires the canonical 8-4-4-4-12 form (in either case).
    # Earlier-release ids may take any form that uuid.UUID parses, because no
    # document fixes that release's format and its clients cannot be updated.
    if not isinstance(value, str) or len(value) > 36:
        raise InvalidDatagram("bad_run_id")
    try:
        run_id = uuid.UUID(value)
    except ValueError:
        raise InvalidDatagram("bad_run_id") from None
    if canonical and str(run_id) != value.lower():
        raise InvalidDatagram("bad_run_id", "not in canonical form")
    return run_id


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidDatagram("wrong_type", field)
    if not 1 <= len(value) <= MAX_NAME_CHARS:
        raise InvalidDatagram("bad_name", f"{field} has {len(value)} characters")
    if "\x00" in value:
        # PostgreSQL text cannot contain NUL.
        raise InvalidDatagram("bad_name", f"{field} contains NUL")
    if not _encodable(value):
        raise InvalidDatagram("bad_name", f"{field} is not valid Unicode")
    return value


def _encodable(value: str) -> bool:
    # JSON escapes such as "\ud800" decode to lone surrogates, which psycopg2
    # cannot encode. The writer takes that error for a lost connection and
    # would retry the same batch without end.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _columns(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise InvalidDatagram("wrong_type", "columns")
    if not 1 <= len(value) <= MAX_COLUMNS:
        raise InvalidDatagram("bad_columns", f"{len(value)} columns")
    columns = tuple(_name(column, "column") for column in value)
    if len(set(columns)) != len(columns):
        raise InvalidDatagram("bad_columns", "duplicate column names")
    return columns


def _timestamp(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidDatagram("wrong_type", field)
    if not 0 <= value < _MAX_TIMESTAMP:
        raise InvalidDatagram("bad_timestamp", f"{field}={value!r}"[:60])
    return float(value)


def _sequence(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidDatagram("wrong_type", "seq")
    if not 0 <= value < _MAX_SEQ:
        raise InvalidDatagram("bad_seq", str(value)[:30])
    return value


def _values(value: Any) -> tuple[Optional[float], ...]:
    if not isinstance(value, list):
        raise InvalidDatagram("wrong_type", "values")
    if not 1 <= len(value) <= MAX_COLUMNS:
        raise InvalidDatagram("bad_columns", f"{len(value)} values")
    for item in value:
        # The common case inline: a float in range. NaN fails both
        # comparisons, so it takes the slow path and is rejected there.
        if type(item) is not float or not -MAX_ABS_VALUE <= item <= MAX_ABS_VALUE:
            return tuple(_value(item) for item in value)
    return tuple(value)


def _value(item: Any) -> Optional[float]:
    if item is None:
        return None
    if isinstance(item, bool) or not isinstance(item, (int, float)):
        raise InvalidDatagram("bad_value", type(item).__name__)
    number = float(item) if abs(item) < 2**1023 else math.inf
    if not math.isfinite(number) or abs(number) > MAX_ABS_VALUE:
        raise InvalidDatagram("bad_value", "out of range")
    return number


def _optional_host(value: Any) -> Optional[str]:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or len(value) > MAX_HOST_CHARS
        or "\x00" in value
        or not _encodable(value)
    ):
        raise InvalidDatagram("wrong_type", "host")
    return value


def _optional_pid(value: Any) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise InvalidDatagram("wrong_type", "pid")
    return value
