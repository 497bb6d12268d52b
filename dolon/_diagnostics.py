"""
Built-in diagnostics: callables that return one number about the traced
process or machine, named after the column they fill.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import time
import tracemalloc
from collections.abc import Callable

import psutil

_log = logging.getLogger(__name__)

_BYTES_PER_MB = 1024 * 1024

#: Calls of a rate diagnostic closer together than this many seconds return
#: the previous value, so that two tracers sharing it get sensible numbers.
_MIN_RATE_WINDOW = 0.1

_warned_tracemalloc_off = False
_process: psutil.Process | None = None
_proc_stat_fd: int | None = None


def _current_process() -> psutil.Process:
    # A forked child gets its own Process object.
    global _process
    if _process is None or _process.pid != os.getpid():
        _process = psutil.Process()
    return _process


def mem_allocation() -> float | None:
    """
    Return the size of the memory blocks that tracemalloc traces, in MB
    (2**20 bytes).

    Return ``None``, and log a warning the first time, when tracemalloc is
    not tracing; call :func:`tracemalloc.start` early in the program.
    """
    global _warned_tracemalloc_off
    if not tracemalloc.is_tracing():
        if not _warned_tracemalloc_off:
            _warned_tracemalloc_off = True
            _log.warning(
                "mem_allocation sends null because tracemalloc is not tracing; "
                "call tracemalloc.start() at the start of the program"
            )
        return None
    current, _peak = tracemalloc.get_traced_memory()
    return current / _BYTES_PER_MB


def active_tasks() -> int:
    """
    Return the number of tasks of the running event loop that are not done,
    the tracer's own task included.
    """
    return len(asyncio.all_tasks())


class _RateDiagnostic:
    """
    A diagnostic that returns ``100 * busy / total`` over the time since its
    previous call, from two counters read by ``read``.
    """

    __name__: str

    def __init__(
        self, name: str, read: Callable[[], tuple[float, float]], doc: str
    ) -> None:
        self.__name__ = name
        self.__doc__ = doc
        self._read = read
        self._last_time = time.monotonic()
        self._last_counters = read()
        self._last_value: float | None = None

    def dolon_prime(self) -> None:
        """
        Start a new measuring window, so that the next call covers only the
        time since now.
        """
        self._last_time = time.monotonic()
        self._last_counters = self._read()

    def __call__(self) -> float | None:
        now = time.monotonic()
        if now - self._last_time < _MIN_RATE_WINDOW:
            return self._last_value
        busy, total = self._read()
        last_busy, last_total = self._last_counters
        self._last_time = now
        self._last_counters = (busy, total)
        if total <= last_total:
            return self._last_value
        self._last_value = 100.0 * max(0.0, busy - last_busy) / (total - last_total)
        return self._last_value

    def __repr__(self) -> str:
        return f"<dolon diagnostic {self.__name__}>"


def _read_proc_stat() -> tuple[float, float] | None:
    # Reads the "cpu" line of /proc/stat (Linux) with one pread on a file
    # descriptor kept open, several times faster than psutil.cpu_times().
    # Its first eight fields are user, nice, system, idle, iowait, irq,
    # softirq and steal time; guest time is already counted in user time.
    global _proc_stat_fd
    if _proc_stat_fd is None:
        if not sys.platform.startswith("linux"):
            return None
        try:
            _proc_stat_fd = os.open("/proc/stat", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            _proc_stat_fd = -1
    if _proc_stat_fd < 0:
        return None
    try:
        data = os.pread(_proc_stat_fd, 512, 0)
        ticks = [int(field) for field in data.split(b"\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    if len(ticks) < 5:
        return None
    total = float(sum(ticks))
    return total - ticks[3] - ticks[4], total


def _read_machine_cpu() -> tuple[float, float]:
    # psutil's cpu_percent() keeps one window for the whole process, so two
    # callers would shorten each other's windows; this reads the counters.
    counters = _read_proc_stat()
    if counters is not None:
        return counters
    times = psutil.cpu_times()._asdict()
    total = sum(times.values())
    # On Linux, guest time is also counted in user and nice time.
    total -= times.get("guest", 0.0) + times.get("guest_nice", 0.0)
    idle = times.get("idle", 0.0) + times.get("iowait", 0.0)
    return total - idle, total


def _read_process_cpu() -> tuple[float, float]:
    times = _current_process().cpu_times()
    return times.user + times.system, time.monotonic()


cpu_percent = _RateDiagnostic(
    "cpu_percent",
    _read_machine_cpu,
    "Percentage of the whole machine's CPU time (all cores together, 0 to "
    "100) that was busy since the previous sample.",
)

process_cpu_percent = _RateDiagnostic(
    "process_cpu_percent",
    _read_process_cpu,
    "CPU time that this process used since the previous sample, in percent "
    "of one core; a process running on several cores exceeds 100.",
)


def memory_use() -> float:
    """
    Return this process's resident set size (RSS) in MB (2**20 bytes).

    This is the name the earlier dolon release used; :func:`rss_mb` returns
    the same value.
    """
    return float(_current_process().memory_info().rss) / _BYTES_PER_MB


def rss_mb() -> float:
    """
    Return this process's resident set size (RSS) in MB (2**20 bytes).
    """
    return float(_current_process().memory_info().rss) / _BYTES_PER_MB


def virtual_memory_percent() -> float:
    """
    Return the percentage of the machine's memory in use, as
    :func:`psutil.virtual_memory` reports it.
    """
    return float(psutil.virtual_memory().percent)


async def event_loop_lag_ms() -> float:
    """
    Return how many milliseconds the event loop took to run a callback
    scheduled to run at once; a busy or blocked loop makes this grow.
    """
    loop = asyncio.get_running_loop()
    ran: asyncio.Future[float] = loop.create_future()
    scheduled = time.perf_counter()

    def _record() -> None:
        if not ran.done():
            ran.set_result(time.perf_counter())

    loop.call_soon(_record)
    return (await ran - scheduled) * 1000.0


def gc_collections() -> int:
    """
    Return the number of garbage collections run since the interpreter
    started, all generations together.
    """
    return sum(generation["collections"] for generation in gc.get_stats())


def open_fds() -> int:
    """
    Return the number of file descriptors this process has open (on Windows,
    the number of handles).
    """
    process = _current_process()
    if hasattr(process, "num_fds"):
        return int(process.num_fds())
    # psutil offers num_handles() instead of num_fds() on Windows only.
    return int(process.num_handles())  # type: ignore[attr-defined,unused-ignore]


def thread_count() -> int:
    """
    Return the number of operating system threads of this process, including
    threads that Python did not start.
    """
    return int(_current_process().num_threads())
