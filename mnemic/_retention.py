"""
Delete runs older than the retention period, once a day.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

RETENTION_CHECK_SECONDS = 24 * 60 * 60

# A run's age counts from its last sample, so a run that is still sending is
# never deleted, however long ago it started.
_DELETE_SAMPLES = """
DELETE FROM samples WHERE run_id IN (
    SELECT id FROM runs
    WHERE coalesce(last_seen, started, created) < now() - make_interval(secs => %s)
)
"""
_DELETE_RUNS = """
DELETE FROM runs
WHERE coalesce(last_seen, started, created) < now() - make_interval(secs => %s)
RETURNING id
"""

log = Logger()


@inlineCallbacks
def delete_old_runs(pool: Any, days: float) -> Any:
    """
    Delete every run, with its samples, whose last sample is older than
    ``days`` days, and return the number of runs deleted.

    :param pool: anything with txpostgres' ``runQuery`` and ``runOperation``.
    """
    seconds = days * 86400
    yield pool.runOperation(_DELETE_SAMPLES, (seconds,))
    deleted = yield pool.runQuery(_DELETE_RUNS, (seconds,))
    return len(deleted)


class Retention:
    """
    Runs `delete_old_runs` at start and then once a day.
    """

    def __init__(self, pool: Any, days: float, clock: Any) -> None:
        self._pool = pool
        self._days = days
        self._loop = LoopingCall(self._run)
        self._loop.clock = clock

    def start(self) -> None:
        """
        Start the daily deletion; the first runs now.
        """
        self._loop.start(RETENTION_CHECK_SECONDS, now=True)

    def stop(self) -> None:
        """
        Stop the daily deletion.
        """
        if self._loop.running:
            self._loop.stop()

    @inlineCallbacks
    def _run(self) -> Any:
        try:
            count = yield delete_old_runs(self._pool, self._days)
        except Exception:
            # Logged and retried tomorrow: a failed cleanup must not stop the
            # loop or the service.
            log.failure("Deleting runs older than {days} days failed",
                        days=self._days)
            return
        if count:
            log.info("Retention: deleted runs older than {days} days: {count}",
                     count=count, days=self._days)
