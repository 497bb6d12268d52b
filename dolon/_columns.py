"""
Columns of a tracer: naming diagnostics and turning their results into
sample values.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Union

from ._errors import ConfigurationError
from ._protocol import (
    MAX_COLUMN_NAME_LENGTH,
    MAX_COLUMNS,
    InvalidValue,
    JsonNumber,
    to_json_number,
)
from ._ratelimit import RateLimitedLog

#: A callable that returns one value (or, with a ``dolon_columns`` attribute,
#: one value per column), directly or through an awaitable.
# Union rather than |, because this alias is evaluated at run time on
# Python 3.9 too.
Diagnostic = Callable[[], Union[object, Awaitable[object]]]  # noqa: UP007


def column_name(diagnostic: object) -> str:
    """
    Return the column name of a diagnostic: its ``__name__``, or for a
    callable object without one, its class name.
    """
    name = getattr(diagnostic, "__name__", None)
    if isinstance(name, str):
        return name
    return type(diagnostic).__name__


class Source:
    """
    One diagnostic of a tracer and the columns it fills.
    """

    __slots__ = ("columns", "diagnostic", "label", "pending")

    def __init__(self, diagnostic: Diagnostic) -> None:
        if not callable(diagnostic):
            raise ConfigurationError(
                f"diagnostic {diagnostic!r} is not callable; pass a function "
                "or a callable object"
            )
        self.diagnostic = diagnostic
        self.label = column_name(diagnostic)
        multiple = getattr(diagnostic, "dolon_columns", None)
        if multiple is None:
            self.columns: list[str] = [self.label]
        elif isinstance(multiple, str) or not isinstance(multiple, Sequence):
            raise ConfigurationError(
                f"dolon_columns of diagnostic {self.label!r} must be a sequence "
                f"of column names, not {type(multiple).__name__}"
            )
        else:
            self.columns = [str(column) for column in multiple]
        # The task of an asynchronous call that outlived its time limit.
        self.pending: Any = None

    def values(self, result: object, log: RateLimitedLog) -> list[JsonNumber | None]:
        """
        Convert the result of one call to one value per column, replacing
        what the protocol cannot carry with ``None`` and logging why.
        """
        if len(self.columns) == 1 and not hasattr(self.diagnostic, "dolon_columns"):
            return [self._convert(self.columns[0], result, log)]

        if isinstance(result, (str, bytes)) or not isinstance(result, Sequence):
            if result is not None:
                log.warning(
                    ("shape", self.label),
                    "Diagnostic %r returned %s instead of a sequence of %d "
                    "values; sending null for its columns",
                    self.label,
                    type(result).__name__,
                    len(self.columns),
                )
            return [None] * len(self.columns)
        if len(result) != len(self.columns):
            log.warning(
                ("shape", self.label),
                "Diagnostic %r returned %d values for %d columns; sending null "
                "for its columns",
                self.label,
                len(result),
                len(self.columns),
            )
            return [None] * len(self.columns)
        return [
            self._convert(column, value, log)
            for column, value in zip(self.columns, result)
        ]

    @staticmethod
    def _convert(column: str, value: object, log: RateLimitedLog) -> JsonNumber | None:
        try:
            return to_json_number(value)
        except InvalidValue as error:
            log.warning(
                ("value", column),
                "Column %r gets null because its diagnostic returned an invalid "
                "value: %s",
                column,
                error,
            )
            return None


def is_utf8_encodable(text: str) -> bool:
    """
    Return whether ``text`` encodes as UTF-8; a lone surrogate does not.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_columns(columns: Sequence[str]) -> None:
    """
    Check the column names against the limits of the protocol.

    :raise ConfigurationError: for no columns, too many, a name that is empty
        or too long, or a name used twice.
    """
    if not columns:
        raise ConfigurationError(
            "a tracer needs at least one diagnostic or @profiler function"
        )
    if len(columns) > MAX_COLUMNS:
        raise ConfigurationError(
            f"a tracer may have at most {MAX_COLUMNS} columns, not {len(columns)}"
        )
    seen = set()
    for column in columns:
        if not 1 <= len(column) <= MAX_COLUMN_NAME_LENGTH:
            raise ConfigurationError(
                f"column name {column[:40]!r} must be 1 to "
                f"{MAX_COLUMN_NAME_LENGTH} characters long"
            )
        if not is_utf8_encodable(column):
            raise ConfigurationError(
                f"column name {column[:40]!r} cannot be encoded as UTF-8"
            )
        if column in seen:
            raise ConfigurationError(
                f"two diagnostics fill the column {column!r}; give one of them "
                "another __name__"
            )
        seen.add(column)
