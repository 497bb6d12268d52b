"""
The ``@profiler`` decorator: counts and times the calls of a function, and
gives every tracer a set of columns for each decorated function.
"""

from __future__ import annotations

import functools
import inspect
import math
import random
import threading
from array import array
from collections.abc import Sequence
from time import perf_counter
from typing import Any, Callable, TypeVar, overload

from ._errors import ConfigurationError
from ._protocol import JsonNumber

_F = TypeVar("_F", bound=Callable[..., Any])

#: Durations kept per function and tracer between two samples. Past this
#: many calls, a uniform random sample of this size is kept for the 95th
#: percentile, so that memory stays bounded at any call rate.
WINDOW_CAPACITY = 2048

#: Suffixes of the columns of one decorated function, in column order.
COLUMN_SUFFIXES = (
    "hits",
    "active",
    "avg_ms",
    "calls",
    "p95_ms",
    "max_ms",
    "errors",
)


class _Window(array):  # type: ignore[type-arg]
    """
    Durations in seconds of the calls that ended since the last sample of one
    tracer, with the state needed once the window is full.

    An array of C doubles rather than a list, so that a call stores its
    duration without keeping a float object. The float then returns to
    CPython's free list for the next call, and no allocation is made for
    tracemalloc to trace. ``skip`` is a float for the same reason.
    """

    __slots__ = ("overflow_max", "skip", "weight")

    def __new__(cls) -> _Window:
        return super().__new__(cls, "d")  # type: ignore[return-value]

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.overflow_max = 0.0
        # Reservoir sampling with geometric skips ("Algorithm L", Kim-Hung Li,
        # ACM TOMS 20(4), 1994): a full window draws random numbers only at
        # the calls whose duration replaces a kept one, not at every call.
        self.weight = math.exp(math.log(_random()) / WINDOW_CAPACITY)
        self.skip = self._next_skip()

    def _next_skip(self) -> float:
        # The floor of a positive float, computed without making an int.
        skip = math.log(_random()) / math.log1p(-self.weight)
        return skip - skip % 1.0

    def overflow(self, elapsed: float) -> None:
        """
        Record a duration in a full window, keeping the exact maximum and a
        uniform random sample of all durations.
        """
        if elapsed > self.overflow_max:
            self.overflow_max = elapsed
        self.skip -= 1.0
        if self.skip < 0.0:
            # random() rather than randrange(), which makes several ints.
            self[int(random.random() * WINDOW_CAPACITY)] = elapsed
            self.weight *= math.exp(math.log(_random()) / WINDOW_CAPACITY)
            self.skip = self._next_skip()

    def take(self) -> tuple[list[float], float]:
        """
        Return the kept durations and the maximum of the dropped ones, and
        empty the window.
        """
        durations = self.tolist()
        overflow_max = self.overflow_max
        del self[:]
        self._reset()
        return durations, overflow_max


def _random() -> float:
    # A float in (0, 1), so that its logarithm is finite.
    return 1.0 - random.random()


class Stats:
    """
    Call counters of one decorated function.

    ``hits`` and ``completed`` are floats, because CPython reuses freed float
    objects while every int above 256 is a new allocation, and tracemalloc
    makes each allocation cost several hundred ns (bench/dolon_profiler.py).
    The counts stay exact up to 2**53 calls.

    NOTE: the counters are updated without a lock to keep calls cheap, so
    calls that end at the same moment in two threads can lose an update.
    """

    __slots__ = ("completed", "errors", "hits", "name", "total_time", "windows")

    def __init__(self, name: str) -> None:
        self.name = name
        #: Calls started.
        self.hits = 0.0
        #: Calls ended, by returning, raising or being cancelled.
        self.completed = 0.0
        #: Calls that raised an Exception (cancellation does not count).
        self.errors = 0
        #: Sum of the durations of the ended calls, in seconds.
        self.total_time = 0.0
        #: One window per running tracer. A tracer replaces the tuple instead
        #: of changing it, so a call that is looping over it is not disturbed.
        self.windows: tuple[_Window, ...] = ()

    @property
    def columns(self) -> list[str]:
        """
        Column names of this function.
        """
        return [f"{self.name}.{suffix}" for suffix in COLUMN_SUFFIXES]


_registry: dict[str, Stats] = {}
_registry_lock = threading.Lock()


def registered() -> list[Stats]:
    """
    Return the counters of every decorated function, in decoration order.
    """
    with _registry_lock:
        return list(_registry.values())


def _stats_for(name: str) -> Stats:
    # Functions of the same name share counters, so that a decorator applied
    # to a nested function at every call does not grow the registry.
    with _registry_lock:
        stats = _registry.get(name)
        if stats is None:
            stats = _registry[name] = Stats(name)
        return stats


def _record(windows: tuple[_Window, ...], elapsed: float) -> None:
    # An index rather than a for loop, because a tuple iterator is one more
    # allocation per call, which tracemalloc makes costly.
    index = len(windows)
    while index:
        index -= 1
        window = windows[index]
        if len(window) < WINDOW_CAPACITY:
            window.append(elapsed)
        else:
            window.overflow(elapsed)


def _wrap_sync(func: Callable[..., Any], stats: Stats) -> Callable[..., Any]:
    @functools.wraps(func)
    def profiled(*args: Any, **kwargs: Any) -> Any:
        stats.hits += 1.0
        start = perf_counter()
        try:
            return func(*args, **kwargs)
        except Exception:
            stats.errors += 1
            raise
        finally:
            elapsed = perf_counter() - start
            stats.completed += 1.0
            stats.total_time += elapsed
            if stats.windows:
                _record(stats.windows, elapsed)

    return profiled


def _wrap_async(func: Callable[..., Any], stats: Stats) -> Callable[..., Any]:
    @functools.wraps(func)
    async def profiled(*args: Any, **kwargs: Any) -> Any:
        stats.hits += 1.0
        start = perf_counter()
        try:
            return await func(*args, **kwargs)
        except Exception:
            stats.errors += 1
            raise
        finally:
            elapsed = perf_counter() - start
            stats.completed += 1.0
            stats.total_time += elapsed
            if stats.windows:
                _record(stats.windows, elapsed)

    return profiled


def _decorate(func: Any, name: str | None) -> Any:
    if isinstance(func, (classmethod, staticmethod)):
        return type(func)(_decorate(func.__func__, name))
    if not callable(func):
        raise ConfigurationError(f"@profiler needs a function, not {func!r}")
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise ConfigurationError(
            f"@profiler cannot time generator function {func.__qualname__}, "
            "because its calls return before its body runs"
        )

    stats = _stats_for(name or str(getattr(func, "__qualname__", repr(func))))
    if inspect.iscoroutinefunction(func):
        return _wrap_async(func, stats)
    return _wrap_sync(func, stats)


@overload
def profiler(func: _F) -> _F: ...


@overload
def profiler(*, name: str | None = None) -> Callable[[_F], _F]: ...


def profiler(func: Any = None, *, name: str | None = None) -> Any:
    """
    Count and time the calls of a function or method, sync or async.

    Every tracer started afterwards gets seven columns for it, named
    ``<name>.<suffix>``, where the name is the function's qualified name
    unless ``name`` is given:

    - ``hits``: calls started since the function was decorated;
    - ``active``: calls running now (an awaiting coroutine counts);
    - ``avg_ms``: average duration of all ended calls, in ms;
    - ``calls``: calls that ended since the previous sample;
    - ``p95_ms``, ``max_ms``: 95th percentile and maximum duration of those
      calls, in ms, or null when there were none;
    - ``errors``: those calls that raised an exception.

    Exceptions, including cancellation, pass through unchanged; a cancelled
    call counts as ended but not as an error. Use it as ``@profiler`` or
    ``@profiler(name="...")``, above ``@classmethod`` or ``@staticmethod``
    too.
    """
    if func is None:
        return lambda decorated: _decorate(decorated, name)
    return _decorate(func, name)


def _percentile(sorted_values: Sequence[float], fraction: float) -> float:
    # Nearest-rank percentile.
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


class ProfileColumns:
    """
    The columns of one decorated function for one tracer run, as a
    diagnostic with ``dolon_columns``.
    """

    def __init__(self, stats: Stats) -> None:
        self.__name__ = stats.name
        self.dolon_columns = stats.columns
        self._stats = stats
        self._window = _Window()
        self._last_completed = int(stats.completed)
        self._last_errors = stats.errors
        stats.windows = (*stats.windows, self._window)

    def __call__(self) -> list[JsonNumber | None]:
        stats = self._stats
        durations, overflow_max = self._window.take()
        completed = int(stats.completed)
        hits = int(stats.hits)
        errors = stats.errors
        calls = completed - self._last_completed
        interval_errors = errors - self._last_errors
        self._last_completed = completed
        self._last_errors = errors

        average_ms = stats.total_time / completed * 1000 if completed else None
        p95_ms: float | None = None
        max_ms: float | None = None
        if durations:
            durations.sort()
            p95_ms = _percentile(durations, 0.95) * 1000
            max_ms = max(durations[-1], overflow_max) * 1000
        return [
            hits,
            max(0, hits - completed),
            average_ms,
            calls,
            p95_ms,
            max_ms,
            interval_errors,
        ]

    def close(self) -> None:
        """
        Stop collecting durations for this run.
        """
        self._stats.windows = tuple(
            window for window in self._stats.windows if window is not self._window
        )
