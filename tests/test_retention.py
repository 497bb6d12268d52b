"""
Tests of deleting old runs (--retention-days) on the embedded PostgreSQL.
"""

from __future__ import annotations

import uuid
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from mnemic._pool import ReadPool
from mnemic._retention import delete_old_runs
from mnemic._service import MnemicService, Settings

from ._postgres import new_name, query, test_dsn
from .test_service import wait_for


def insert_run(age_days: float, samples: int = 3) -> str:
    """
    Store a run whose last sample is ``age_days`` old, straight in SQL.
    """
    run_id = str(uuid.uuid4())
    query(
        "INSERT INTO runs (id, name, columns, started, samples, last_seen)"
        " VALUES (%s, %s, %s, now() - make_interval(days => %s + 1), %s,"
        " now() - make_interval(secs => %s))",
        (run_id, new_name("retention"), ["a"], int(age_days), samples,
         age_days * 86400),
    )
    for seq in range(samples):
        query("INSERT INTO samples (run_id, seq, t, vals) VALUES"
              " (%s, %s, now() - make_interval(secs => %s), %s)",
              (run_id, seq, age_days * 86400, [1.0]))
    return run_id


def stored(run_id: str) -> tuple[int, int]:
    """
    Return how many runs rows and samples rows the run has.
    """
    runs = query("SELECT count(*) FROM runs WHERE id = %s", (run_id,))[0][0]
    samples = query("SELECT count(*) FROM samples WHERE run_id = %s", (run_id,))[0][0]
    return runs, samples


class RetentionTests(TestCase):
    """
    Runs whose last sample is older than the retention period are deleted
    with their samples; newer ones are kept.
    """

    timeout = 60

    @inlineCallbacks
    def setUp(self) -> Any:
        # The service creates the schema; the tests insert rows directly.
        service = MnemicService(Settings(udp_port=0, http_port=0, dsn=test_dsn(),
                                         web=False), reactor)
        service.startService()
        assert service.writer is not None
        yield service.writer.wait_connected()
        yield service.stopService()

    @inlineCallbacks
    def test_deletes_only_old_runs(self) -> Any:
        """
        A run last seen 10 days ago goes, one last seen 2 days ago stays.
        """
        old, recent = insert_run(10), insert_run(2)
        pool = ReadPool(test_dsn(), size=1)
        self.addCleanup(pool.close)

        deleted = yield delete_old_runs(pool, 7)

        self.assertGreaterEqual(deleted, 1)
        self.assertEqual(stored(old), (0, 0))
        self.assertEqual(stored(recent), (1, 3))

    @inlineCallbacks
    def test_service_deletes_at_start(self) -> Any:
        """
        A service started with retention_days deletes old runs at once.
        """
        old, recent = insert_run(40), insert_run(1)
        service = MnemicService(Settings(udp_port=0, http_port=0, dsn=test_dsn(),
                                         retention_days=30), reactor)
        service.startService()
        self.addCleanup(service.stopService)

        yield wait_for(lambda: stored(old) == (0, 0))
        self.assertEqual(stored(recent), (1, 3))
