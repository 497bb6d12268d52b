"""
The UDP listener: decodes each datagram and hands valid messages to the writer.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import Any, Callable, Optional

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from ._metrics import Metrics
from ._protocol import (
    Announcement,
    InvalidDatagram,
    Message,
    Sample,
    decode_datagram,
)
from ._writer import Writer

# Runs remembered for checking samples against their columns. Older runs are
# forgotten first, so a flood of made-up run ids cannot grow memory.
MAX_KNOWN_RUNS = 100_000

# At most this many rejections are logged per interval; the rest are counted.
LOG_LIMIT_PER_INTERVAL = 10
LOG_INTERVAL_SECONDS = 60.0

# A known run's tracer name, column count and hash of its column names.
_RunShape = tuple[str, int, int]


class IngestProtocol(DatagramProtocol):
    """
    Validates datagrams, counts the invalid ones and queues the rest.
    """

    log = Logger()

    def __init__(
        self,
        writer: Writer,
        metrics: Metrics,
        clock: IReactorTime,
        decode: Callable[[bytes, float], Message] = decode_datagram,
    ) -> None:
        self._writer = writer
        self._metrics = metrics
        self._clock = clock
        # A SignedDecoder when a shared secret is configured.
        self._decode = decode
        self._runs: OrderedDict[uuid.UUID, _RunShape] = OrderedDict()
        self._log_window_start = 0.0
        self._logged_in_window = 0
        self._suppressed = 0
        self._summary_call: Optional[IDelayedCall] = None

    def stopProtocol(self) -> None:
        """
        Log the pending count of unlogged rejections now and cancel its timer.
        """
        if self._summary_call is not None and self._summary_call.active():
            self._summary_call.cancel()
            self._log_suppressed()

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Decode one datagram and queue it, or count and log why it was invalid.
        """
        self._metrics.datagrams_received += 1
        try:
            message = self._decode(datagram, self._clock.seconds())
        except InvalidDatagram as error:
            self._metrics.invalid[error.reason] += 1
            self._log_rejection(addr, error.reason, error.detail, len(datagram))
            return
        except Exception:
            # A decoder bug must not stop the listener.
            self._metrics.invalid["internal_error"] += 1
            self.log.failure("Unexpected error decoding a datagram from {peer}",
                             peer=_peer(addr))
            return

        if isinstance(message, Announcement):
            self._announce(message, addr, len(datagram))
        else:
            self._sample(message, addr, len(datagram))

    def _announce(self, announcement: Announcement, addr: Any, size: int) -> None:
        known = self._runs.get(announcement.run_id)
        # The shape contains a hash of the column names instead of the names,
        # so each remembered run costs a few bytes whatever its columns.
        shape = (announcement.name, len(announcement.columns),
                 hash(announcement.columns))
        if known is not None and known != shape:
            self._reject("run_conflict", "announced again with another name or"
                         " columns", addr, size)
            return
        self._remember(announcement.run_id, shape)
        if known is None:
            self._writer.add_announcement(announcement)

    def _sample(self, sample: Sample, addr: Any, size: int) -> None:
        known = self._runs.get(sample.run_id)
        if known is not None and known[1] != len(sample.values):
            self._reject("column_count", f"{len(sample.values)} values for"
                         f" {known[1]} columns", addr, size)
            return
        self._writer.add_sample(sample)

    def _remember(self, run_id: uuid.UUID, shape: _RunShape) -> None:
        self._runs[run_id] = shape
        self._runs.move_to_end(run_id)
        while len(self._runs) > MAX_KNOWN_RUNS:
            self._runs.popitem(last=False)

    def _reject(self, reason: str, detail: str, addr: Any, size: int) -> None:
        self._metrics.rejected[reason] += 1
        self._log_rejection(addr, reason, detail, size)

    def _log_rejection(self, addr: Any, reason: str, detail: str, size: int) -> None:
        now = self._clock.seconds()
        if now - self._log_window_start >= LOG_INTERVAL_SECONDS:
            self._log_window_start = now
            self._logged_in_window = 0
        if self._logged_in_window >= LOG_LIMIT_PER_INTERVAL:
            if not self._suppressed:
                # The summary must not wait for a rejection in a later window,
                # because a burst is often followed by none.
                window_end = self._log_window_start + LOG_INTERVAL_SECONDS
                self._summary_call = self._clock.callLater(
                    window_end - now, self._log_suppressed
                )
            self._suppressed += 1
            return
        self._logged_in_window += 1
        self.log.warn(
            "Rejected a datagram of {size} bytes from {peer}: {reason} {detail}",
            size=size, peer=_peer(addr), reason=reason, detail=detail,
        )

    def _log_suppressed(self) -> None:
        self.log.warn("{count} more rejected datagrams were not logged",
                      count=self._suppressed)
        self._suppressed = 0
        self._summary_call = None


def _peer(addr: Optional[Any]) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = f"[{addr[0]}]" if ":" in str(addr[0]) else addr[0]
        return f"{host}:{addr[1]}"
    return repr(addr)
