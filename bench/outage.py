"""
Stop PostgreSQL under a steady stream of samples, start it again, and count
what mnemic stored.

The script starts its own PostgreSQL (from the pgserver wheel, in a temporary
directory) and its own ``twistd -n mnemic`` on it. It sends samples of one run
over loopback UDP at ``--rate`` per second. After ``--before`` seconds it
stops the database with a fast shutdown of the postmaster, found by its pid.
It starts the database again after ``--outage`` seconds and keeps sending for
``--after`` seconds. Then it waits for mnemic's queue to drain and compares the samples
sent with those stored, dropped by mnemic (``--buffer-rows``) and dropped by
the kernel. All traffic goes to 127.0.0.1.

Usage::

    python bench/outage.py --rate 1000 --before 5 --outage 20 --after 10
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
from typing import Optional

import psutil
import psycopg2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._pgcontrol import RestartablePostgres  # noqa: E402
from tests._twistd import TwistdProcess  # noqa: E402


@dataclasses.dataclass
class OutageResult:
    """
    Counts of the samples of one outage run.
    """

    sent: int
    stored: int
    dropped_by_mnemic: int
    dropped_by_kernel: int
    reconnects: int
    max_queue_rows: int
    max_rss_mb: float
    drain_seconds: float

    @property
    def unaccounted(self) -> int:
        """
        Samples sent that were neither stored nor counted as dropped.
        """
        return (self.sent - self.stored - self.dropped_by_mnemic
                - self.dropped_by_kernel)


class PacedSender(threading.Thread):
    """
    Sends an announcement, then ``rate`` samples a second of one run for
    ``duration`` seconds, to 127.0.0.1:``port``.
    """

    def __init__(self, port: int, rate: float, duration: float) -> None:
        super().__init__(name="paced sender", daemon=True)
        self.port = port
        self.rate = rate
        self.duration = duration
        self.run_id = str(uuid.uuid4())
        self.sent = 0

    def run(self) -> None:
        """
        Send until the duration has passed.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        address = ("127.0.0.1", self.port)
        sock.sendto(json.dumps({
            "v": 1, "type": "run", "run": self.run_id, "name": "outage-bench",
            "columns": ["a", "b"], "started": time.time(),
        }).encode(), address)
        started = time.monotonic()
        total = int(self.rate * self.duration)
        while self.sent < total:
            due = started + self.sent / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock.sendto(self._sample(self.sent), address)
            self.sent += 1
        sock.close()

    def _sample(self, seq: int) -> bytes:
        return (
            f'{{"v":1,"type":"sample","run":"{self.run_id}","seq":{seq},'
            f'"t":{time.time()!r},"values":[{seq},1.5]}}'
        ).encode()


class Monitor(threading.Thread):
    """
    Polls mnemic's queue depth and resident memory until stopped.
    """

    def __init__(self, service: TwistdProcess) -> None:
        super().__init__(name="monitor", daemon=True)
        self.service = service
        self.max_queue_rows = 0
        self.max_rss = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        """
        Sample every 0.2 s.
        """
        process = psutil.Process(self.service.process.pid)
        while not self.stopping.wait(0.2):
            self.max_rss = max(self.max_rss, process.memory_info().rss)
            queue = self.service.metric("mnemic_queue_rows")
            self.max_queue_rows = max(self.max_queue_rows, int(queue))


def run_outage(database: RestartablePostgres, rate: float, before: float,
               outage: float, after: float, buffer_rows: Optional[int] = None,
               drain_timeout: float = 120.0) -> OutageResult:
    """
    Run one outage against ``database`` and return what became of the samples.
    """
    arguments = ["--postgres", database.dsn]
    if buffer_rows is not None:
        arguments += ["--buffer-rows", str(buffer_rows)]
    service = TwistdProcess(*arguments)
    try:
        monitor = Monitor(service)
        monitor.start()
        sender = PacedSender(service.udp_port, rate, before + outage + after)
        sender.start()

        time.sleep(before)
        database.stop()
        time.sleep(outage)
        database.start()
        restarted = time.monotonic()
        sender.join()
        _wait_drained(service, sender.sent, drain_timeout)
        drain_seconds = time.monotonic() - restarted
        monitor.stopping.set()
        monitor.join()

        return OutageResult(
            sent=sender.sent,
            stored=_stored(database.dsn, sender.run_id),
            dropped_by_mnemic=int(service.metric("mnemic_rows_dropped_total")),
            dropped_by_kernel=int(service.metric("mnemic_udp_kernel_drops_total")),
            reconnects=int(service.metric("mnemic_db_reconnects_total")),
            max_queue_rows=monitor.max_queue_rows,
            max_rss_mb=monitor.max_rss / 2**20,
            drain_seconds=drain_seconds,
        )
    finally:
        service.stop(signal.SIGTERM)


def _wait_drained(service: TwistdProcess, sent: int, timeout: float) -> None:
    # Every sample (and the announcement) was received or dropped by the
    # kernel, and the writer's queue is empty.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        arrived = (service.metric("mnemic_datagrams_received_total")
                   + service.metric("mnemic_udp_kernel_drops_total"))
        if arrived >= sent + 1 and service.metric("mnemic_queue_rows") == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"mnemic did not drain its queue within {timeout} s")


def _stored(dsn: str, run_id: str) -> int:
    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM samples WHERE run_id = %s",
                           (run_id,))
            row = cursor.fetchone()
            assert row is not None
            return int(row[0])
    finally:
        connection.close()


def main() -> int:
    """
    Parse the arguments, run the outage and print the counts.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0,
                        help="samples sent per second [default: 1000]")
    parser.add_argument("--before", type=float, default=5.0,
                        help="seconds of sending before the outage [default: 5]")
    parser.add_argument("--outage", type=float, default=20.0,
                        help="seconds the database is down [default: 20]")
    parser.add_argument("--after", type=float, default=10.0,
                        help="seconds of sending after the restart [default: 10]")
    parser.add_argument("--buffer-rows", type=int, default=None,
                        help="mnemic's --buffer-rows [default: mnemic's default]")
    options = parser.parse_args()

    with RestartablePostgres() as database:
        result = run_outage(database, options.rate, options.before,
                            options.outage, options.after, options.buffer_rows)
    for field in dataclasses.fields(result):
        value = getattr(result, field.name)
        print(f"{field.name:>18}: {value:.2f}" if isinstance(value, float)
              else f"{field.name:>18}: {value}")
    print(f"{'unaccounted':>18}: {result.unaccounted}")
    return 0 if result.unaccounted == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
