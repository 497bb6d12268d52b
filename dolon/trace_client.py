"""
Trace a running program: sample diagnostics at a fixed interval and send them
to the mnemic service, which stores and charts them.

A typical program starts the tracer as a task next to its own work::

    asyncio.ensure_future(
        trace_client.start_tracer(
            "my-service", 1, "localhost", 12013,
            trace_client.mem_allocation, trace_client.cpu_percent,
        )
    )
"""

from __future__ import annotations

from ._columns import Diagnostic
from ._diagnostics import (
    active_tasks,
    cpu_percent,
    event_loop_lag_ms,
    gc_collections,
    mem_allocation,
    memory_use,
    open_fds,
    process_cpu_percent,
    rss_mb,
    thread_count,
    virtual_memory_percent,
)
from ._errors import ConfigurationError, DolonError
from ._postgres import PostgresDiagnostics
from ._profiler import profiler
from ._protocol import ANNOUNCE_INTERVAL, MAX_DATAGRAM_BYTES, PROTOCOL_VERSION
from ._speedometer import Speedometer
from ._thread import ThreadTracer
from ._tracer import Tracer

__all__ = [
    "ANNOUNCE_INTERVAL",
    "MAX_DATAGRAM_BYTES",
    "PROTOCOL_VERSION",
    "PostgresDiagnostics",
    "Speedometer",
    "ConfigurationError",
    "Diagnostic",
    "DolonError",
    "ThreadTracer",
    "Tracer",
    "active_tasks",
    "cpu_percent",
    "event_loop_lag_ms",
    "gc_collections",
    "mem_allocation",
    "memory_use",
    "open_fds",
    "process_cpu_percent",
    "profiler",
    "rss_mb",
    "start_thread_tracer",
    "start_tracer",
    "thread_count",
    "virtual_memory_percent",
]


def _split_verbose(
    diagnostics: tuple[Diagnostic | bool, ...], verbose: bool
) -> tuple[bool, tuple[Diagnostic, ...]]:
    # The earlier release's signature was (name, frequency, host, port,
    # verbose, *diagnostics); a bool in that position is still verbose.
    if diagnostics and isinstance(diagnostics[0], bool):
        return diagnostics[0] or verbose, diagnostics[1:]  # type: ignore[return-value]
    return verbose, diagnostics  # type: ignore[return-value]


async def start_tracer(
    name: str,
    frequency: float,
    host: str,
    port: int,
    *diagnostics: Diagnostic | bool,
    verbose: bool = False,
    time_limit: float | None = None,
    profile: bool = True,
    secret: str | bytes | None = None,
) -> None:
    """
    Sample ``diagnostics`` every ``frequency`` seconds and send each sample
    to mnemic at ``host``:``port`` over UDP, until the calling task is
    cancelled.

    Despite its name, ``frequency`` is the sampling interval in seconds: 1
    samples once a second and 0.5 twice a second, as in the earlier release.

    A diagnostic is a callable (or coroutine function) returning a number or
    ``None``; its ``__name__`` names its column. A diagnostic that raises,
    times out or returns something other than a finite number sends null for
    that sample and logs a rate-limited message, and tracing goes on.
    Network and name resolution failures are logged the same way and never
    reach the program.

    :param verbose: log every sample at INFO level on the ``dolon`` loggers.
        A bool passed as the first diagnostic is taken as ``verbose``, the
        earlier release's positional form.
    :param time_limit: seconds an asynchronous diagnostic may run before its
        column gets null for that sample; half the interval by default.
    :param profile: add the columns of every function decorated with
        :func:`profiler` so far.
    :param secret: the shared secret of a mnemic started with
        ``--secret-file``, to sign every datagram with (HMAC-SHA256). By
        default the ``DOLON_SECRET`` environment variable, and no signing
        when that is unset too.
    :raise ConfigurationError: at once, for an invalid argument.
    """
    tracer = _build_tracer(name, frequency, host, port, diagnostics, verbose,
                           time_limit, profile, secret)
    await tracer.run()


def start_thread_tracer(
    name: str,
    frequency: float,
    host: str,
    port: int,
    *diagnostics: Diagnostic | bool,
    verbose: bool = False,
    time_limit: float | None = None,
    profile: bool = True,
    secret: str | bytes | None = None,
) -> ThreadTracer:
    """
    Start a tracer in a daemon thread with its own event loop, for programs
    that do not run asyncio, and return its handle.

    The arguments are those of :func:`start_tracer`. Call ``stop()`` on the
    handle, or use it in a ``with`` block, to stop the tracer.

    :raise ConfigurationError: at once, for an invalid argument.
    """
    tracer = _build_tracer(name, frequency, host, port, diagnostics, verbose,
                           time_limit, profile, secret)
    handle = ThreadTracer(tracer)
    handle.start()
    return handle


def _build_tracer(
    name: str,
    frequency: float,
    host: str,
    port: int,
    diagnostics: tuple[Diagnostic | bool, ...],
    verbose: bool,
    time_limit: float | None,
    profile: bool,
    secret: str | bytes | None,
) -> Tracer:
    # The shared body of start_tracer and start_thread_tracer.
    verbose, callables = _split_verbose(diagnostics, verbose)
    return Tracer(
        name,
        frequency,
        host,
        port,
        *callables,
        verbose=verbose,
        time_limit=time_limit,
        profile=profile,
        secret=secret,
    )
