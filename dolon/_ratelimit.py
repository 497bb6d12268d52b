"""Rate-limited logging, so that a failure repeated every second logs once."""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable

#: Minimum time in seconds between two messages with the same key.
DEFAULT_INTERVAL = 60.0


class RateLimitedLog:
    """
    Log a message at most once per interval for each key, and report how many
    messages with that key were suppressed since the last one was logged.
    """

    def __init__(
        self, logger: logging.Logger, interval: float = DEFAULT_INTERVAL
    ) -> None:
        self._logger = logger
        self._interval = interval
        # key -> (monotonic time of the last logged message, suppressed count)
        self._state: dict[Hashable, tuple[float, int]] = {}

    def log(
        self,
        level: int,
        key: Hashable,
        message: str,
        *args: object,
        exc_info: BaseException | None = None,
    ) -> bool:
        """
        Log ``message % args`` unless a message with ``key`` was logged less
        than the interval ago.

        :return: whether the message was logged.
        """
        now = time.monotonic()
        last, suppressed = self._state.get(key, (None, 0))
        if last is not None and now - last < self._interval:
            self._state[key] = (last, suppressed + 1)
            return False

        self._state[key] = (now, 0)
        if suppressed:
            message += " (%d similar messages suppressed)"
            args = args + (suppressed,)
        self._logger.log(level, message, *args, exc_info=exc_info)
        return True

    def warning(self, key: Hashable, message: str, *args: object) -> bool:
        """
        Log a rate-limited warning.
        """
        return self.log(logging.WARNING, key, message, *args)

    def error(
        self,
        key: Hashable,
        message: str,
        *args: object,
        exc_info: BaseException | None = None,
    ) -> bool:
        """
        Log a rate-limited error, with the traceback of ``exc_info`` if given.
        """
        return self.log(logging.ERROR, key, message, *args, exc_info=exc_info)
