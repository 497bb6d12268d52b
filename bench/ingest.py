"""
Measure how many samples per second mnemic stores, and what it loses.

The script starts its own mnemic (``twistd -n mnemic``) on an embedded
PostgreSQL in a temporary directory. For each rate it sends samples of a new
run over loopback UDP from a separate process for ``--duration`` seconds,
waits for the writer to catch up, and counts the rows stored. It also floods
two bare receivers, a ``socket.recvfrom`` loop that only counts and one that
also runs ``json.loads``, to show what any pure-Python receiver can take on
this machine. All traffic goes to 127.0.0.1.

Usage::

    python bench/ingest.py --rates 5000,30000 --duration 60 --flood 300000 \\
        --repeat 3 --processes 1,2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from typing import Any, Optional

import psutil
import psycopg2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests._sending import free_udp_port  # noqa: E402
from tests._twistd import TwistdProcess  # noqa: E402

COLUMNS = ["mem_allocation", "active_tasks", "cpu_percent", "rss_mb", "lag_ms"]
SOURCE_SOCKETS = 8


def encode_samples(run_id: str, count: int) -> list[bytes]:
    """
    Return ``count`` encoded version 1 samples of five columns for one run.
    """
    now = time.time()
    return [
        json.dumps({"v": 1, "type": "sample", "run": run_id, "seq": i,
                    "t": now + i / 1000, "values": [12.5 + i % 7, i % 13, 3.25,
                                                    104.0, 0.125]}).encode()
        for i in range(count)
    ]


def send_paced(port: int, datagrams: list[bytes], rate: Optional[float],
               result: Any) -> None:
    """
    Send the datagrams to 127.0.0.1:port at ``rate`` per second, or as fast
    as possible when ``rate`` is None; store the elapsed seconds in ``result``.
    """
    # Several source sockets, because SO_REUSEPORT spreads datagrams over
    # the processes sharing a port by hashing the sender's address.
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
               for _ in range(SOURCE_SOCKETS)]
    senders = [sock.sendto for sock in sockets]
    address = ("127.0.0.1", port)
    started = time.perf_counter()
    if rate is None:
        for index, datagram in enumerate(datagrams):
            senders[index % SOURCE_SOCKETS](datagram, address)
    else:
        # Send in small bursts every millisecond, so the pace is even.
        per_tick = max(int(rate / 1000), 1)
        for index in range(0, len(datagrams), per_tick):
            due = started + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            for offset, datagram in enumerate(datagrams[index:index + per_tick]):
                senders[(index + offset) % SOURCE_SOCKETS](datagram, address)
    result.value = time.perf_counter() - started
    for sock in sockets:
        sock.close()


def run_sender(port: int, datagrams: list[bytes], rate: Optional[float]) -> float:
    """
    Send from a child process, so the sender does not share our core time.
    """
    elapsed = multiprocessing.Value("d", 0.0)
    child = multiprocessing.Process(target=send_paced,
                                    args=(port, datagrams, rate, elapsed))
    child.start()
    child.join()
    return float(elapsed.value)


def bare_receiver(port_out: Any, decode: bool, stop_after: float, count_out: Any,
                  seconds_out: Any, ready: Any) -> None:
    """
    Count datagrams received (and decoded, if ``decode``) until ``stop_after``
    seconds pass without one. Report the count and the seconds from the
    first datagram to the last.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # SO_RCVBUFFORCE (33 on Linux), with the buffer size mnemic requests.
    sock.setsockopt(socket.SOL_SOCKET, 33, 32 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    port_out.value = sock.getsockname()[1]
    ready.set()
    data, _ = sock.recvfrom(65536)
    first = last = time.perf_counter()
    count = 1
    sock.settimeout(stop_after)
    try:
        while True:
            data, _ = sock.recvfrom(65536)
            if decode:
                json.loads(data)
            count += 1
            last = time.perf_counter()
    except socket.timeout:
        pass
    count_out.value = count
    seconds_out.value = last - first


def measure_bare(decode: bool, datagrams: list[bytes]) -> tuple[int, float]:
    """
    Flood a bare receiver and return (received, its receiving seconds).
    """
    port = multiprocessing.Value("i", 0)
    count = multiprocessing.Value("q", 0)
    seconds = multiprocessing.Value("d", 0.0)
    ready = multiprocessing.Event()
    receiver = multiprocessing.Process(
        target=bare_receiver, args=(port, decode, 1.0, count, seconds, ready))
    receiver.start()
    ready.wait()
    run_sender(port.value, datagrams, None)
    receiver.join()
    return int(count.value), float(seconds.value)


class MemoryWatch(threading.Thread):
    """
    Samples a process's RSS every 100 ms and keeps the peak.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self._process = psutil.Process(pid)
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.peak = max(self.peak, self._process.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop_event.set()


def stored_rows(dsn: str, run_id: str) -> int:
    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM samples WHERE run_id = %s", (run_id,))
            return int(cursor.fetchone()[0])
    finally:
        connection.close()


def wait_settled(dsn: str, run_id: str, expected: int,
                 timeout: float = 120) -> tuple[int, float]:
    """
    Wait until the stored count reaches ``expected`` or stops growing for
    3 s; return the count and the time.perf_counter() when it last grew.
    """
    deadline = time.monotonic() + timeout
    last, last_growth = -1, time.perf_counter()
    while time.monotonic() < deadline:
        count = stored_rows(dsn, run_id)
        if count != last:
            last, last_growth = count, time.perf_counter()
        if count >= expected or time.perf_counter() - last_growth > 3:
            break
        time.sleep(0.05)
    return last, last_growth


def measure_mnemic(port: int, dsn: str, rate: Optional[float],
                   count: int) -> dict[str, Any]:
    """
    Send one run of ``count`` samples at ``rate`` and count what was stored.
    """
    run_id = str(uuid.uuid4())
    datagrams = encode_samples(run_id, count)
    started = time.perf_counter()
    elapsed = run_sender(port, datagrams, rate)
    stored, finished = wait_settled(dsn, run_id, count)
    return {"rate": rate, "sent": count, "send_seconds": elapsed, "stored": stored,
            "lost": count - stored,
            "stored_per_second": stored / (finished - started)}


def measure_processes(processes: int, dsn: str, arguments: Any) -> None:
    """
    Start ``processes`` mnemic processes sharing one port, send each rate and
    the floods to them, and print one JSON line per measurement.
    """
    port = free_udp_port()
    extra = ["--reuse-port"] if processes > 1 else []
    services = [TwistdProcess("--postgres", dsn, "--udp-port", str(port), *extra,
                              *arguments.mnemic_args.split())
                for _ in range(processes)]
    watches = [MemoryWatch(service.process.pid) for service in services]
    for watch in watches:
        watch.start()

    label = {"processes": processes}
    try:
        for rate in [float(r) for r in arguments.rates.split(",") if r]:
            result = measure_mnemic(port, dsn, rate, int(rate * arguments.duration))
            print(json.dumps({**label, **result}), flush=True)

        floods = []
        for _ in range(arguments.repeat if arguments.flood else 0):
            flood = measure_mnemic(port, dsn, None, arguments.flood)
            datagrams = encode_samples(str(uuid.uuid4()), arguments.flood)
            bare, bare_seconds = measure_bare(False, datagrams)
            decoded, decoded_seconds = measure_bare(True, datagrams)
            flood.update(
                bare_received=bare, bare_per_second=bare / bare_seconds,
                json_received=decoded, json_per_second=decoded / decoded_seconds,
                ratio=flood["stored_per_second"] / (decoded / decoded_seconds),
            )
            floods.append(flood)
            print(json.dumps({**label, **flood}), flush=True)

        if floods:
            stored = statistics.median(f["stored_per_second"] for f in floods)
            decoded = statistics.median(f["json_per_second"] for f in floods)
            ratio = statistics.median(f["ratio"] for f in floods)
            print(f"{processes} process(es): median stored/s flooded: {stored:.0f},"
                  f" json.loads loop received/s: {decoded:.0f}, ratio {ratio:.2f}")
    finally:
        for watch in watches:
            watch.stop()
        for service in services:
            service.stop(signal.SIGTERM)
    peaks = ", ".join(f"{watch.peak / 2**20:.1f}" for watch in watches)
    print(f"{processes} process(es): peak RSS MiB: {peaks}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="5000,30000",
                        help="comma-separated send rates, samples per second")
    parser.add_argument("--duration", type=float, default=60,
                        help="seconds each rate is sent for")
    parser.add_argument("--flood", type=int, default=300_000,
                        help="samples sent as fast as possible (0 to skip)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="times the flood comparison is repeated")
    parser.add_argument("--processes", default="1",
                        help="comma-separated numbers of mnemic processes sharing"
                        " the port with --reuse-port, measured in turn")
    parser.add_argument("--mnemic-args", default="",
                        help="extra options for twistd mnemic")
    arguments = parser.parse_args()

    from mnemic._embedded import EmbeddedPostgres

    directory = tempfile.mkdtemp(prefix="mnemic-bench-")
    database = EmbeddedPostgres(os.path.join(directory, "pgdata"))
    dsn = database.start()
    print(json.dumps({"load_average": os.getloadavg(), "cpus": os.cpu_count()}))
    try:
        for processes in [int(p) for p in arguments.processes.split(",")]:
            measure_processes(processes, dsn, arguments)
    finally:
        database.stop()
        shutil.rmtree(directory, ignore_errors=True)
    print(json.dumps({"load_average": os.getloadavg()}))


if __name__ == "__main__":
    main()
