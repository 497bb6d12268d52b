"""
Markup in names sent by clients, checked in a real Chromium: it shows as
text in every view and never runs.
"""

from __future__ import annotations

from ._browser import XSS_TEXT, BrowserTestCase

# Markup that runs script if a page inserts it as HTML, each a column name.
HOSTILE_COLUMNS = [
    XSS_TEXT,
    "<svg onload=alert(2)>",
    "\"><img src=x onerror=alert(3)>",
    "javascript:alert(4)",
]


class MarkupInNamesTests(BrowserTestCase):
    """
    A tracer and columns named with markup.
    """

    def check_no_markup_ran(self) -> None:
        """
        Check that no element was made from the names and no dialog opened.
        """
        self.assertEqual(self.page.locator("img").count(), 0)
        self.assertEqual(self.page.locator("svg[onload]").count(), 0)
        self.assertEqual(self.page.locator("a[href^='javascript:']").count(), 0)
        self.assertEqual(self.dialogs, [])

    def test_names_shown_as_text(self) -> None:
        """
        A tracer named exactly ``<img src=x onerror=alert(1)>`` and columns
        named with markup show as literal text in the tree, the run's header,
        the chart titles and the legends, including while hovering.
        """
        from playwright.sync_api import expect

        run_id = self.send_run(XSS_TEXT, HOSTILE_COLUMNS,
                               [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])

        # Opened by URL, because other tests' tracer names contain this name
        # too, so a search of the tree by text would find several.
        self.page.goto(f"{self.service.base_url}/runs/{run_id}")

        tracer = self.page.locator(".tracer-name").get_by_text(XSS_TEXT, exact=True)
        expect(tracer).to_have_count(1)
        expect(self.page.locator(".run-name-text")).to_have_text(XSS_TEXT)
        expect(self.page.locator(".chart-title")).to_have_text(HOSTILE_COLUMNS)
        expect(self.page.locator(".chart canvas")).to_have_count(len(HOSTILE_COLUMNS))
        legends = self.page.locator(".chart .u-legend")
        for index, column in enumerate(HOSTILE_COLUMNS):
            expect(legends.nth(index)).to_contain_text(column)
        for chart in self.page.locator(".chart .u-over").all():
            chart.hover()
        self.check_no_markup_ran()

    def test_compare_view_with_markup_in_names(self) -> None:
        """
        The compare view shows the same names as text.
        """
        from playwright.sync_api import expect

        run_id = self.send_run(XSS_TEXT, [XSS_TEXT], [[1.0], [2.0]])

        self.page.goto(f"{self.service.base_url}/compare?runs={run_id}")
        expect(self.page.get_by_text(XSS_TEXT).first).to_be_visible()
        self.check_no_markup_ran()
