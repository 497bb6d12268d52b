"""
Measure how long a sample takes from its datagram to the charts of an open
page: the time from sending a sample until the page shows its value as the
chart's latest value.

The script starts an embedded PostgreSQL in a temporary directory and a
``twistd -n mnemic`` on it with its default flush interval, and opens a run
in headless Chromium. It then sends samples over loopback UDP, each with a
new value and after a random pause, and times how long each takes to appear.

Usage::

    python bench/web_live_latency.py --samples 30
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests._twistd import TwistdProcess  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def datagram(message: dict[str, object]) -> bytes:
    """
    Encode one version 1 message.
    """
    return json.dumps({"v": 1, **message}).encode()


def measure(service: TwistdProcess, count: int) -> list[float]:
    """
    Return the milliseconds each of ``count`` samples took to reach the page.
    """
    from playwright.sync_api import sync_playwright

    run_id = str(uuid.uuid4())
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    address = ("127.0.0.1", service.udp_port)
    sender.sendto(datagram({"type": "run", "run": run_id, "name": "bench-live",
                            "columns": ["value"], "started": time.time()}), address)
    sender.sendto(datagram({"type": "sample", "run": run_id, "seq": 0,
                            "t": time.time(), "values": [0.25]}), address)
    durations = []
    pauses = random.Random(1)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"http://127.0.0.1:{service.http_port}/runs/{run_id}")
        latest = page.locator(".chart-latest")
        page.wait_for_function("() => document.querySelector('.chart-latest')"
                               " && document.querySelector('.chart-latest')"
                               ".textContent === '0.25'", timeout=30_000)
        for seq in range(1, count + 1):
            value = seq + 0.25
            began = time.perf_counter()
            sender.sendto(datagram({"type": "sample", "run": run_id, "seq": seq,
                                    "t": time.time(), "values": [value]}), address)
            page.wait_for_function(
                "(text) => document.querySelector('.chart-latest')"
                ".textContent === text",
                arg=f"{value:g}", polling=10, timeout=30_000)
            durations.append((time.perf_counter() - began) * 1000)
            assert latest.inner_text() == f"{value:g}"
            # A random pause, so that samples arrive at every point of the
            # page's polling interval.
            time.sleep(pauses.uniform(0.3, 1.3))
        browser.close()
    sender.close()
    return durations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=30)
    arguments = parser.parse_args()
    from mnemic._embedded import EmbeddedPostgres

    directory = tempfile.mkdtemp(prefix="mnemic-bench-live-")
    server = EmbeddedPostgres(os.path.join(directory, "pgdata"))
    service = None
    try:
        service = TwistdProcess("--postgres", server.start())
        durations = sorted(measure(service, arguments.samples))
        p90 = durations[min(len(durations) - 1, int(len(durations) * 0.9))]
        print(f"sample to chart: median {statistics.median(durations):.0f} ms,"
              f" p90 {p90:.0f} ms, max {durations[-1]:.0f} ms, n={len(durations)}")
    finally:
        if service is not None:
            service.kill()
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
