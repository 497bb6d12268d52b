"""
Running a tracer in a thread of its own, for programs without an event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from ._tracer import Tracer

if TYPE_CHECKING:
    # Annotations only: typing.Self is new in Python 3.11.
    from typing_extensions import Self

_log = logging.getLogger(__name__)


class ThreadTracer:
    """
    Handle of a tracer that runs its own event loop in a daemon thread.

    Diagnostics run in that thread, so :func:`active_tasks` and
    :func:`event_loop_lag_ms` describe the tracer's own loop, not the
    program. Call :meth:`stop`, or use the handle in a ``with`` block, to
    stop sending and close the socket.
    """

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = threading.Event()
        self._stop_requested = False
        self._thread = threading.Thread(
            target=self._main, name=f"dolon tracer {tracer.name}", daemon=True
        )

    def start(self) -> None:
        """
        Start the thread and wait until its event loop runs.
        """
        self._thread.start()
        self._started.wait()

    @property
    def running(self) -> bool:
        """
        Whether the tracer's thread is still running.
        """
        return self._thread.is_alive()

    def _main(self) -> None:
        try:
            asyncio.run(self._trace())
        # An unexpected failure is logged, because no caller joins this thread
        # to receive it.
        except Exception:  # noqa: BLE001
            _log.exception("Thread of tracer %r failed", self.tracer.name)
        finally:
            self._started.set()

    async def _trace(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._started.set()
        if self._stop_requested:
            return
        try:
            await self.tracer.run()
        except asyncio.CancelledError:
            pass

    def stop(self, timeout: float = 5.0) -> bool:
        """
        Stop the tracer and wait up to ``timeout`` seconds for its thread to
        end.

        :return: whether the thread ended within the timeout.
        """
        self._stop_requested = True
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:
                pass  # The loop already closed, because the run ended.
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
