"""
Offer mnemic more samples than it can store, and check that it stays within
its memory bound, keeps answering the web API and counts every drop.

The script starts its own PostgreSQL (from the pgserver wheel, in a temporary
directory) and its own ``twistd -n mnemic`` with ``--buffer-rows``. A child
process sends samples of five columns over loopback UDP at ``--rate`` per
second for ``--duration`` seconds. Meanwhile the script requests
``/api/tracers`` and the run's ``/samples`` every ``--probe-interval``
seconds and records how long each answer took, and it samples mnemic's
resident memory. After the flood it waits for the queue to drain and
compares the samples sent with those stored, dropped by mnemic and dropped by
the kernel. All traffic goes to 127.0.0.1.

Usage::

    python bench/overload.py --rate 150000 --duration 30 --buffer-rows 200000
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import signal
import socket
import statistics
import sys
import threading
import time
import urllib.request
import uuid
from typing import Any, Optional

import psutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._pgcontrol import RestartablePostgres  # noqa: E402
from bench.outage import _stored  # noqa: E402
from tests._twistd import TwistdProcess  # noqa: E402

# Resident memory one queued sample of five columns takes at most, in bytes:
# about 340 measured with tracemalloc on CPython 3.11, rounded up for the
# allocator's overhead. A sample of n columns takes about 180 + 32 n bytes.
BYTES_PER_QUEUED_ROW = 600

# Memory beyond the queue that mnemic may add under load: batches being
# encoded, psycopg2's buffers and the interpreter's arenas, in bytes.
WORKING_MEMORY = 64 * 2**20

COLUMNS = ["mem_allocation", "active_tasks", "cpu_percent", "rss_mb", "lag_ms"]


@dataclasses.dataclass
class OverloadResult:
    """
    Counts, memory and response times of one flood.
    """

    offered_rate: float
    sent: int
    send_seconds: float
    stored: int
    dropped_by_mnemic: int
    dropped_by_kernel: int
    baseline_rss_mb: float
    max_rss_mb: float
    rss_bound_mb: float
    probes: int
    probe_failures: int
    median_tracers_seconds: float
    max_tracers_seconds: float
    median_samples_seconds: float
    max_samples_seconds: float
    samples_at_rest_seconds: float

    @property
    def unaccounted(self) -> int:
        """
        Samples sent that were neither stored nor counted as dropped.
        """
        return (self.sent - self.stored - self.dropped_by_mnemic
                - self.dropped_by_kernel)


def send_flood(port: int, run_id: str, rate: float, duration: float,
               sent: Any) -> None:
    """
    Send an announcement, then samples at ``rate`` per second for
    ``duration`` seconds, in bursts every millisecond; store the count in
    ``sent``.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    address = ("127.0.0.1", port)
    columns = ",".join(f'"{c}"' for c in COLUMNS)
    sock.sendto((f'{{"v":1,"type":"run","run":"{run_id}","name":"overload-bench",'
                 f'"columns":[{columns}],"started":{time.time()!r}}}').encode(),
                address)
    prefix = f'{{"v":1,"type":"sample","run":"{run_id}","seq":'
    started = time.monotonic()
    total = int(rate * duration)
    burst = max(int(rate / 1000), 1)
    count = 0
    while count < total:
        delay = started + count / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = repr(time.time())
        for seq in range(count, min(count + burst, total)):
            sock.sendto((f'{prefix}{seq},"t":{now},"values":'
                         f'[{seq},3,12.5,104.25,0.125]}}').encode(), address)
        count = min(count + burst, total)
    sent.value = count
    sock.close()


class Prober(threading.Thread):
    """
    Requests the web API at a fixed interval and records each response time.
    """

    def __init__(self, service: TwistdProcess, run_id: str, interval: float) -> None:
        super().__init__(name="prober", daemon=True)
        self.paths = ["/api/tracers", f"/api/runs/{run_id}/samples?points=500"]
        self.base = f"http://127.0.0.1:{service.http_port}"
        self.interval = interval
        self.seconds: dict[str, list[float]] = {path: [] for path in self.paths}
        self.failures: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        """
        Probe until stopped; a probe that fails or times out is a failure.
        """
        index = 0
        while not self.stopping.wait(self.interval):
            path = self.paths[index % len(self.paths)]
            index += 1
            started = time.monotonic()
            try:
                with urllib.request.urlopen(self.base + path, timeout=10) as answer:
                    answer.read()
            except OSError as error:
                # A run not yet announced in the database gives 404 at first.
                if getattr(error, "code", None) != 404:
                    self.failures.append(f"{path}: {error}")
                continue
            self.seconds[path].append(time.monotonic() - started)


class MemoryWatch(threading.Thread):
    """
    Samples a process's resident memory every 50 ms and keeps the peak.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(name="memory watch", daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        """
        Sample until stopped.
        """
        while not self.stopping.wait(0.05):
            self.peak = max(self.peak, self.process.memory_info().rss)


def run_overload(database: RestartablePostgres, rate: float, duration: float,
                 buffer_rows: int, probe_interval: float = 0.25,
                 drain_timeout: float = 300.0,
                 mnemic_args: Optional[list[str]] = None) -> OverloadResult:
    """
    Flood a fresh mnemic on ``database`` and return what became of the samples.
    """
    service = TwistdProcess("--postgres", database.dsn, "--buffer-rows",
                            str(buffer_rows), *(mnemic_args or []))
    try:
        _wait_web_ready(service)
        baseline = psutil.Process(service.process.pid).memory_info().rss
        run_id = str(uuid.uuid4())
        watch = MemoryWatch(service.process.pid)
        prober = Prober(service, run_id, probe_interval)
        sent = multiprocessing.Value("q", 0)
        sender = multiprocessing.Process(
            target=send_flood, args=(service.udp_port, run_id, rate, duration, sent)
        )
        watch.start()
        prober.start()
        started = time.monotonic()
        sender.start()
        sender.join()
        send_seconds = time.monotonic() - started
        prober.stopping.set()
        prober.join()
        _wait_drained(service, int(sent.value), drain_timeout)
        watch.stopping.set()
        watch.join()
        at_rest = time.monotonic()
        service.get(prober.paths[1])
        at_rest = time.monotonic() - at_rest

        tracers, samples = (prober.seconds[path] or [0.0] for path in prober.paths)
        return OverloadResult(
            offered_rate=rate,
            sent=int(sent.value),
            send_seconds=send_seconds,
            stored=_stored(database.dsn, run_id),
            dropped_by_mnemic=int(service.metric("mnemic_rows_dropped_total")),
            dropped_by_kernel=int(service.metric("mnemic_udp_kernel_drops_total")),
            baseline_rss_mb=baseline / 2**20,
            max_rss_mb=watch.peak / 2**20,
            rss_bound_mb=(baseline + memory_bound(buffer_rows)) / 2**20,
            probes=len(tracers) + len(samples) + len(prober.failures),
            probe_failures=len(prober.failures),
            median_tracers_seconds=statistics.median(tracers),
            max_tracers_seconds=max(tracers),
            median_samples_seconds=statistics.median(samples),
            max_samples_seconds=max(samples),
            samples_at_rest_seconds=at_rest,
        )
    finally:
        service.stop(signal.SIGTERM)


def _wait_web_ready(service: TwistdProcess, timeout: float = 30.0) -> None:
    # The writer creates the schema when it first connects, and until then
    # the web API returns 500. The first response also opens the web app's
    # connections, so they count in the baseline memory.
    deadline = time.monotonic() + timeout
    while True:
        try:
            service.get("/api/tracers")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def memory_bound(buffer_rows: int) -> int:
    """
    Return the bytes mnemic may grow by with ``buffer_rows`` queued samples
    of five columns.
    """
    return buffer_rows * BYTES_PER_QUEUED_ROW + WORKING_MEMORY


def _wait_drained(service: TwistdProcess, sent: int, timeout: float) -> None:
    # Every datagram arrived or was dropped by the kernel, and the writer's
    # queue is empty.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        arrived = (service.metric("mnemic_datagrams_received_total")
                   + service.metric("mnemic_udp_kernel_drops_total"))
        if arrived >= sent + 1 and service.metric("mnemic_queue_rows") == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"mnemic did not drain its queue within {timeout} s")


def main() -> int:
    """
    Parse the arguments, run the flood and print the results.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=150_000.0,
                        help="samples offered per second [default: 150000]")
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds of flooding [default: 30]")
    parser.add_argument("--buffer-rows", type=int, default=200_000,
                        help="mnemic's --buffer-rows [default: 200000]")
    parser.add_argument("--probe-interval", type=float, default=0.25,
                        help="seconds between web API requests [default: 0.25]")
    options = parser.parse_args()

    with RestartablePostgres() as database:
        result = run_overload(database, options.rate, options.duration,
                              options.buffer_rows, options.probe_interval)
    for field in dataclasses.fields(result):
        value = getattr(result, field.name)
        print(f"{field.name:>22}: {value:.3f}" if isinstance(value, float)
              else f"{field.name:>22}: {value}")
    print(f"{'achieved rate':>22}: {result.sent / result.send_seconds:.0f}")
    print(f"{'unaccounted':>22}: {result.unaccounted}")
    within = (result.unaccounted == 0 and result.max_rss_mb <= result.rss_bound_mb
              and result.probe_failures == 0
              and max(result.max_tracers_seconds, result.max_samples_seconds) < 1.0)
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
