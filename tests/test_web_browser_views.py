"""
Browser tests of the compare view, the correlation heat map, deleting a run
and runs of unusual shape, in a headless Chromium against a running mnemic
(see ``tests/_browser.py``).
"""

from __future__ import annotations

import time
import urllib.error
from typing import Any

from . import _postgres
from ._browser import XSS_TEXT, BrowserTestCase
from ._sending import announcement, new_run_id, sample


class CompareTests(BrowserTestCase):
    """
    Tests of selecting runs in the tree and overlaying them.
    """

    def send_two_runs(self, name: str) -> tuple[str, str]:
        """
        Send two runs of ``name`` that started 200 seconds apart, with 20
        samples each: the first counts up from 0, the second from 1000.
        """
        now = float(int(time.time()))
        runs = []
        for started, base in ((now - 300, 0.0), (now - 100, 1000.0)):
            run_id = new_run_id()
            self.sender.send(announcement(run_id, name, ["count", "half"],
                                          started=started))
            self.sender.send(*(
                sample(run_id, seq, [base + seq, (base + seq) / 2], t=started + seq)
                for seq in range(20)
            ))
            runs.append(run_id)
        for run_id in runs:
            self.wait_for_samples(run_id, 20)
        return runs[0], runs[1]

    def legend_value(self, column: str, series: int) -> Any:
        """
        Return the legend value of series ``series`` (0 for the x axis) of
        the chart of ``column``.
        """
        chart = self.page.locator(f'.chart[data-column="{column}"]')
        return chart.locator(".u-legend .u-series").nth(series).locator(".u-value")

    def test_compare_overlays_runs(self) -> None:
        """
        Checking two runs of one tracer and pressing Compare overlays them in
        one chart per column, aligned by the time since each run's start.
        """
        from playwright.sync_api import expect

        name = _postgres.new_name("compare")
        older, newer = self.send_two_runs(name)
        self.page.goto(self.service.base_url + "/")
        section = self.tracer_section(name)
        compare = section.locator(".compare-bar .button-primary")

        section.locator(f'li:has(a[data-run-id="{older}"]) .run-check').check()
        expect(compare).to_be_disabled()
        expect(compare).to_have_text("Select another run")
        section.locator(f'li:has(a[data-run-id="{newer}"]) .run-check').check()
        expect(compare).to_have_text("Compare 2 runs")
        compare.click()

        expect(self.page).to_have_url(
            f"{self.service.base_url}/compare?runs={older},{newer}")
        expect(self.page.locator(".chart-title")).to_have_text(["count", "half"])
        expect(self.page.locator(".compare-run")).to_have_count(2)
        expect(self.page.locator(".chart canvas")).to_have_count(2)
        self.assertEqual(self.drawn_canvases(), 2)
        # Three legend entries per chart: the offset and one per run.
        legend = self.page.locator('.chart[data-column="count"] .u-series')
        expect(legend).to_have_count(3)

        box = self.page.locator('.chart[data-column="count"] .u-over').bounding_box()
        assert box is not None
        self.page.mouse.move(box["x"] + 1, box["y"] + box["height"] / 2)
        expect(self.legend_value("count", 0)).to_have_text("+0:00")
        expect(self.legend_value("count", 1)).to_have_text("0")
        expect(self.legend_value("count", 2)).to_have_text("1,000")

    def test_compare_url_opens_view(self) -> None:
        """
        A /compare link opens the comparison with the runs checked in the
        tree, and a link in its header opens one of the runs.
        """
        from playwright.sync_api import expect

        name = _postgres.new_name("compare-url")
        older, newer = self.send_two_runs(name)

        self.page.goto(f"{self.service.base_url}/compare?runs={newer},{older}")

        expect(self.page.locator(".compare-run")).to_have_count(2)
        section = self.tracer_section(name)
        expect(section.locator(".run-check:checked")).to_have_count(2)
        self.page.locator(".compare-run a").first.click()
        expect(self.page).to_have_url(f"{self.service.base_url}/runs/{newer}")
        expect(self.page.locator(".run-name-text")).to_have_text(name)

    def test_compare_names_shown_as_text(self) -> None:
        """
        Markup in tracer and column names shows as text in the compare view.
        """
        from playwright.sync_api import expect

        name = f"{XSS_TEXT}-{new_run_id()[:8]}"
        column = "<script>alert(4)</script>"
        ids = [self.send_run(name, [column], [[1.0], [2.0]]) for _ in range(2)]

        self.page.goto(f"{self.service.base_url}/compare?runs={','.join(ids)}")

        expect(self.page.locator(".run-name-text")).to_have_text(name)
        expect(self.page.locator(".chart-title")).to_have_text([column])
        expect(self.page.locator(".chart canvas")).to_have_count(1)
        self.assertEqual(self.page.locator("img").count(), 0)
        self.assertEqual(self.page.locator("body script").count(), 2)
        self.assertEqual(self.dialogs, [])


class HeatmapTests(BrowserTestCase):
    """
    Tests of the Correlations tab.
    """

    def test_heatmap_drawn(self) -> None:
        """
        The Correlations tab draws one colored cell per pair of columns, with
        the values the server computed, and its address opens the tab again.
        """
        from playwright.sync_api import expect

        name = _postgres.new_name("heat")
        columns = ["x", "twice_x", "minus_x", "constant"]
        rows = [[float(i % 7), 2.0 * (i % 7), -float(i % 7), 5.0] for i in range(40)]
        run_id = self.send_run(name, columns, rows)
        self.open_run(name, run_id)

        self.page.get_by_role("tab", name="Correlations").click()

        cells = self.page.locator(".heatmap td.heat-cell")
        expect(cells).to_have_count(16)
        expect(self.page.locator(".heatmap th.heat-side")).to_have_text(columns)
        expect(self.cell(0, 1)).to_have_text("1.00")
        expect(self.cell(2, 0)).to_have_text("−1.00")
        expect(self.cell(3, 0)).to_have_text("n/a")
        expect(self.cell(3, 3)).to_have_class("heat-cell heat-none")
        self.assertIn("rgb(", self.cell(0, 1).get_attribute("style") or "")
        self.assertNotEqual(self.cell(0, 1).get_attribute("style"),
                            self.cell(0, 2).get_attribute("style"))
        expect(self.page.locator(".heatmap-caption")).to_contain_text("all 40 samples")
        expect(self.page).to_have_url(
            f"{self.service.base_url}/runs/{run_id}#correlations")

        self.page.reload()
        expect(self.page.locator(".heatmap td.heat-cell")).to_have_count(16)

    def cell(self, row: int, column: int) -> Any:
        """
        Return the heat map cell of ``row`` and ``column``.
        """
        return self.page.locator(
            f'.heatmap td[data-row="{row}"][data-column="{column}"]')

    def test_heatmap_names_shown_as_text(self) -> None:
        """
        Markup in column names shows as text in the heat map's labels.
        """
        from playwright.sync_api import expect

        name = _postgres.new_name("heat-xss")
        columns = ["<img src=x onerror=alert(5)>", "<b>bold</b>"]
        run_id = self.send_run(name, columns, [[1.0, 2.0], [2.0, 1.0], [3.0, 5.0]])

        self.page.goto(f"{self.service.base_url}/runs/{run_id}#correlations")

        expect(self.page.locator(".heatmap th.heat-side")).to_have_text(columns)
        self.assertEqual(self.page.locator("img").count(), 0)
        self.assertEqual(self.page.locator("b").count(), 0)
        self.assertEqual(self.dialogs, [])


class DeleteTests(BrowserTestCase):
    """
    Tests of deleting a run from its header.
    """

    def test_delete_after_confirmation(self) -> None:
        """
        Delete asks for confirmation first: Cancel keeps the run, and
        confirming deletes it, removes it from the tree and returns to /.
        """
        from playwright.sync_api import expect

        name = _postgres.new_name("delete")
        keep = self.send_run(name, ["a"], [[1.0], [2.0]])
        run_id = self.send_run(name, ["a"], [[3.0], [4.0], [5.0]])
        self.open_run(name, run_id)
        dialog = self.page.locator("dialog.confirm")

        self.page.get_by_role("button", name="Delete run").click()
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text(name)
        expect(dialog).to_contain_text("3 samples")
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_have_count(0)
        self.assertEqual(self.service.get_json(f"/api/runs/{run_id}")["samples"], 3)

        self.page.get_by_role("button", name="Delete run").click()
        dialog.get_by_role("button", name="Delete run").click()

        expect(self.page).to_have_url(self.service.base_url + "/")
        expect(self.page.locator(f'a[data-run-id="{run_id}"]')).to_have_count(0)
        expect(self.page.locator(f'a[data-run-id="{keep}"]')).to_have_count(1)
        with self.assertRaises(urllib.error.HTTPError) as raised:
            self.service.get_json(f"/api/runs/{run_id}")
        self.assertEqual(raised.exception.code, 404)
        self.assertEqual(self.service.get_json(f"/api/runs/{keep}")["samples"], 2)
        self.assertEqual(self.dialogs, [])

    def test_delete_without_token_rejected(self) -> None:
        """
        A POST from the page without the token is rejected and deletes
        nothing.
        """
        name = _postgres.new_name("delete-token")
        run_id = self.send_run(name, ["a"], [[1.0]])
        self.page.goto(self.service.base_url + "/")

        status = self.page.evaluate(
            "async (path) => (await fetch(path, {method: 'POST'})).status",
            f"/api/runs/{run_id}/delete",
        )

        self.assertEqual(status, 403)
        self.assertEqual(self.service.get_json(f"/api/runs/{run_id}")["samples"], 1)


class HomeTests(BrowserTestCase):
    """
    Tests of the page with no run selected.
    """

    def test_live_runs_listed(self) -> None:
        """
        With no run selected, the page lists the runs receiving samples, and
        a click opens one.
        """
        from playwright.sync_api import expect

        name = _postgres.new_name("home")
        run_id = self.send_run(name, ["a"], [[1.0], [2.0]])

        self.page.goto(self.service.base_url + "/")
        link = self.page.locator(f'.home a.home-run[data-run-id="{run_id}"]')
        expect(link).to_contain_text(name)
        expect(link).to_contain_text("2 samples")
        link.click()

        expect(self.page).to_have_url(f"{self.service.base_url}/runs/{run_id}")
        expect(self.page.locator(".run-name-text")).to_have_text(name)


class OddRunTests(BrowserTestCase):
    """
    Tests of runs of unusual shape and of bad addresses.
    """

    def test_fifty_columns(self) -> None:
        """
        A run of 50 columns draws 50 charts, and the filter box narrows them
        down by name.
        """
        from playwright.sync_api import expect

        name = _postgres.new_name("wide")
        columns = [f"metric_{i:02d}" for i in range(50)]
        rows = [[float(i * c % 11) for c in range(50)] for i in range(10)]
        run_id = self.send_run(name, columns, rows)

        self.open_run(name, run_id)

        expect(self.page.locator(".chart canvas")).to_have_count(50)
        self.assertEqual(self.drawn_canvases(), 50)
        self.page.get_by_placeholder("Filter columns").fill("metric_4")
        expect(self.page.locator(".chart:visible .chart-title")).to_have_text(
            [f"metric_4{i}" for i in range(10)])

    def test_malformed_run_id_not_found(self) -> None:
        """
        A /runs/ address with a malformed id shows the page with a not-found
        message.
        """
        from playwright.sync_api import expect

        response = self.page.goto(f"{self.service.base_url}/runs/not-a-run-id")

        assert response is not None
        self.assertEqual(response.status, 404)
        error = self.page.locator(".error")
        expect(error).to_contain_text("Run not-a-run-id not found")
        expect(self.page.locator(".brand-name")).to_have_text("mnemic")

    def test_compare_needs_two_runs(self) -> None:
        """
        A /compare address with fewer than two runs explains what to do.
        """
        from playwright.sync_api import expect

        self.page.goto(f"{self.service.base_url}/compare?runs={new_run_id()}")

        expect(self.page.locator(".error")).to_have_text(
            "Select at least two runs of one tracer to compare them.")
