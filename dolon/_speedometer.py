"""
Speedometer: a diagnostic that turns a growing counter into a rate per
second.
"""

from __future__ import annotations

from time import monotonic
from typing import Callable

from ._errors import ConfigurationError

#: Calls closer together than this many seconds return the previous rate,
#: so that two tracers sharing a speedometer do not shorten each other's
#: windows to nothing.
_MIN_WINDOW = 0.1


class Speedometer:
    """
    Rate per second at which a counter grew since the previous sample.

    Count events with :meth:`add`, or pass ``counter``, a callable that
    returns the current value of a counter kept elsewhere (bytes read, rows
    written). The speedometer is a diagnostic named ``name``::

        requests = Speedometer("requests_per_s")
        ...
        requests.add()
        ...
        await start_tracer("api", 1, "localhost", 12013, requests)

    The first sample of a tracer covers the time since the tracer started.
    A counter that goes down (it was reset) gives null for that sample and
    the next one measures from the new value.

    NOTE: :meth:`add` takes no lock, so adds from several threads at the
    same moment can lose a count.
    """

    __name__: str

    def __init__(self, name: str, counter: Callable[[], float] | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"speedometer name {name!r} must not be empty")
        if counter is not None and not callable(counter):
            raise ConfigurationError(f"counter {counter!r} is not callable")
        self.__name__ = name
        self._counter = counter
        self._count = 0.0
        self._last_time = monotonic()
        self._last_value: float | None = None if counter is not None else 0.0
        self._last_rate: float | None = None

    @property
    def count(self) -> float:
        """
        The total of all :meth:`add` calls.
        """
        return self._count

    def add(self, count: float = 1) -> None:
        """
        Add ``count`` events to the counter.
        """
        self._count += count

    def _read(self) -> float:
        if self._counter is None:
            return self._count
        return float(self._counter())

    def dolon_prime(self) -> None:
        """
        Start a new measuring window at the current counter value.
        """
        self._last_value = self._read()
        self._last_time = monotonic()

    def __call__(self) -> float | None:
        now = monotonic()
        elapsed = now - self._last_time
        if elapsed < _MIN_WINDOW and self._last_value is not None:
            return self._last_rate

        value = self._read()
        last_value = self._last_value
        self._last_value = value
        self._last_time = now
        if last_value is None or value < last_value:
            self._last_rate = None
        else:
            self._last_rate = (value - last_value) / elapsed
        return self._last_rate

    def __repr__(self) -> str:
        return f"<Speedometer {self.__name__}>"
