"""
The harness of the browser tests: a real ``twistd mnemic`` process fed with
real UDP datagrams, and Debian's Chromium driven headless by Playwright.

The tests skip when Playwright or Chromium is missing, except in CI
(``CI=true``), where they fail instead.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any, Optional, Sequence

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from . import _postgres
from ._sending import Sender, announcement, new_run_id, sample

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Seconds to wait for the service to start, and for samples to be stored.
START_TIMEOUT = 60.0
STORE_TIMEOUT = 20.0
# Milliseconds Playwright waits for a page to show what a test expects. The
# page polls every 3 seconds, so this leaves room for two polls.
PAGE_TIMEOUT_MS = 10_000
XSS_TEXT = "<img src=x onerror=alert(1)>"


def browser_missing() -> Optional[str]:
    """
    Return why the browser tests cannot run here, or None when they can.
    """
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def free_port(kind: int) -> int:
    """
    Return a loopback port that is free now for sockets of ``kind``.
    """
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MnemicProcess:
    """
    A ``twistd -n mnemic`` process on free loopback ports, logging to a file.
    """

    def __init__(self, dsn: str) -> None:
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.http_port = free_port(socket.SOCK_STREAM)
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self._log = tempfile.NamedTemporaryFile(
            prefix="mnemic-browser-test-", suffix=".log", delete=False
        )
        # The repository goes first on the path so that twistd finds
        # twisted/plugins/mnemic_plugin.py in an editable install too.
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [REPOSITORY] + [p for p in [env.get("PYTHONPATH")] if p]
        )
        command = [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "-n",
            "--pidfile=",
            "mnemic",
            "--udp-port",
            str(self.udp_port),
            "--http-port",
            str(self.http_port),
            "--interface",
            "127.0.0.1",
            "--postgres",
            dsn,
        ]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=tempfile.gettempdir(),
            env=env,
        )

    def log_tail(self, characters: int = 3000) -> str:
        """
        Return the end of the service's log, for failure messages.
        """
        with open(self._log.name, encoding="utf-8", errors="replace") as log:
            return log.read()[-characters:]

    def get_json(self, path: str) -> Any:
        """
        GET ``path`` from the service and decode its JSON body.
        """
        with urllib.request.urlopen(self.base_url + path, timeout=5) as response:
            return json.load(response)

    def wait_ready(self) -> None:
        """
        Wait until the JSON API responds.

        :raises RuntimeError: when the process exits or does not respond in
            ``START_TIMEOUT`` seconds, with the end of its log.
        """
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"mnemic exited with status {self._process.returncode}:\n"
                    + self.log_tail()
                )
            try:
                self.get_json("/api/tracers")
                return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"mnemic did not respond within {START_TIMEOUT} s:\n"
                    + self.log_tail()
                )
            time.sleep(0.2)

    def stop(self) -> None:
        """
        Stop the process with SIGTERM, and kill it if it has not exited after
        15 seconds.
        """
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()
        os.unlink(self._log.name)


_service: Optional[MnemicProcess] = None


def shared_service() -> MnemicProcess:
    """
    Return the one mnemic process of the test run, starting it if needed.

    Starting it once keeps the tests fast. Each test sends runs under tracer
    names of its own, so they do not see each other's data.
    """
    global _service
    if _service is None:
        service = MnemicProcess(_postgres.test_dsn())
        atexit.register(service.stop)
        service.wait_ready()
        _service = service
    return _service

class BrowserTestCase(SynchronousTestCase):
    """
    A headless Chromium page and a running mnemic, with helpers to send runs
    and to act on the page.
    """

    def setUp(self) -> None:
        reason = browser_missing()
        if reason is not None:
            if os.environ.get("CI") == "true":
                self.fail(f"the browser tests must run in CI, but {reason}")
            raise SkipTest(reason)
        self.service = shared_service()
        self.sender = Sender(self.service.udp_port)
        self.addCleanup(self.sender.close)
        self.page = self.open_browser()

        from playwright.sync_api import expect

        expect.set_options(timeout=PAGE_TIMEOUT_MS)

    def open_browser(self) -> Any:
        """
        Start Chromium and return a 1280x800 page that records every dialog
        and script error.
        """
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        self.addCleanup(playwright.stop)
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        self.addCleanup(browser.close)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(PAGE_TIMEOUT_MS)

        self.dialogs: list[str] = []
        self.page_errors: list[str] = []

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        return page

    def tearDown(self) -> None:
        # Every test also checks that no script failed on the page.
        self.assertEqual(getattr(self, "page_errors", []), [])

    def send_run(
        self,
        name: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Optional[float]]],
        skip: Sequence[int] = (),
    ) -> str:
        """
        Send a run announcement and one sample per row, one second apart,
        ending now, and wait until the service has stored them all.

        :param skip: sequence numbers not to send, to make the run lose them.
        :return: the run id.
        """
        run_id = new_run_id()
        start = float(int(time.time()) - len(rows))
        self.sender.send(announcement(run_id, name, columns, started=start))
        sent = 0
        for seq, values in enumerate(rows):
            if seq not in skip:
                self.sender.send(sample(run_id, seq, values, t=start + seq))
                sent += 1
        self.wait_for_samples(run_id, sent)
        return run_id

    def wait_for_samples(self, run_id: str, count: int) -> None:
        """
        Wait until /api/tracers lists the run with ``count`` samples.
        """
        deadline = time.monotonic() + STORE_TIMEOUT
        while True:
            runs = [
                run
                for tracer in self.service.get_json("/api/tracers")
                for run in tracer["runs"]
                if run["id"] == run_id
            ]
            if runs and runs[0]["samples"] == count:
                return
            if time.monotonic() > deadline:
                self.fail(
                    f"run {run_id} did not show {count} samples in "
                    f"/api/tracers within {STORE_TIMEOUT} s: {runs}"
                )
            time.sleep(0.1)

    def tracer_section(self, name: str) -> Any:
        """
        Return the tree's section of the tracer ``name``, opened.
        """
        from playwright.sync_api import expect

        toggle = self.page.locator(".tracer-toggle").filter(
            has=self.page.locator(".tracer-name", has_text=name)
        )
        expect(toggle).to_have_count(1)
        if toggle.get_attribute("aria-expanded") != "true":
            toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        return self.page.locator(".tracer").filter(has=toggle)

    def open_run(self, name: str, run_id: str) -> None:
        """
        Load the page at /, open the tracer ``name`` and click its run.
        """
        self.page.goto(self.service.base_url + "/")
        section = self.tracer_section(name)
        section.locator(f'a[data-run-id="{run_id}"]').click()

    def fact_value(self, label: str) -> Any:
        """
        Return the value of the fact ``label`` in the run's header.
        """
        return self.page.locator(".fact", has_text=label).locator("dd")

    def drawn_canvases(self) -> int:
        """
        Return how many chart canvases have at least one painted pixel.
        """
        count: int = self.page.evaluate("""() => {
            let drawn = 0;
            for (const canvas of document.querySelectorAll(".chart canvas")) {
                const context = canvas.getContext("2d");
                const pixels = context.getImageData(
                    0, 0, canvas.width, canvas.height).data;
                if (pixels.some((value, i) => i % 4 === 3 && value > 0)) {
                    drawn += 1;
                }
            }
            return drawn;
        }""")
        return count

    def time_at(self, column: str, fraction: float) -> str:
        """
        Hover over the chart of ``column`` at ``fraction`` of its width and
        return the time its legend shows.
        """
        chart = self.page.locator(f'.chart[data-column="{column}"]')
        box = chart.locator(".u-over").bounding_box()
        assert box is not None
        self.page.mouse.move(
            box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2
        )
        time_text: str = chart.locator(".u-legend .u-value").first.inner_text()
        return time_text

    def drag(self, column: str, start: float, end: float) -> None:
        """
        Drag across the chart of ``column`` from ``start`` to ``end``, given
        as fractions of its width.
        """
        chart = self.page.locator(f'.chart[data-column="{column}"]')
        box = chart.locator(".u-over").bounding_box()
        assert box is not None
        y = box["y"] + box["height"] / 2
        self.page.mouse.move(box["x"] + box["width"] * start, y)
        self.page.mouse.down()
        self.page.mouse.move(box["x"] + box["width"] * end, y, steps=5)
        self.page.mouse.up()
