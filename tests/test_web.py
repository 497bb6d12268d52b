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
from mnemic._store import Correlations, Run, Series
from mnemic._web import CSRF_HEADER, WebApp

STARTED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


class FakeStore:
    """
    A store that returns fixed runs and records what it was asked.
    """

    def __init__(self, runs: list[Run]) -> None:
        self.runs_by_id = {run.id: run for run in runs}
        self.series_calls: list[tuple[Any, ...]] = []
        self.deleted: list[uuid.UUID] = []

    def runs(self) -> Any:
        return succeed(list(self.runs_by_id.values()))

    def warm_summaries(self) -> None:
        pass

    def run(self, run_id: uuid.UUID) -> Any:
        return succeed(self.runs_by_id.get(run_id))

    def series(self, run: Run, points: int, start: Optional[float] = None,
               end: Optional[float] = None, since: Optional[float] = None) -> Any:
        self.series_calls.append((run.id, points, start, end, since))
        return succeed(Series(run.columns, [], [[] for _ in run.columns]))

    def correlations(self, run: Run, start: Optional[float] = None,
                     end: Optional[float] = None) -> Any:
        return succeed(Correlations(run.columns, [[1.0, -0.5], [-0.5, None]], 8, 10,
                                    True))

    def delete_run(self, run_id: uuid.UUID) -> Any:
        existed = self.runs_by_id.pop(run_id, None) is not None
        if existed:
            self.deleted.append(run_id)
        return succeed(existed)


def make_run(name: str = "app", columns: Optional[list[str]] = None) -> Run:
    """
    Return a run of ``name`` with ten samples.
    """
    return Run(uuid.uuid4(), name, columns or ["a", "b"], STARTED, STARTED, 10, 0,
               "host", 1)


class _AppTestCase(SynchronousTestCase):
    """
    A web app on a fake store with one run, and a StubTreq client for it.
    """

    def setUp(self) -> None:
        self.run = make_run()
        self.store = FakeStore([self.run])
        self.app = WebApp(self.store, Metrics(), udp_port=4321)  # type: ignore[arg-type]
        self.client = StubTreq(self.app.resource())

    def get(self, path: str) -> tuple[int, str, str]:
        """
        GET ``path`` and return the status, content type and body.
        """
        response = self.successResultOf(self.client.get("http://test" + path))
        body = self.successResultOf(response.text())
        content_type = response.headers.getRawHeaders("content-type")[0]
        return response.code, content_type, body


class PageTests(_AppTestCase):
    """
    Tests of the HTML page routes.
    """

    def test_page_carries_udp_port(self) -> None:
        """
        The page carries the service's UDP port for its example dolon call.
        """
        code, content_type, body = self.get("/")

        self.assertEqual(code, 200)
        self.assertEqual(content_type, "text/html; charset=utf-8")
        self.assertIn('data-udp-port="4321"', body)

    def test_run_and_compare_pages(self) -> None:
        """
        /runs/{id} and /compare render the page, whose script reads the run
        or runs from the address.
        """
        for path in (f"/runs/{self.run.id}", "/compare?runs=a,b"):
            code, content_type, body = self.get(path)
            self.assertEqual(code, 200, path)
            self.assertEqual(content_type, "text/html; charset=utf-8")
            self.assertIn('src="/static/mnemic.js"', body)

    def test_malformed_run_id_renders_page(self) -> None:
        """
        A malformed run id renders the page with status 404, not the JSON
        error, and the id does not reach the page.
        """
        code, content_type, body = self.get("/runs/%3Cb%3Enot-a-run")

        self.assertEqual(code, 404)
        self.assertEqual(content_type, "text/html; charset=utf-8")
        self.assertIn('src="/static/mnemic.js"', body)
        self.assertNotIn("not-a-run", body)

    def test_undecodable_path_rejected(self) -> None:
        """
        A path that is not UTF-8 once percent-decoded is a JSON 400, and no
        failure is logged.
        """
        code, content_type, body = self.get("/api/runs/%ff%fe")

        self.assertEqual(code, 400)
        self.assertEqual(content_type, "application/json")
        self.assertEqual(json.loads(body), {"error": "the URL is not valid UTF-8"})
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_api_not_found_is_json(self) -> None:
        """
        The API returns a JSON 404 for a malformed run id.
        """
        code, content_type, body = self.get("/api/runs/not-a-run")

        self.assertEqual(code, 404)
        self.assertEqual(content_type, "application/json")
        self.assertEqual(json.loads(body), {"error": "no run with this id"})

    def test_page_carries_csrf_token(self) -> None:
        """
        The page carries the token that requests changing data must send.
        """
        _, _, body = self.get("/")

        self.assertIn(f'<meta name="mnemic-csrf" content="{self.app.csrf_token}">',
                      body)


class SamplesTests(_AppTestCase):
    """
    Tests of the samples route's arguments.
    """

    def test_since_passed_to_store(self) -> None:
        """
        ``since`` reaches the store as the exclusive lower bound.
        """
        path = f"/api/runs/{self.run.id}/samples?since=12.5&points=50"
        code, _, body = self.get(path)

        self.assertEqual(code, 200)
        self.assertEqual(json.loads(body), {"columns": ["a", "b"], "t": [],
                                            "values": [[], []]})
        self.assertEqual(self.store.series_calls,
                         [(self.run.id, 50, None, None, 12.5)])

    def test_since_with_start_rejected(self) -> None:
        """
        ``since`` and ``start`` together are a 400 with a JSON error.
        """
        code, _, body = self.get(f"/api/runs/{self.run.id}/samples?since=1&start=2")

        self.assertEqual(code, 400)
        self.assertIn("since", json.loads(body)["error"])
        self.assertEqual(self.store.series_calls, [])

    def test_invalid_numbers_rejected(self) -> None:
        """
        Non-numeric and non-finite arguments are a 400.
        """
        for argument in ("since=abc", "start=nan", "end=inf", "points=1"):
            code, _, _ = self.get(f"/api/runs/{self.run.id}/samples?{argument}")
            self.assertEqual(code, 400, argument)


class CorrelationsTests(_AppTestCase):
    """
    Tests of the correlations route.
    """

    def test_matrix_as_json(self) -> None:
        """
        The route returns the columns, the matrix with nulls, and how many
        samples it was computed from.
        """
        code, content_type, body = self.get(f"/api/runs/{self.run.id}/correlations")

        self.assertEqual(code, 200)
        self.assertEqual(content_type, "application/json")
        self.assertEqual(json.loads(body), {
            "columns": ["a", "b"], "matrix": [[1.0, -0.5], [-0.5, None]],
            "samples": 8, "total": 10, "sampled": True,
        })

    def test_unknown_run_404(self) -> None:
        """
        An unknown run is a JSON 404.
        """
        code, _, _ = self.get(f"/api/runs/{uuid.uuid4()}/correlations")

        self.assertEqual(code, 404)


class DeleteTests(_AppTestCase):
    """
    Tests of deleting a run and its protection against cross-site requests.
    """

    def post(self, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        """
        POST to ``path`` with ``headers`` and return the status and JSON body.
        """
        response = self.successResultOf(self.client.post(
            "http://test" + path, headers={k: [v] for k, v in headers.items()}))
        body = self.successResultOf(response.text())
        return response.code, json.loads(body)

    def test_delete_with_token(self) -> None:
        """
        A same-origin POST with the page's token deletes the run.
        """
        code, body = self.post(
            f"/api/runs/{self.run.id}/delete",
            {CSRF_HEADER: self.app.csrf_token, "Origin": "http://test",
             "Sec-Fetch-Site": "same-origin"},
        )

        self.assertEqual(code, 200)
        self.assertEqual(body, {"deleted": str(self.run.id)})
        self.assertEqual(self.store.deleted, [self.run.id])

    def test_rejected_without_token(self) -> None:
        """
        A POST without the token, or with a wrong one, is a 403 and deletes
        nothing.
        """
        for headers in ({}, {CSRF_HEADER: "guess"}, {CSRF_HEADER: ""}):
            code, body = self.post(f"/api/runs/{self.run.id}/delete", headers)
            self.assertEqual(code, 403, headers)
            self.assertIn(CSRF_HEADER, body["error"])
        self.assertEqual(self.store.deleted, [])

    def test_rejected_from_other_origin(self) -> None:
        """
        A POST whose Origin or Sec-Fetch-Site names another site is a 403,
        even with the token.
        """
        for headers in ({"Origin": "http://evil.example"},
                        {"Origin": "null"},
                        {"Sec-Fetch-Site": "cross-site"},
                        {"Sec-Fetch-Site": "same-site"}):
            headers[CSRF_HEADER] = self.app.csrf_token
            code, _ = self.post(f"/api/runs/{self.run.id}/delete", headers)
            self.assertEqual(code, 403, headers)
        self.assertEqual(self.store.deleted, [])

    def test_get_not_allowed(self) -> None:
        """
        Deleting takes a POST: a GET deletes nothing.
        """
        code, _, _ = self.get(f"/api/runs/{self.run.id}/delete")

        self.assertEqual(code, 405)
        self.assertEqual(self.store.deleted, [])

    def test_unknown_run_404(self) -> None:
        """
        Deleting an unknown run is a JSON 404.
        """
        code, body = self.post(f"/api/runs/{uuid.uuid4()}/delete",
                               {CSRF_HEADER: self.app.csrf_token})

        self.assertEqual(code, 404)
        self.assertEqual(body, {"error": "no run with this id"})
