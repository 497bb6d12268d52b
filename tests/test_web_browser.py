"""
Browser tests of the page's tree and run view, in a headless Chromium against
a running mnemic (see ``tests/_browser.py``).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from . import _postgres
from ._browser import XSS_TEXT, BrowserTestCase
from ._sending import announcement, new_run_id, sample


class PageTests(BrowserTestCase):
    """
    Tests of the tree and the run view.
    """

    def test_tree_lists_tracer_and_run(self) -> None:
        """
        The tree lists a new tracer with its run's sample count.
        """
        from playwright.sync_api import expect

        name = _postgres.new_name("tree")
        run_id = self.send_run(name, ["a"], [[float(i)] for i in range(12)])

        self.page.goto(self.service.base_url + "/")
        section = self.tracer_section(name)

        link = section.locator(f'a[data-run-id="{run_id}"]')
        expect(link).to_have_attribute("href", f"/runs/{run_id}")
        expect(link.locator(".run-details")).to_contain_text("12 samples")

    def test_run_draws_chart_per_column(self) -> None:
        """
        Clicking a run shows its header, one drawn chart per column and a CSV
        link, and puts the run's URL in the address bar.
        """
        from playwright.sync_api import expect

        name = _postgres.new_name("charts")
        columns = ["mem_allocation", "active_tasks", "cpu_percent"]
        rows = [[1e6 + i * 1e4, float(i % 5), 12.5 * (i % 3)] for i in range(30)]
        run_id = self.send_run(name, columns, rows, skip=[7])

        self.open_run(name, run_id)

        expect(self.page).to_have_url(f"{self.service.base_url}/runs/{run_id}")
        expect(self.page.locator(".run-name-text")).to_have_text(name)
        expect(self.fact_value("Samples")).to_have_text("29")
        expect(self.fact_value("Lost")).to_have_text("1")
        expect(self.page.locator(".chart canvas")).to_have_count(len(columns))
        expect(self.page.locator(".chart-title")).to_have_text(columns)
        self.assertEqual(self.drawn_canvases(), len(columns))
        csv = self.page.locator("a", has_text="Download CSV")
        expect(csv).to_have_attribute("href", f"/api/runs/{run_id}/csv")

    def test_drag_zooms_every_chart(self) -> None:
        """
        A drag across one chart zooms every chart of the run to that time
        range and fetches that range from the server. A double-click zooms
        back out.
        """
        from playwright.sync_api import expect

        name = _postgres.new_name("zoom")
        run_id = self.send_run(name, ["a", "b"], [[i, -i] for i in range(120)])
        first = self.service.get_json(f"/api/runs/{run_id}/samples")["t"][0]
        self.open_run(name, run_id)
        expect(self.page.locator(".chart canvas")).to_have_count(2)
        requests: list[str] = []
        self.page.on("request", lambda request: requests.append(request.url))
        before = self.time_at("b", 0.9)

        with self.page.expect_response(lambda response: "start=" in response.url):
            self.drag("a", 0.1, 0.3)
        zoomed = self.time_at("b", 0.9)

        self.assertLess(zoomed, before)
        ranged = [url for url in requests if "/samples?" in url and "start=" in url]
        self.assertEqual(len(ranged), 1, requests)
        arguments = parse_qs(urlsplit(ranged[0]).query)
        start = float(arguments["start"][0]) - first
        end = float(arguments["end"][0]) - first
        # The drag covered 10% to 30% of 119 seconds, and the page asks for
        # 5% of that range more on either side.
        self.assertGreater(start, 5)
        self.assertLess(start, 15)
        self.assertGreater(end, 30)
        self.assertLess(end, 42)
        expect(self.page.locator(".zoom-info")).to_contain_text("Zoomed to")

        self.page.locator('.chart[data-column="b"] .u-over').dblclick()
        self.assertEqual(self.time_at("b", 0.9), before)
        expect(self.page.locator(".zoom-info")).to_contain_text("Drag across a chart")

    def test_run_url_opens_run(self) -> None:
        """
        /runs/{id} opens the page on that run, marked in the tree. After a
        click on another run, the browser's back button returns to the first.
        """
        from playwright.sync_api import expect

        first_name = _postgres.new_name("url-first")
        second_name = _postgres.new_name("url-second")
        first = self.send_run(first_name, ["x"], [[1.0], [2.0]])
        second = self.send_run(second_name, ["y"], [[3.0], [4.0]])

        self.page.goto(f"{self.service.base_url}/runs/{first}")
        expect(self.page.locator(".run-name-text")).to_have_text(first_name)
        expect(self.page.locator(".chart canvas")).to_have_count(1)
        selected = self.page.locator('a.run-link[aria-current="page"]')
        expect(selected).to_have_attribute("data-run-id", first)

        self.tracer_section(second_name).locator(f'a[data-run-id="{second}"]').click()
        expect(self.page.locator(".run-name-text")).to_have_text(second_name)
        self.page.go_back()
        expect(self.page).to_have_url(f"{self.service.base_url}/runs/{first}")
        expect(self.page.locator(".run-name-text")).to_have_text(first_name)

    def test_client_strings_shown_as_text(self) -> None:
        """
        Markup in tracer and column names shows as literal text and never
        runs: no dialog opens and no element is created from it.
        """
        from playwright.sync_api import expect

        name = f"{XSS_TEXT}-{new_run_id()[:8]}"
        columns = ["<script>alert(2)</script>", "<b onmouseover=alert(3)>b</b>"]
        run_id = self.send_run(name, columns, [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])

        self.open_run(name, run_id)

        expect(self.page.locator(".run-name-text")).to_have_text(name)
        expect(self.page.locator(".chart-title")).to_have_text(columns)
        legend = self.page.locator(".chart .u-legend")
        expect(legend.nth(0)).to_contain_text(columns[0])
        expect(legend.nth(1)).to_contain_text(columns[1])
        expect(self.page.locator(".chart canvas")).to_have_count(2)
        self.page.locator(".chart .u-over").first.hover()
        self.assertEqual(self.page.locator("img").count(), 0)
        self.assertEqual(self.page.locator("b").count(), 0)
        self.assertEqual(self.page.locator("body script").count(), 2)
        self.assertEqual(self.dialogs, [])

    def test_empty_run_and_null_column(self) -> None:
        """
        A run with no samples shows a notice, and a column whose samples are all
        null gets a message in place of its chart.
        """
        from playwright.sync_api import expect

        empty_name = _postgres.new_name("empty")
        empty = new_run_id()
        self.sender.send(announcement(empty, empty_name, ["a", "b"]))
        self.wait_for_samples(empty, 0)
        nulls_name = _postgres.new_name("nulls")
        nulls = self.send_run(
            nulls_name, ["value", "never_set"], [[1.0, None], [2.0, None], [4.0, None]]
        )

        self.open_run(empty_name, empty)
        expect(self.page.locator(".notice")).to_have_text(
            "No samples yet. The charts appear when the first sample arrives."
        )
        expect(self.page.locator(".charts")).to_be_hidden()

        self.tracer_section(nulls_name).locator(f'a[data-run-id="{nulls}"]').click()
        expect(self.page.locator(".chart canvas")).to_have_count(1)
        never_set = self.page.locator('.chart[data-column="never_set"]')
        expect(never_set.locator(".chart-empty")).to_have_text(
            "No values: every sample of this column is null."
        )

    def test_live_run_updates(self) -> None:
        """
        Samples that arrive while a run is on screen reach its header, tree
        entry and chart without a reload. The page fetches only the samples
        newer than those it has.
        """
        from playwright.sync_api import expect

        name = _postgres.new_name("live")
        run_id = self.send_run(name, ["v"], [[1.0], [2.0], [3.0]])
        self.open_run(name, run_id)
        samples = self.fact_value("Samples")
        expect(samples).to_have_text("3")
        expect(self.page.locator(".chart canvas")).to_have_count(1)
        requests: list[str] = []
        self.page.on("request", lambda request: requests.append(request.url))

        now = time.time()
        new_samples = [
            sample(run_id, seq, [seq * 111.0], t=now + seq - 6) for seq in range(3, 8)
        ]
        self.sender.send(*new_samples)
        self.wait_for_samples(run_id, 8)

        expect(samples).to_have_text("8")
        link = self.page.locator(f'a[data-run-id="{run_id}"]')
        expect(link.locator(".run-details")).to_contain_text("8 samples")
        expect(self.page.locator(".live-badge")).to_be_visible()
        chart = self.page.locator('.chart[data-column="v"]')
        legend_value = chart.locator(".u-legend .u-series").nth(1).locator(".u-value")
        box = chart.locator(".u-over").bounding_box()
        assert box is not None
        self.page.mouse.move(box["x"] + box["width"] - 1, box["y"] + box["height"] / 2)
        expect(legend_value).to_have_text("777")
        appended = [url for url in requests if "/samples?" in url and "since=" in url]
        self.assertNotEqual(appended, [])

    def test_no_runs_message(self) -> None:
        """
        With no tracers, the page shows how to start one.

        The database is shared with other tests, so the browser replaces the
        API's response with an empty list.
        """
        from playwright.sync_api import expect

        self.page.route(
            "**/api/tracers",
            lambda route: route.fulfill(
                status=200, content_type="application/json", body="[]"
            ),
        )
        self.page.goto(self.service.base_url + "/")

        expect(self.page.locator(".empty-state h1")).to_have_text(
            "No runs yet: start a program that uses dolon."
        )
        expect(self.page.locator(".empty-state code")).to_contain_text(
            "tc.start_tracer("
        )
        expect(self.page.locator(".tree")).to_have_text("No tracers yet.")

    def test_unknown_run_not_found(self) -> None:
        """
        A URL with an unknown run id shows a not-found message.
        """
        from playwright.sync_api import expect

        run_id = new_run_id()
        self.page.goto(f"{self.service.base_url}/runs/{run_id}")

        expect(self.page.locator(".error")).to_contain_text(f"Run {run_id} not found")
