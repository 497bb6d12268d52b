"""
Take the screenshots of the web page in docs/, at 1280x800, from a mnemic
fed with simulated runs.

The script starts an embedded PostgreSQL in a temporary directory and a
``twistd -n mnemic`` on it. Over loopback UDP it sends three runs of a
simulated web service (``api-server``, the last one still running and
leaking memory) and runs of two other tracers. The live run keeps sending
while the script drives headless Chromium. The data comes from fixed random
seeds.

Usage::

    python bench/web_screenshots.py --output docs
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from typing import Any, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests._twistd import TwistdProcess  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
API_COLUMNS = [
    "mem_allocation", "active_tasks", "cpu_percent", "request_latency_ms",
    "queue_depth", "cache_hit_ratio",
]


class SimulatedService:
    """
    The metrics of a simulated web service, one sample per second: queue
    depth drives latency, cache hits fall as the queue grows, and memory
    follows a garbage-collection sawtooth with an optional leak.
    """

    def __init__(self, seed: int, leak_mb_per_hour: float = 0.0) -> None:
        self._random = random.Random(seed)
        self._leak = leak_mb_per_hour / 3600
        self._memory = 38.0

    def values(self, second: int) -> list[Optional[float]]:
        """
        Return the sample of ``second`` seconds after the start.
        """
        noise = self._random.gauss
        burst = 30 if (second // 240) % 4 == 3 and second % 240 < 70 else 0
        queue = max(0, round(9 + 6 * math.sin(second / 55) + burst + noise(0, 2)))
        self._memory += 0.05 + 0.02 * queue / 10 + self._leak
        if self._memory > 46 + self._leak * second:
            self._memory -= 7.5
        return [
            round(self._memory + noise(0, 0.1), 3),
            max(1, round(14 + queue * 0.9 + noise(0, 2))),
            round(min(100.0, max(0.0, 18 + queue * 1.6 + noise(0, 5))), 1),
            round(21 + queue * 1.8 + self._random.expovariate(0.25), 2),
            queue,
            round(min(1.0, 0.93 - 0.004 * queue + noise(0, 0.01)), 4),
        ]


def announcement(run_id: str, name: str, columns: list[str], started: float,
                 host: str, pid: int) -> bytes:
    """
    Encode a version 1 run announcement.
    """
    return json.dumps({"v": 1, "type": "run", "run": run_id, "name": name,
                       "columns": columns, "started": started, "host": host,
                       "pid": pid}).encode()


def sample(run_id: str, seq: int, t: float, values: list[Any]) -> bytes:
    """
    Encode a version 1 sample.
    """
    return json.dumps({"v": 1, "type": "sample", "run": run_id, "seq": seq,
                       "t": t, "values": values}).encode()


class Sender:
    """
    Sends datagrams to mnemic, pausing now and then so that no receive
    buffer overflows.
    """

    def __init__(self, port: int) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._address = ("127.0.0.1", port)
        self._sent = 0

    def send(self, datagram: bytes) -> None:
        self._socket.sendto(datagram, self._address)
        self._sent += 1
        if self._sent % 500 == 0:
            time.sleep(0.05)


def send_past_run(sender: Sender, name: str, columns: list[str], start: float,
                  seconds: int, make_values: Any, host: str, pid: int) -> str:
    """
    Send a finished run of ``seconds`` samples, one a second from ``start``.
    """
    run_id = str(uuid.uuid4())
    sender.send(announcement(run_id, name, columns, start, host, pid))
    for second in range(seconds):
        sender.send(sample(run_id, second, start + second, make_values(second)))
    return run_id


def feed_live_run(sender: Sender, run_id: str, start: float,
                  service: SimulatedService, stop: threading.Event) -> None:
    """
    Send the live run's samples up to now, then one a second until ``stop``.
    """
    second = 0
    while not stop.is_set():
        while start + second <= time.time():
            sender.send(sample(run_id, second, start + second, service.values(second)))
            second += 1
        stop.wait(0.2)


def send_runs(sender: Sender, stop: threading.Event) -> dict[str, Any]:
    """
    Send every simulated run, start the live one and return the run ids.
    """
    now = float(int(time.time()))
    runs: dict[str, Any] = {}
    runs["api_old"] = send_past_run(
        sender, "api-server", API_COLUMNS, now - 3 * 3600, 1500,
        SimulatedService(1).values, "web-1", 48211)
    runs["api_previous"] = send_past_run(
        sender, "api-server", API_COLUMNS, now - 3600, 1800,
        SimulatedService(2).values, "web-1", 51377)
    worker = random.Random(3)
    runs["worker"] = send_past_run(
        sender, "worker-pool", ["jobs_done", "jobs_failed", "active_workers"],
        now - 5400, 900,
        lambda s: [s * 3 + worker.randint(0, 2), s // 97, 8 - (s // 300) % 3],
        "batch-2", 7710)
    runs["etl"] = send_past_run(
        sender, "etl-nightly", ["rows_read", "rows_written", "lag_seconds"],
        now - 86400, 600,
        lambda s: [s * 1200.0, s * 1180.0, None if s % 50 == 0 else 3 + (s % 17) / 4],
        "etl-1", 902)

    live_id = str(uuid.uuid4())
    live_start = now - 20 * 60
    sender.send(announcement(live_id, "api-server", API_COLUMNS, live_start, "web-1",
                             53102))
    thread = threading.Thread(
        target=feed_live_run,
        args=(sender, live_id, live_start, SimulatedService(4, 5.0), stop),
        daemon=True,
    )
    thread.start()
    runs["api_live"] = live_id
    runs["thread"] = thread
    return runs


def hover(page: Any, column: str, fraction: float) -> None:
    """
    Move the mouse over the chart of ``column`` at ``fraction`` of its width.
    """
    box = page.locator(f'.chart[data-column="{column}"] .u-over').bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)


def take_screenshots(base_url: str, runs: dict[str, Any], output: str) -> None:
    """
    Open each view in Chromium and save it as docs/screenshot-*.png.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})

        def shoot(name: str) -> None:
            path = os.path.join(output, f"screenshot-{name}.png")
            page.screenshot(path=path)
            print("wrote", path)

        page.goto(f"{base_url}/runs/{runs['api_live']}")
        page.wait_for_selector(".chart canvas")
        time.sleep(2.5)
        hover(page, "mem_allocation", 0.72)
        shoot("run")

        page.get_by_role("tab", name="Correlations").click()
        page.wait_for_selector(".heatmap td")
        time.sleep(0.5)
        shoot("correlations")

        page.goto(f"{base_url}/compare?runs={runs['api_live']},{runs['api_previous']}")
        page.wait_for_selector(".chart canvas")
        time.sleep(2)
        hover(page, "mem_allocation", 0.55)
        shoot("compare")

        # The empty state as a new user sees it: no tracers, and the default
        # UDP port even when this service had to use another.
        page.route("**/api/tracers", lambda route: route.fulfill(
            status=200, content_type="application/json", body="[]"))

        def default_port(route: Any) -> None:
            response = route.fetch()
            body = re.sub(r'data-udp-port="\d+"', 'data-udp-port="12013"',
                          response.text())
            route.fulfill(response=response, body=body)

        page.route(f"{base_url}/", default_port)
        page.goto(f"{base_url}/")
        page.wait_for_selector(".empty-state")
        shoot("empty")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="docs",
                        help="directory for the PNG files [default: docs]")
    arguments = parser.parse_args()
    from mnemic._embedded import EmbeddedPostgres

    directory = tempfile.mkdtemp(prefix="mnemic-screenshots-")
    server = EmbeddedPostgres(os.path.join(directory, "pgdata"))
    stop = threading.Event()
    service = None
    try:
        service = TwistdProcess("--postgres", server.start())
        sender = Sender(service.udp_port)
        runs = send_runs(sender, stop)
        # Let the writer store the past runs before the first view.
        time.sleep(5)
        base_url = f"http://127.0.0.1:{service.http_port}"
        take_screenshots(base_url, runs, arguments.output)
    finally:
        stop.set()
        if service is not None:
            service.kill()
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
