"""
Encoding of the messages of wire protocol version 1 (see docs/protocol.md).
"""

from __future__ import annotations

import decimal
import json
import math
import numbers
import time
from collections.abc import Sequence
from typing import NoReturn, Union

#: Protocol version sent in the ``v`` field of every message.
PROTOCOL_VERSION = 1

#: Largest datagram, in bytes, that mnemic accepts.
MAX_DATAGRAM_BYTES = 8192

#: Seconds between two announcements of the same run.
ANNOUNCE_INTERVAL = 30.0

#: Limits on the fields of an announcement.
MAX_NAME_LENGTH = 200
MAX_COLUMNS = 1000
MAX_COLUMN_NAME_LENGTH = 200
MAX_HOST_LENGTH = 255

#: A float with the maximum length of JSON text (24 characters), used to size
#: the largest possible sample before a run starts.
_LONGEST_FLOAT = -2.2250738585072014e-308

#: Largest magnitude of a value that mnemic accepts, because sums and
#: averages of larger ones overflow in charts and in SQL aggregates.
MAX_ABS_VALUE = 1e300

#: Integers beyond this magnitude are sent as floats, because mnemic stores
#: values as float8 and a longer integer would only lengthen the datagram.
_MAX_EXACT_INT = 2**53

# Union rather than |, because this alias is evaluated at run time on
# Python 3.9 too.
JsonNumber = Union[int, float]  # noqa: UP007


class InvalidValue(ValueError):
    """
    A diagnostic returned a value that protocol version 1 cannot carry.
    """


def to_json_number(value: object) -> JsonNumber | None:
    """
    Convert a diagnostic's return value to a value of a sample.

    ``None`` stays ``None``, a bool becomes 0 or 1, and other real numbers
    (including NumPy scalars and :class:`decimal.Decimal`) become an int or a
    float between -1e300 and 1e300.

    :raise InvalidValue: for NaN, infinities, magnitudes above 1e300 and
        values that are not numbers.
    """
    # Fast paths for the common types; the abstract base classes below are
    # slower to check. NaN fails both comparisons.
    if type(value) is float:
        if -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:
            return value
        _out_of_range(value)
    if type(value) is int and -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Integral):
        number = int(value)
        if -_MAX_EXACT_INT <= number <= _MAX_EXACT_INT:
            return number
        if abs(number) > MAX_ABS_VALUE:
            raise InvalidValue(
                f"an integer of {number.bit_length()} bits is outside "
                f"-{MAX_ABS_VALUE:g} to {MAX_ABS_VALUE:g}"
            )
        return float(number)
    if isinstance(value, (numbers.Real, decimal.Decimal)):
        try:
            number_float = float(value)
        except (OverflowError, ValueError, TypeError):
            raise InvalidValue(f"{value!r} is not a finite float") from None
        if -MAX_ABS_VALUE <= number_float <= MAX_ABS_VALUE:
            return number_float
        _out_of_range(number_float)
    raise InvalidValue(f"a value of type {type(value).__name__} is not a number")


def _out_of_range(value: float) -> NoReturn:
    if math.isfinite(value):
        raise InvalidValue(
            f"{value!r} is outside -{MAX_ABS_VALUE:g} to {MAX_ABS_VALUE:g}"
        )
    raise InvalidValue(f"{value!r} is not a finite number")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode_announcement(
    run: str,
    name: str,
    columns: Sequence[str],
    started: float,
    host: str,
    pid: int,
) -> bytes:
    """
    Encode the announcement of a run.
    """
    return _ENCODER.encode(
        {
            "v": PROTOCOL_VERSION,
            "type": "run",
            "run": run,
            "name": name,
            "columns": list(columns),
            "started": started,
            "host": host,
            "pid": pid,
        }
    ).encode("utf-8")


def encode_sample(
    run: str, seq: int, t: float, values: Sequence[JsonNumber | None]
) -> bytes:
    """
    Encode one sample, whose values must already have passed through
    :func:`to_json_number`.

    The text is built directly rather than with :mod:`json`, which is several
    times slower. This is valid JSON because ``repr`` of an int or a finite
    float is a JSON number and a run id contains only hex digits and dashes.
    """
    body = ",".join(["null" if value is None else repr(value) for value in values])
    return (
        f'{{"v":{PROTOCOL_VERSION},"type":"sample","run":"{run}",'
        f'"seq":{seq},"t":{t!r},"values":[{body}]}}'
    ).encode("ascii")


def largest_sample_size(run: str, column_count: int) -> int:
    """
    Return the size in bytes of the longest sample a run with
    ``column_count`` columns can send, with every value at its longest.
    """
    values = [_LONGEST_FLOAT] * column_count
    return len(encode_sample(run, 2**63 - 1, time.time(), values))
