"""
Browser tests of what the page shows the user when something goes wrong or
is missing: a failed delete, an unavailable database, lost samples, an
unknown address, and the charts' axes and legends (see
``tests/_browser.py``).
"""

from __future__ import annotations

from typing import Any

from . import _postgres
from ._browser import BrowserTestCase

DATABASE_DOWN = "mnemic is running but its database is unavailable; retrying…"


class DeleteErrorTests(BrowserTestCase):
    """
    Tests of a delete that the server refuses.
    """

    def test_failed_delete_stays_visible(self) -> None:
        """
        When the server refuses a delete, as after a restart of mnemic that
        changed the token, the header shows why until the message is
        dismissed, through the polls that rebuild the header and the tree.
        """
        from playwright.sync_api import expect

        name = _postgres.new_name("delete-refused")
        run_id = self.send_run(name, ["a"], [[1.0], [2.0]])
        self.open_run(name, run_id)
        expect(self.page.locator(".chart canvas")).to_have_count(1)
        self.page.evaluate(
            """() => document.querySelector('meta[name="mnemic-csrf"]')
                   .setAttribute("content", "from-an-earlier-process")"""
        )
        error = self.page.locator(".run-error")

        self.page.get_by_role("button", name="Delete run").click()
        self.page.locator("dialog.confirm").get_by_role(
            "button", name="Delete run"
        ).click()

        expect(error).to_contain_text("Cannot delete the run")
        with self.page.expect_response(lambda response: "/api/tracers" in response.url):
            pass
        with self.page.expect_response(
            lambda response: response.url.endswith(f"/api/runs/{run_id}")
        ):
            pass
        expect(self.page.locator("#status")).to_contain_text("Updated")
        expect(error).to_be_visible()
        expect(error).to_contain_text("Cannot delete the run")
        self.assertEqual(self.service.get_json(f"/api/runs/{run_id}")["samples"], 2)

        error.get_by_role("button", name="Dismiss").click()
        expect(error).to_have_count(0)


class DatabaseDownTests(BrowserTestCase):
    """
    Tests of the page while mnemic responds with 503.

    The database is shared with other tests, so the browser fulfils the API
    requests with mnemic's 503 response instead of stopping PostgreSQL.
    """

    def fail_api(self, route: Any) -> None:
        """
        Fulfil an API request as mnemic does while its database is down.
        """
        route.fulfill(
            status=503,
            content_type="application/json",
            headers={"Retry-After": "5"},
            body='{"error": "the database is unavailable; try again shortly"}',
        )

    def test_one_message_then_recovers(self) -> None:
        """
        With the database down, the page shows one message throughout, instead
        of "Loading…" and "Select a run"; when it is back, the run opens
        without a reload.
        """
        from playwright.sync_api import expect

        name = _postgres.new_name("database-down")
        run_id = self.send_run(name, ["a"], [[1.0], [2.0]])
        self.page.route("**/api/**", self.fail_api)

        self.page.goto(f"{self.service.base_url}/runs/{run_id}")

        expect(self.page.locator("#run")).to_have_text(DATABASE_DOWN)
        expect(self.page.locator("#status")).to_have_text(DATABASE_DOWN)
        expect(self.page.locator("#tree")).not_to_contain_text("Loading")

        self.page.unroute("**/api/**", self.fail_api)
        expect(self.page.locator(".run-name-text")).to_have_text(name)
        expect(self.page.locator(".chart canvas")).to_have_count(1)
        expect(self.page.locator("#status")).to_contain_text("Updated")


class ChartTests(BrowserTestCase):
    """
    Tests of gaps, axes and legends in a run's charts.
    """

    def stroke_pixels(self, column: str, fraction: float) -> int:
        """
        Return how many pixels of the chart of ``column`` at ``fraction`` of
        its plot's width have the first series' blue.
        """
        count: int = self.page.evaluate(
            """([column, fraction]) => {
                const chart = document.querySelector(
                    `.chart[data-column="${column}"]`);
                const canvas = chart.querySelector("canvas");
                const over = chart.querySelector(".u-over").getBoundingClientRect();
                const box = canvas.getBoundingClientRect();
                const scale = canvas.width / box.width;
                const x = Math.round(
                    (over.left - box.left + over.width * fraction) * scale);
                const top = Math.round((over.top - box.top) * scale);
                const height = Math.round(over.height * scale);
                const pixels = canvas.getContext("2d")
                    .getImageData(x - 1, top, 3, height).data;
                let blue = 0;
                for (let i = 0; i < pixels.length; i += 4) {
                    if (pixels[i + 2] > 150 && pixels[i] < 90 && pixels[i + 3] > 200) {
                        blue += 1;
                    }
                }
                return blue;
            }""",
            [column, fraction],
        )
        return count

    def test_gap_not_drawn(self) -> None:
        """
        Twelve lost seconds in a run sampled every second leave a gap in the
        line, rather than a line across the time with no samples.
        """
        from playwright.sync_api import expect

        name = _postgres.new_name("gap")
        rows = [[float(seq)] for seq in range(40)]
        run_id = self.send_run(name, ["count"], rows, skip=list(range(14, 26)))
        self.open_run(name, run_id)
        expect(self.fact_value("Lost")).to_have_text("12")
        expect(self.page.locator(".chart canvas")).to_have_count(1)

        # The samples span 39 seconds, and 14 to 25 are missing.
        self.assertGreater(self.stroke_pixels("count", 5 / 39), 0)
        self.assertGreater(self.stroke_pixels("count", 32 / 39), 0)
        self.assertEqual(self.stroke_pixels("count", 19.5 / 39), 0)

    def test_compare_gap_not_drawn(self) -> None:
        """
        In the compare view too, the lost seconds of a run leave a gap in
        its line.
        """
        from playwright.sync_api import expect

        name = _postgres.new_name("compare-gap")
        rows = [[float(seq)] for seq in range(40)]
        gapped = self.send_run(name, ["count"], rows, skip=list(range(14, 26)))
        # Other values, so that its line does not cover the first run's.
        whole = self.send_run(name, ["count"], [[100.0 + seq] for seq in range(40)])
        # The first run in the URL is drawn in the first color, blue.
        self.page.goto(f"{self.service.base_url}/compare?runs={gapped},{whole}")
        expect(self.page.locator(".compare-run")).to_have_count(2)
        expect(self.page.locator(".chart canvas")).to_have_count(1)

        self.assertGreater(self.stroke_pixels("count", 5 / 39), 0)
        self.assertGreater(self.stroke_pixels("count", 32 / 39), 0)
        self.assertEqual(self.stroke_pixels("count", 19.5 / 39), 0)

    def test_reduced_range_gaps(self) -> None:
        """
        In a reduced range, whose buckets give a point at their first and
        their last sample, only missing buckets make a gap.
        """
        name = _postgres.new_name("reduced-gaps")
        self.send_run(name, ["a"], [[1.0]])
        self.page.goto(self.service.base_url + "/")
        result = self.page.evaluate(
            """async () => {
                const { withGaps } = await import("/static/gaps.js");
                // Buckets 10 seconds wide, with samples every second.
                const starts = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90];
                const whole = starts.flatMap((start) => [start, start + 9]);
                const missing = whole.filter((t) => t < 30 || t >= 60);
                const count = (t) => withGaps({ t, values: [t.map(() => 1)] })
                    .values[0].filter((value) => value === null).length;
                return { whole: count(whole), missing: count(missing) };
            }"""
        )

        self.assertEqual(result["whole"], 0)
        self.assertEqual(result["missing"], 1)

    def test_value_axis_ranges(self) -> None:
        """
        Short charts get at least three y axis labels for values between 0.1
        and 0.9 or 3 and 4.6, and a constant series gets a range around its
        value.
        """
        name = _postgres.new_name("axes")
        self.send_run(name, ["a"], [[1.0]])
        self.page.goto(self.service.base_url + "/")
        result = self.page.evaluate(
            """async () => {
                const charts = await import("/static/charts.js");
                // Return the number of y axis labels of a short chart of
                // ``values``, once drawn.
                async function labels(values) {
                    let count = null;
                    const options = charts.timeOptions(
                        "v", 0, { width: 600, height: charts.chartHeight(20) },
                        {}, {});
                    const format = options.axes[1].values;
                    options.axes[1].values = (plot, splits) => {
                        count = splits.length;
                        return format(plot, splits);
                    };
                    const target = document.createElement("div");
                    document.body.append(target);
                    const t = values.map((value, i) => i + 1);
                    const plot = new uPlot(options, [t, values], target);
                    await new Promise((resolve) => requestAnimationFrame(resolve));
                    plot.destroy();
                    target.remove();
                    return count;
                }
                return {
                    fractions: await labels([0.1, 0.3, 0.5, 0.7, 0.9]),
                    memory: await labels([3, 3.8, 4.6]),
                    zero: charts.valueRange(null, 0, 0),
                    five: charts.valueRange(null, 5, 5),
                };
            }"""
        )

        self.assertGreaterEqual(result["fractions"], 3, result)
        self.assertGreaterEqual(result["memory"], 3, result)
        self.assertEqual(result["zero"], [0, 1])
        self.assertEqual(result["five"], [4.5, 5.5])

    def test_legend_shown_on_hover(self) -> None:
        """
        The legend values in the chart headers are hidden until the cursor is
        on a chart, and then every chart shows its value at that time.
        """
        from playwright.sync_api import expect

        name = _postgres.new_name("legend")
        run_id = self.send_run(name, ["a", "b"], [[1.0, 2.0], [3.0, 4.0]])
        self.open_run(name, run_id)
        legends = self.page.locator(".chart .u-legend")
        expect(legends).to_have_count(2)
        expect(legends.nth(0)).to_be_hidden()
        expect(legends.nth(1)).to_be_hidden()

        self.page.locator('.chart[data-column="a"] .u-over').hover()

        expect(legends.nth(0)).to_be_visible()
        expect(legends.nth(1)).to_be_visible()


class AddressTests(BrowserTestCase):
    """
    Tests of unknown addresses and the home page's wording.
    """

    def test_unknown_address_shows_page(self) -> None:
        """
        A browser opening an unknown address gets the page with a not-found
        message and the tree, not a JSON error.
        """
        from playwright.sync_api import expect

        response = self.page.goto(self.service.base_url + "/nothing")

        assert response is not None
        self.assertEqual(response.status, 404)
        expect(self.page.locator("#run .error")).to_have_text(
            "There is no page at /nothing. Select a run on the left."
        )

    def test_one_column_singular(self) -> None:
        """
        The home page counts a live run's single column as "1 column".
        """
        from playwright.sync_api import expect

        name = _postgres.new_name("one-column")
        run_id = self.send_run(name, ["only"], [[1.0], [2.0]])

        self.page.goto(self.service.base_url + "/")

        run = self.page.locator(f'a.home-run[data-run-id="{run_id}"]')
        expect(run).to_contain_text("2 samples · 1 column")
        expect(run).not_to_contain_text("columns")
