"""
The overload of bench/overload.py in a shortened form: a few seconds of far
more samples than mnemic can store, with a small --buffer-rows.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from bench._pgcontrol import RestartablePostgres
from bench.overload import run_overload

from ._postgres import test_dsn

# Far beyond what one mnemic process stores per second, so rows are dropped.
RATE = 60_000.0
SECONDS = 3.0
BUFFER_ROWS = 2000


class OverloadTests(SynchronousTestCase):
    """
    Under overload mnemic keeps its memory bound, responds to the web API
    and counts every sample it does not store.
    """

    def test_flood_accounted_and_bounded(self) -> None:
        """
        Every sample sent is stored or counted as dropped by mnemic or by the
        kernel, some are dropped, memory stays under the bound for
        --buffer-rows, and every web API request gets a response.
        """
        test_dsn()
        with RestartablePostgres() as database:
            result = run_overload(database, RATE, SECONDS, BUFFER_ROWS)

        self.assertEqual(result.sent, int(RATE * SECONDS))
        self.assertEqual(result.unaccounted, 0)
        self.assertGreater(result.dropped_by_mnemic + result.dropped_by_kernel, 0)
        self.assertGreater(result.stored, 0)
        self.assertLessEqual(result.max_rss_mb, result.rss_bound_mb)
        self.assertGreater(result.probes, 0)
        self.assertEqual(result.probe_failures, 0)
