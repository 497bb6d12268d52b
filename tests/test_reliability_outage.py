"""
The database outage of bench/outage.py in a shortened form: PostgreSQL stops
for a few seconds under 1,000 samples a second, and every sample is stored or
counted as dropped.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from bench._pgcontrol import RestartablePostgres
from bench.outage import run_outage

from ._postgres import test_dsn

RATE = 1000.0
OUTAGE_SECONDS = 3.0


class OutageTests(SynchronousTestCase):
    """
    twistd mnemic keeps samples through a database restart.
    """

    def setUp(self) -> None:
        """
        Start a PostgreSQL server of the test's own, which it may stop.
        """
        # Skips the test, with the reason, where no embedded server starts.
        test_dsn()
        self.database = RestartablePostgres()
        self.addCleanup(self.database.close)

    def test_outage_loses_nothing(self) -> None:
        """
        Every sample sent before, during and after the outage is stored, and
        the lost connection is counted as a reconnect.
        """
        result = run_outage(self.database, RATE, before=1.0,
                            outage=OUTAGE_SECONDS, after=1.0)

        self.assertEqual(result.sent, int(RATE * (2.0 + OUTAGE_SECONDS)))
        self.assertEqual(result.stored, result.sent)
        self.assertEqual(result.dropped_by_mnemic, 0)
        self.assertEqual(result.dropped_by_kernel, 0)
        self.assertGreaterEqual(result.reconnects, 1)
        self.assertGreaterEqual(result.max_queue_rows, RATE * 2)

    def test_buffer_bound_drops_counted(self) -> None:
        """
        With --buffer-rows below what the outage brings, the rows beyond it
        are dropped and counted, and every other sample is stored.
        """
        result = run_outage(self.database, RATE, before=1.0,
                            outage=OUTAGE_SECONDS, after=1.0, buffer_rows=1000)

        self.assertGreater(result.dropped_by_mnemic, 0)
        self.assertEqual(result.stored + result.dropped_by_mnemic
                         + result.dropped_by_kernel, result.sent)
        self.assertLessEqual(result.max_queue_rows, 1000)
