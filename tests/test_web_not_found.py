"""
Tests of the response to an unknown address: the page for a browser, JSON
for the API and for clients that request JSON.
"""

from __future__ import annotations

import json

from treq.testing import StubTreq
from twisted.trial.unittest import SynchronousTestCase

from mnemic._metrics import Metrics
from mnemic._web import WebApp

from .test_web import FakeStore, make_run

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


class NotFoundTests(SynchronousTestCase):
    """
    Tests of unknown addresses.
    """

    def setUp(self) -> None:
        store = FakeStore([make_run()])
        self.app = WebApp(store, Metrics())  # type: ignore[arg-type]
        self.client = StubTreq(self.app.resource())

    def get(self, path: str, accept: str) -> tuple[int, str, str]:
        """
        GET ``path`` with the Accept header ``accept`` and return the status,
        content type and body.
        """
        response = self.successResultOf(
            self.client.get("http://test" + path, headers={"Accept": accept})
        )
        body = self.successResultOf(response.text())
        content_type = response.headers.getRawHeaders("content-type")[0]
        return response.code, content_type, body

    def test_browser_gets_page(self) -> None:
        """
        A browser opening an unknown address gets the page with status 404,
        whose script shows the not-found message.
        """
        code, content_type, body = self.get("/nothing", BROWSER_ACCEPT)

        self.assertEqual(code, 404)
        self.assertEqual(content_type, "text/html; charset=utf-8")
        self.assertIn('src="/static/mnemic.js"', body)

    def test_json_client_gets_json(self) -> None:
        """
        A client that prefers JSON, or names no type, gets the JSON error.
        """
        for accept in ("application/json", "application/json, text/html;q=0.5", "*/*"):
            code, content_type, body = self.get("/nothing", accept)

            self.assertEqual(code, 404, accept)
            self.assertEqual(content_type, "application/json", accept)
            self.assertIn("error", json.loads(body), accept)

    def test_api_path_stays_json(self) -> None:
        """
        An unknown address under /api/ is a JSON 404 even for a browser.
        """
        code, content_type, body = self.get("/api/nothing", BROWSER_ACCEPT)

        self.assertEqual(code, 404)
        self.assertEqual(content_type, "application/json")
        self.assertIn("error", json.loads(body))

    def test_html_with_zero_quality_gets_json(self) -> None:
        """
        text/html with q=0 is rejected, not preferred.
        """
        code, content_type, _ = self.get("/nothing", "text/html;q=0, */*")

        self.assertEqual(code, 404)
        self.assertEqual(content_type, "application/json")
