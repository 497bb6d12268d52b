"""
Tests of the JSON API while its database is unreachable or not yet set up.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg2
import treq
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase
from twisted.web.server import Site

from mnemic._metrics import Metrics
from mnemic._pool import ReadPool
from mnemic._store import Store
from mnemic._web import WebApp

from ._postgres import query, test_dsn


class DatabaseUnavailableTests(TestCase):
    """
    API requests give 503 with a JSON error, not 500, while the database
    cannot run their queries.
    """

    timeout = 60

    @inlineCallbacks
    def check_unavailable(self, dsn: str) -> Any:
        pool = ReadPool(dsn, size=1)
        self.addCleanup(pool.close)
        site = Site(WebApp(Store(pool), Metrics()).resource())
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        url = f"http://127.0.0.1:{port.getHost().port}/api/tracers"

        response = yield treq.get(url, persistent=False)
        body = yield response.text()

        self.assertEqual(response.code, 503)
        self.assertEqual(response.headers.getRawHeaders("retry-after"), ["5"])
        self.assertIn("unavailable", json.loads(body)["error"])
        self.flushLoggedErrors()

    def test_server_unreachable(self) -> Any:
        """
        A server that refuses connections gives 503.
        """
        # Port 1 on loopback: nothing listens there, so the connection fails.
        return self.check_unavailable("postgresql://mnemic@127.0.0.1:1/mnemic")

    def test_schema_not_created(self) -> Any:
        """
        A database whose tables the writer has not created yet gives 503.
        """
        name = f"empty_{uuid.uuid4().hex[:12]}"
        admin = psycopg2.connect(test_dsn())
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        admin.close()
        self.assertEqual(query("SELECT 1 FROM pg_database WHERE datname = %s",
                               (name,)), [(1,)])
        dsn = test_dsn().replace("/mnemic?", f"/{name}?")
        self.assertIn(name, dsn)
        return self.check_unavailable(dsn)
