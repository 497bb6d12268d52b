"""
Measure how fast the web app serves a run of a million samples by five
columns: the JSON API's reduced samples, a zoomed range, new samples, the
correlations, and the page in Chromium until its charts are drawn.

The script starts an embedded PostgreSQL in a temporary directory (or uses
``--postgres DSN``) and a ``twistd -n mnemic`` on it, stores the run with one
INSERT ... SELECT from generate_series (as the writer would, with the run's
counters), and then times requests over loopback HTTP. For comparison it
also times, on the same database, the reduction query that mnemic used
before the summaries: one GROUP BY over every value of the run.

Usage::

    python bench/web_large_run.py --samples 1000000 --repeat 20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from typing import Any, Callable

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests._twistd import TwistdProcess, wait_until  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
START = 1_700_000_000

# Five columns with different shapes, and a spike of 1000 every 100,000
# samples in the last one, which the reduction must keep.
_INSERT_RUN = """
WITH ins AS (
    INSERT INTO samples (run_id, seq, t, vals)
    SELECT %(run)s, i, to_timestamp(%(start)s + i),
           ARRAY[sin(i / 1000.0), i %% 97, random(), i::float8,
                 CASE WHEN i %% 100000 = 5 THEN 1000 ELSE 0 END]
    FROM generate_series(0, %(count)s - 1) AS i
    RETURNING t
)
INSERT INTO runs (id, name, columns, started, host, pid, protocol, samples,
                  max_seq, first_sample, last_seen)
SELECT %(run)s, 'bench-large-run', ARRAY['wave', 'modulo', 'noise', 'counter',
                                         'spikes'],
       to_timestamp(%(start)s), 'bench', 1, 1, count(*), count(*) - 1,
       min(t), max(t)
FROM ins
"""

# The reduction of every value of the run in one GROUP BY, as
# mnemic/_store.py ran it before the summaries were added.
_OLD_REDUCTION = """
SELECT b, u.i, min(u.v), max(u.v), min(s.e), max(s.e)
FROM (
    SELECT width_bucket(extract(epoch FROM t)::float8, %s, %s, %s) AS b,
           extract(epoch FROM t)::float8 AS e, vals
    FROM samples WHERE run_id = %s
) AS s, unnest(s.vals) WITH ORDINALITY AS u(v, i)
GROUP BY b, u.i ORDER BY b, u.i
"""


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    """
    Run ``action`` and return its duration in milliseconds and its result.
    """
    began = time.perf_counter()
    result = action()
    return (time.perf_counter() - began) * 1000, result


def get_json(port: int, path: str) -> Any:
    """
    GET ``path`` from the service and decode the JSON body.
    """
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as reply:
        return json.load(reply)


def summarize(label: str, durations: list[float]) -> str:
    """
    Format the median and the 90th percentile of ``durations`` in
    milliseconds.
    """
    ordered = sorted(durations)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return (f"{label:<44} median {statistics.median(ordered):8.1f} ms"
            f"   p90 {p90:8.1f} ms   n={len(ordered)}")


def time_page(port: int, run_id: str, loads: int) -> list[float]:
    """
    Load the run's page in headless Chromium ``loads`` times and return the
    milliseconds from navigation until every chart canvas has pixels.
    """
    from playwright.sync_api import sync_playwright

    drawn = """() => {
        const canvases = document.querySelectorAll(".chart canvas");
        if (canvases.length !== 5) return false;
        return Array.from(canvases).every((canvas) => {
            const pixels = canvas.getContext("2d").getImageData(
                0, 0, canvas.width, canvas.height).data;
            return pixels.some((value, i) => i % 4 === 3 && value > 0);
        });
    }"""
    durations = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        for _ in range(loads):
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            began = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/runs/{run_id}")
            page.wait_for_function(drawn, polling=20, timeout=30_000)
            durations.append((time.perf_counter() - began) * 1000)
            page.close()
        browser.close()
    return durations


def run(dsn: str, samples: int, repeat: int, loads: int) -> None:
    """
    Store the run, start mnemic on ``dsn`` and print every measurement.
    """
    service = TwistdProcess("--postgres", dsn, "--no-udp", wait_for=("http",))
    try:
        port = service.http_port
        connection = psycopg2.connect(dsn)
        connection.autocommit = True
        cursor = connection.cursor()

        def schema_ready() -> bool:
            cursor.execute("SELECT to_regclass('sample_summary') IS NOT NULL")
            return bool(cursor.fetchone()[0])

        wait_until(schema_ready, timeout=60, message="mnemic created no schema")
        run_id = str(uuid.uuid4())
        took, _ = timed(lambda: cursor.execute(
            _INSERT_RUN, {"run": run_id, "start": START, "count": samples}))
        cursor.execute("VACUUM ANALYZE samples")
        print(f"stored {samples:,} samples x 5 columns in {took / 1000:.1f} s")
        path = f"/api/runs/{run_id}/samples?points=1000"
        end = START + samples - 1

        first, body = timed(lambda: get_json(port, path))
        print(f"{'first request (builds the summary)':<44} {first:8.1f} ms,"
              f" {len(body['t'])} points, spike kept: {max(body['values'][4]) == 1000}")
        cases = [
            ("points=1000, whole run", path),
            ("points=1000, 10% of the run", f"{path}&start={START + samples * 0.45}"
                                            f"&end={START + samples * 0.55}"),
            ("points=1000, 0.1% of the run (from samples)",
             f"{path}&start={START + samples * 0.5}&end={START + samples * 0.501}"),
            ("since= the last 10 samples", f"{path}&since={end - 10}"),
        ]
        for label, case_path in cases:
            durations = []
            for _ in range(repeat):
                took, _ = timed(lambda: get_json(port, case_path))  # noqa: B023
                durations.append(took)
            print(summarize(label, durations))
        correlations = [
            timed(lambda: get_json(port, f"/api/runs/{run_id}/correlations"))[0]
            for _ in range(max(3, repeat // 4))
        ]
        print(summarize("correlations, whole run", correlations))

        old = []
        for _ in range(3):
            took, _ = timed(lambda: cursor.execute(
                _OLD_REDUCTION, (START, end + 1e-3, 500, run_id)))
            old.append(took)
        print(summarize("earlier reduction query alone (SQL)", old))
        if loads:
            page_loads = time_page(port, run_id, loads)
            print(summarize("page load until 5 charts drawn", page_loads))
        cursor.execute("DELETE FROM runs WHERE id = %s", (run_id,))
        cursor.execute("DELETE FROM samples WHERE run_id = %s", (run_id,))
        connection.close()
    finally:
        service.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20,
                        help="requests per measurement [default: 20]")
    parser.add_argument("--page-loads", type=int, default=5,
                        help="page loads in Chromium, 0 for none [default: 5]")
    parser.add_argument("--postgres", help="libpq DSN [default: an embedded server]")
    arguments = parser.parse_args()
    counts = (arguments.samples, arguments.repeat, arguments.page_loads)
    if arguments.postgres:
        run(arguments.postgres, *counts)
        return
    from mnemic._embedded import EmbeddedPostgres

    directory = tempfile.mkdtemp(prefix="mnemic-bench-web-")
    server = EmbeddedPostgres(os.path.join(directory, "pgdata"))
    try:
        run(server.start(), *counts)
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
