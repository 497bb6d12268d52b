"""
Tests of the web app's routes in memory, through StubTreq and a fake store.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any, Optional

from treq.testing import StubTreq
from twisted.internet.defer import succeed
from twisted.trial.unittest import SynchronousTestCase

from mnemic._metrics import Metrics
from mnemic._store import Run, Series
from mnemic._web import WebApp

STARTED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


class FakeStore:
    """
    A store that returns fixed runs and records what it was asked.
    """

    def __init__(self, runs: list[Run]) -> None:
        self.runs_by_id = {run.id: run for run in runs}
        self.series_calls: list[tuple[Any, ...]] = []

    def runs(self) -> Any:
        return succeed(list(self.runs_by_id.values()))

    def run(self, run_id: uuid.UUID) -> Any:
        return succeed(self.runs_by_id.get(run_id))

    def series(self, run: Run, points: int, start: Optional[float] = None,
               end: Optional[float] = None, since: Optional[float] = None) -> Any:
        self.series_calls.append((run.id, points, start, end, since))
        return succeed(Series(run.columns, [], [[] for _ in run.columns]))


def make_run(name: str = "app", columns: Optional[list[str]] = None) -> Run:
    """
    Return a run of ``name`` with ten samples.
    """
    return Run(uuid.uuid4(), name, columns or ["a", "b"], STARTED, STARTED, 10, 0,
               "host", 1)


class PageTests(SynchronousTestCase):
    """
    Tests of the HTML page routes.
    """

    def setUp(self) -> None:
        self.run = make_run()
        self.store = FakeStore([self.run])
        app = WebApp(self.store, Metrics(), udp_port=4321)  # type: ignore[arg-type]
        self.client = StubTreq(app.resource())

    def get(self, path: str) -> tuple[int, str, str]:
        """
        GET ``path`` and return the status, content type and body.
        """
        response = self.successResultOf(self.client.get("http://test" + path))
        body = self.successResultOf(response.text())
        content_type = response.headers.getRawHeaders("content-type")[0]
        return response.code, content_type, body

    def test_page_carries_udp_port(self) -> None:
        """
        The page carries the service's UDP port for its example dolon call.
        """
        code, content_type, body = self.get("/")

        self.assertEqual(code, 200)
        self.assertEqual(content_type, "text/html; charset=utf-8")
        self.assertIn('data-udp-port="4321"', body)

    def test_run_page_carries_run_id(self) -> None:
        """
        /runs/{id} renders the page opened on that run.
        """
        code, _, body = self.get(f"/runs/{self.run.id}")

        self.assertEqual(code, 200)
        self.assertIn(f'data-run-id="{self.run.id}"', body)

    def test_malformed_run_id_renders_page(self) -> None:
        """
        A malformed run id renders the page with status 404, not the JSON
        error, and the id reaches the page escaped.
        """
        code, content_type, body = self.get("/runs/%3Cb%3Enot-a-run")

        self.assertEqual(code, 404)
        self.assertEqual(content_type, "text/html; charset=utf-8")
        self.assertIn('data-run-id="&lt;b&gt;not-a-run"', body)
        self.assertNotIn("<b>", body)

    def test_api_not_found_is_json(self) -> None:
        """
        The API returns a JSON 404 for a malformed run id.
        """
        code, content_type, body = self.get("/api/runs/not-a-run")

        self.assertEqual(code, 404)
        self.assertEqual(content_type, "application/json")
        self.assertEqual(json.loads(body), {"error": "no run with this id"})
