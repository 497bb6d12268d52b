"""
The tracer: samples its diagnostics at a fixed interval and sends each sample
to mnemic as one UDP datagram.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _profiler
from ._columns import Diagnostic, Source, check_columns, is_utf8_encodable
from ._errors import ConfigurationError, DolonError
from ._protocol import (
    ANNOUNCE_INTERVAL,
    MAX_DATAGRAM_BYTES,
    MAX_HOST_LENGTH,
    MAX_NAME_LENGTH,
    JsonNumber,
    encode_announcement,
    encode_sample,
    largest_sample_size,
)
from ._ratelimit import RateLimitedLog
from ._sender import UdpSender
from ._signing import SIGNATURE_BYTES, Secret, resolve_secret

if TYPE_CHECKING:
    # Annotations only: typing.Self is new in Python 3.11.
    from typing_extensions import Self

_log = logging.getLogger(__name__)

#: Maximum wait, in seconds, between two attempts to resolve a host that
#: failed to resolve.
_MAX_RESOLVE_BACKOFF = ANNOUNCE_INTERVAL


def _retrieve_result(future: asyncio.Future[Any]) -> None:
    # Marks the exception of an abandoned task as retrieved, so that asyncio
    # does not log it a second time when the task is collected.
    if not future.cancelled():
        future.exception()


class Tracer:
    """
    Sample diagnostics every ``interval`` seconds and send them to the mnemic
    service at ``host``:``port``.

    Use ``await tracer.run()`` to trace until the task is cancelled, or
    ``async with tracer:`` to trace in a background task for the duration of
    the block.

    :param name: tracer name; every run of the program is a new run under it.
    :param interval: seconds between two samples.
    :param diagnostics: callables returning a number, or an awaitable of one.
        Each one fills the column named by its ``__name__``.
    :param verbose: log every sample at INFO level.
    :param time_limit: seconds an asynchronous diagnostic may take before its
        column gets null for that sample; half the interval by default.
    :param profile: add the columns of every function decorated with
        :func:`profiler` before this tracer was made.
    :param secret: the shared secret of a mnemic started with
        ``--secret-file``, to sign every datagram with. It defaults to
        ``DOLON_SECRET``; when that is unset too, nothing is signed.
    :raise ConfigurationError: for an invalid argument.
    """

    def __init__(
        self,
        name: str,
        interval: float,
        host: str,
        port: int,
        *diagnostics: Diagnostic,
        verbose: bool = False,
        time_limit: float | None = None,
        profile: bool = True,
        secret: Secret = None,
    ) -> None:
        if (
            not isinstance(name, str)
            or not 1 <= len(name) <= MAX_NAME_LENGTH
            or not is_utf8_encodable(name)
        ):
            raise ConfigurationError(
                f"tracer name {name!r} must be a string of 1 to "
                f"{MAX_NAME_LENGTH} characters that encodes as UTF-8"
            )
        self.interval = _positive_seconds("interval", interval)
        if time_limit is None:
            self.time_limit = self.interval / 2
        else:
            self.time_limit = _positive_seconds("time_limit", time_limit)
        if not isinstance(host, str) or not host:
            raise ConfigurationError(f"host {host!r} must be a non-empty string")
        if (
            isinstance(port, bool)
            or not isinstance(port, int)
            or not (0 < port < 65536)
        ):
            raise ConfigurationError(f"port {port!r} must be an integer 1 to 65535")

        self.name = name
        self.host = host
        self.port = port
        self.verbose = verbose
        self._sources = [Source(diagnostic) for diagnostic in diagnostics]
        self._profiled = _profiler.registered() if profile else []
        self.columns: list[str] = [
            column for source in self._sources for column in source.columns
        ]
        for stats in self._profiled:
            self.columns.extend(stats.columns)
        check_columns(self.columns)
        self._secret = resolve_secret(secret)
        #: Largest encoded message that fits in a datagram with its signature.
        self.max_message_bytes = MAX_DATAGRAM_BYTES - (
            SIGNATURE_BYTES if self._secret is not None else 0
        )

        #: Run id of the current or last run, a UUID in canonical text form.
        self.run_id: str | None = None
        self._log = RateLimitedLog(_log)
        self._task: asyncio.Task[None] | None = None
        self._running = False

    async def run(self) -> None:
        """
        Trace until cancelled, as a new run with a new run id.

        Returns at once, after logging an error, when a sample of this
        tracer's columns could exceed the datagram size limit.
        """
        if self._running:
            raise DolonError(f"tracer {self.name!r} is already running")
        self.run_id = str(uuid.uuid4())
        if not self._fits_in_datagram(self.run_id):
            return

        self._running = True
        sender = UdpSender(self.host, self.port, self._log, secret=self._secret)
        profile_columns = [_profiler.ProfileColumns(s) for s in self._profiled]
        sources = self._sources + [Source(columns) for columns in profile_columns]
        run = _Run(self, sender, self.run_id, sources)
        try:
            await run.trace()
        finally:
            run.close()
            sender.close()
            for columns in profile_columns:
                columns.close()
            self._running = False

    def _fits_in_datagram(self, run_id: str) -> bool:
        announcement = encode_announcement(
            run_id, self.name, self.columns, time.time(), "h" * MAX_HOST_LENGTH, 0
        )
        sample_size = largest_sample_size(run_id, len(self.columns))
        for message, size in (
            ("announcement", len(announcement)),
            ("sample", sample_size),
        ):
            if size > self.max_message_bytes:
                _log.error(
                    "Tracer %r not started: with %d columns its %s can take "
                    "%d bytes, more than the %d-byte limit of a %sdatagram; "
                    "use fewer columns or shorter names",
                    self.name,
                    len(self.columns),
                    message,
                    size,
                    self.max_message_bytes,
                    "signed " if self._secret is not None else "",
                )
                return False
        return True

    async def __aenter__(self) -> Self:
        self._task = asyncio.ensure_future(self.run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """
        Stop the background task started by ``async with`` and wait until it
        closed its socket.
        """
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait({task})
        _retrieve_result(task)


def _positive_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} {value!r} must be a number of seconds")
    if not (math.isfinite(value) and value > 0):
        raise ConfigurationError(f"{name} {value!r} must be a positive number")
    return float(value)


class _Run:
    """
    The state of one run of a tracer: its sequence numbers, the pending host
    resolution and the loop that samples and sends.
    """

    def __init__(
        self,
        tracer: Tracer,
        sender: UdpSender,
        run_id: str,
        sources: Sequence[Source],
    ) -> None:
        self._tracer = tracer
        self._sender = sender
        self._sources = sources
        self._log = tracer._log
        self._run_id = run_id
        self._seq = 0
        self._started = time.time()
        self._host = socket.gethostname()[:MAX_HOST_LENGTH]
        self._announced_at = -math.inf
        self._resolve_task: asyncio.Task[bool] | None = None
        self._resolve_at = 0.0
        self._resolve_backoff = 1.0

    async def trace(self) -> None:
        loop = asyncio.get_running_loop()
        for source in self._sources:
            self._prime(source)
        _log.info(
            "Tracer %r started run %s, sending to %s:%d every %g s",
            self._tracer.name,
            self._run_id,
            self._sender.host,
            self._sender.port,
            self._tracer.interval,
        )

        interval = self._tracer.interval
        next_tick = loop.time()
        while True:
            self._maintain(loop.time())
            next_tick += interval
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
            late = loop.time() - next_tick
            if late > interval:
                # Skip the ticks the loop was too busy to run.
                next_tick += (late // interval) * interval
            try:
                await self._sample()
            # A bug in dolon must not end the tracing of the program.
            except Exception as error:  # noqa: BLE001
                self._log.error(
                    "sample failed",
                    "Tracer %r failed to send a sample",
                    self._tracer.name,
                    exc_info=error,
                )

    def _prime(self, source: Source) -> None:
        prime = getattr(source.diagnostic, "dolon_prime", None)
        if not callable(prime):
            return
        try:
            prime()
        # A diagnostic may raise anything; its first sample measures from
        # its previous window instead.
        except Exception as error:  # noqa: BLE001
            self._log.error(
                ("raised", source.label),
                "Diagnostic %r raised %s in dolon_prime; its first value "
                "may cover more than one interval",
                source.label,
                type(error).__name__,
                exc_info=error,
            )

    def _maintain(self, now: float) -> None:
        if self._resolve_task is None and now >= self._resolve_at:
            self._resolve_task = asyncio.ensure_future(self._sender.resolve())
            self._resolve_task.add_done_callback(self._resolved)
        if self._sender.connected and now - self._announced_at >= ANNOUNCE_INTERVAL:
            self._announce(now)

    def _resolved(self, task: asyncio.Task[bool]) -> None:
        self._resolve_task = None
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._log.error(
                "resolve failed",
                "Resolving mnemic host %r failed unexpectedly",
                self._sender.host,
                exc_info=error,
            )
        now = asyncio.get_running_loop().time()
        if self._sender.connected:
            self._resolve_backoff = 1.0
            self._resolve_at = now + ANNOUNCE_INTERVAL
        else:
            self._resolve_at = now + self._resolve_backoff
            self._resolve_backoff = min(2 * self._resolve_backoff, _MAX_RESOLVE_BACKOFF)
        if error is None and task.result():
            # A new address may be a server that has not heard of this run.
            self._announce(now)

    def _announce(self, now: float) -> None:
        self._announced_at = now
        self._sender.send(
            encode_announcement(
                self._run_id,
                self._tracer.name,
                self._tracer.columns,
                self._started,
                self._host,
                os.getpid(),
            )
        )

    async def _sample(self) -> None:
        sampled_at = time.time()
        values = await self._collect()
        seq = self._seq
        self._seq += 1
        datagram = encode_sample(self._run_id, seq, sampled_at, values)
        if len(datagram) > self._tracer.max_message_bytes:
            # Not expected: the size of the longest sample was checked at start.
            self._log.error(
                "oversize",
                "Dropped sample %d of tracer %r: %d bytes exceed the %d-byte limit",
                seq,
                self._tracer.name,
                len(datagram),
                self._tracer.max_message_bytes,
            )
            return
        self._sender.send(datagram)
        if self._tracer.verbose:
            _log.info(
                "Tracer %r sample %d: %s",
                self._tracer.name,
                seq,
                dict(zip(self._tracer.columns, values)),
            )

    async def _collect(self) -> list[JsonNumber | None]:
        results: list[object] = [None] * len(self._sources)
        waiting: dict[asyncio.Future[object], int] = {}
        for index, source in enumerate(self._sources):
            if source.pending is not None:
                if not source.pending.done():
                    self._log.warning(
                        ("still running", source.label),
                        "Diagnostic %r is still running from an earlier "
                        "sample; sending null for it",
                        source.label,
                    )
                    continue
                source.pending = None
            try:
                result = self._call(source)
            # A diagnostic may raise anything; its column gets null instead.
            except Exception as error:  # noqa: BLE001
                self._log.error(
                    ("raised", source.label),
                    "Diagnostic %r raised %s; sending null for it",
                    source.label,
                    type(error).__name__,
                    exc_info=error,
                )
                continue
            if inspect.isawaitable(result):
                waiting[asyncio.ensure_future(result)] = index
            else:
                results[index] = result

        if waiting:
            await self._wait_for(waiting, results)

        values: list[JsonNumber | None] = []
        for source, result in zip(self._sources, results):
            values.extend(source.values(result, self._log))
        return values

    def _call(self, source: Source) -> object:
        started = time.perf_counter()
        result = source.diagnostic()
        elapsed = time.perf_counter() - started
        if elapsed > self._tracer.time_limit:
            self._log.warning(
                ("blocked", source.label),
                "Diagnostic %r blocked the event loop for %.3f s; make it "
                "faster or asynchronous",
                source.label,
                elapsed,
            )
        return result

    async def _wait_for(
        self, waiting: dict[asyncio.Future[object], int], results: list[object]
    ) -> None:
        try:
            done, not_done = await asyncio.wait(
                waiting, timeout=self._tracer.time_limit
            )
        except BaseException:
            for future in waiting:
                future.cancel()
            raise

        for future in done:
            source = self._sources[waiting[future]]
            if future.cancelled():
                continue
            error = future.exception()
            if error is None:
                results[waiting[future]] = future.result()
            elif isinstance(error, Exception):
                self._log.error(
                    ("raised", source.label),
                    "Diagnostic %r raised %s; sending null for it",
                    source.label,
                    type(error).__name__,
                    exc_info=error,
                )
        for future in not_done:
            source = self._sources[waiting[future]]
            future.cancel()
            future.add_done_callback(_retrieve_result)
            source.pending = future
            self._log.warning(
                ("timed out", source.label),
                "Diagnostic %r timed out after %.3g s; sending null for it",
                source.label,
                self._tracer.time_limit,
            )

    def close(self) -> None:
        if self._resolve_task is not None:
            self._resolve_task.cancel()
            self._resolve_task = None
        for source in self._sources:
            if source.pending is not None:
                source.pending.cancel()
                source.pending = None
