"""
Benchmark: the time one tracer sample of mem_allocation, active_tasks and
cpu_percent takes, with tracemalloc running.

A sample here is the whole step the tracer runs every interval: call the
diagnostics, convert the values, encode the datagram and send it to a UDP
socket on 127.0.0.1. Samples are timed back to back, and then spaced 0.2 s
apart, closer to a tracer's real pace: between two spaced samples the
process sleeps and its code and data leave the CPU caches, so each sample
costs more.

Run with ``python bench/dolon_sample.py``; it prints the median and
percentiles in microseconds, or with ``--json`` one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import time
import tracemalloc

from dolon import _diagnostics, trace_client
from dolon._ratelimit import RateLimitedLog
from dolon._sender import UdpSender
from dolon._tracer import _log, _Run


async def measure(samples: int, spacing: float = 0.0) -> list[float]:
    """
    Take ``samples`` samples, ``spacing`` seconds apart, and return the
    duration of each in seconds.
    """
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    port = receiver.getsockname()[1]
    tracer = trace_client.Tracer(
        "bench",
        1,
        "127.0.0.1",
        port,
        trace_client.mem_allocation,
        trace_client.active_tasks,
        trace_client.cpu_percent,
        profile=False,
    )
    sender = UdpSender("127.0.0.1", port, RateLimitedLog(_log))
    await sender.resolve()
    run = _Run(tracer, sender, "00000000-0000-4000-8000-000000000000", tracer._sources)

    durations = []
    for _ in range(samples):
        if spacing:
            await asyncio.sleep(spacing)
        start = time.perf_counter()
        await run._sample()
        durations.append(time.perf_counter() - start)
        # Drain the receiver so the socket buffer never fills.
        try:
            while True:
                receiver.recv(65536)
        except BlockingIOError:
            pass
    sender.close()
    receiver.close()
    return durations


def summarize(durations: list[float]) -> dict[str, float]:
    """
    Return the count, median, 90th and 99th percentile in µs of
    ``durations`` (seconds).
    """
    micro = sorted(d * 1e6 for d in durations)
    return {
        "samples": len(micro),
        "median_us": statistics.median(micro),
        "p90_us": micro[int(0.9 * len(micro))],
        "p99_us": micro[int(0.99 * len(micro))],
    }


def main() -> None:
    """
    Parse the options, run the benchmark and print the results.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--samples", type=int, default=5000, help="samples timed back to back"
    )
    parser.add_argument(
        "--spaced", type=int, default=50, help="samples timed 0.2 s apart"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of text"
    )
    options = parser.parse_args()

    # cpu_percent repeats its previous value when called again within 0.1 s.
    # Turning that off makes every sample read the CPU counters, as every
    # sample of a tracer with an interval of 0.1 s or more does.
    _diagnostics._MIN_RATE_WINDOW = 0.0
    tracemalloc.start()
    results = {
        "back_to_back": summarize(asyncio.run(measure(options.samples))),
        "spaced": summarize(asyncio.run(measure(options.spaced, 0.2))),
    }
    if options.json:
        print(json.dumps(results))
        return
    print(f"python {sys.version.split()[0]}, tracemalloc on")
    for name, figures in results.items():
        print(
            f"{name:<13}{figures['samples']:>6} samples: "
            f"median {figures['median_us']:.1f} us, "
            f"p90 {figures['p90_us']:.1f} us, p99 {figures['p99_us']:.1f} us"
        )


if __name__ == "__main__":
    main()
