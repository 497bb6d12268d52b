"""
Benchmark: how much a tracer sampling once a second slows a busy asyncio
program, and how much tracemalloc slows an allocation-heavy one.

The busy program is 50 tasks that each build a small list, sum it and yield
to the event loop, as fast as they can. Rounds with and without a tracer
alternate in one process (off-on, then on-off, and so on), so that changes
in machine load reach both alike. The result is the median of the per-pair
throughput ratios.

Throughput is counted per second of CPU time of this process (all threads,
the tracer's included), because on a shared machine the wall-clock rate
swings by tens of percent between rounds with the load of other processes.
The wall-clock figures are printed too. The tracer's own time in each sample
is timed as well, which bounds its cost more sharply than any ratio can.

Run with ``python bench/dolon_overhead.py``; ``--json`` prints the figures
as one JSON object instead.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dolon import _tracer, trace_client

#: Tasks of the busy program.
WORKERS = 50


class BusyProgram:
    """
    Tasks that do small pieces of CPU work and yield to the loop between
    them, counting the pieces done.
    """

    def __init__(self) -> None:
        self.done = 0
        self._running = False

    async def _work(self) -> None:
        total = 0
        while self._running:
            total += sum([i * i for i in range(50)])
            self.done += 1
            await asyncio.sleep(0)

    async def throughput(self, seconds: float) -> tuple[float, float]:
        """
        Run the tasks for ``seconds`` and return the pieces done per second
        of CPU time and per second of wall-clock time.
        """
        self.done = 0
        self._running = True
        tasks = [asyncio.ensure_future(self._work()) for _ in range(WORKERS)]
        start = time.perf_counter()
        start_cpu = time.process_time()
        await asyncio.sleep(seconds)
        self._running = False
        elapsed_cpu = time.process_time() - start_cpu
        elapsed = time.perf_counter() - start
        done = self.done
        await asyncio.gather(*tasks)
        return done / elapsed_cpu, done / elapsed


@contextmanager
def timed_samples() -> Iterator[list[float]]:
    """
    Record the duration in seconds of every sample a tracer takes while
    the block runs.
    """
    durations: list[float] = []
    original = _tracer._Run._sample

    async def timed(run: Any) -> None:
        start = time.perf_counter()
        await original(run)
        durations.append(time.perf_counter() - start)

    _tracer._Run._sample = timed  # type: ignore[method-assign,assignment]
    try:
        yield durations
    finally:
        _tracer._Run._sample = original  # type: ignore[method-assign]


def diagnostics() -> list[Callable[[], object]]:
    """
    Return the built-ins of the README's first program (mem_allocation only
    while tracemalloc runs, active_tasks, cpu_percent), plus rss_mb and
    process_cpu_percent. All are synchronous, so a sample's duration is the
    tracer's own time.
    """
    chosen: list[Callable[[], object]] = [
        trace_client.active_tasks,
        trace_client.cpu_percent,
        trace_client.rss_mb,
        trace_client.process_cpu_percent,
    ]
    if tracemalloc.is_tracing():
        chosen.insert(0, trace_client.mem_allocation)
    return chosen


async def tracer_overhead(rounds: int, seconds: float) -> dict[str, Any]:
    """
    Return the throughput without and with a tracer at 1 Hz, their median
    ratio over ``rounds`` pairs of rounds, and the tracer's time per sample.
    """
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    port = receiver.getsockname()[1]
    program = BusyProgram()
    without: list[float] = []
    with_tracer: list[float] = []
    ratios: list[float] = []
    wall_ratios: list[float] = []

    with timed_samples() as durations:
        for index in range(rounds):
            pair: dict[bool, tuple[float, float]] = {}
            for traced in (False, True) if index % 2 == 0 else (True, False):
                if traced:
                    tracer = trace_client.Tracer(
                        "overhead", 1, "127.0.0.1", port, *diagnostics(), profile=False
                    )
                    async with tracer:
                        pair[traced] = await program.throughput(seconds)
                else:
                    pair[traced] = await program.throughput(seconds)
            without.append(pair[False][0])
            with_tracer.append(pair[True][0])
            ratios.append(pair[True][0] / pair[False][0])
            wall_ratios.append(pair[True][1] / pair[False][1])
    receiver.close()

    return {
        "rounds": rounds,
        "round_seconds": seconds,
        "without_per_s": statistics.median(without),
        "with_per_s": statistics.median(with_tracer),
        "change_percent": (statistics.median(ratios) - 1) * 100,
        "ratio_spread_percent": [
            (min(ratios) - 1) * 100,
            (max(ratios) - 1) * 100,
        ],
        "wall_change_percent": (statistics.median(wall_ratios) - 1) * 100,
        "wall_ratio_spread_percent": [
            (min(wall_ratios) - 1) * 100,
            (max(wall_ratios) - 1) * 100,
        ],
        "samples": len(durations),
        "sample_us_median": statistics.median(durations) * 1e6 if durations else None,
        "tracer_share_percent": sum(durations) / (rounds * seconds) * 100,
    }


def allocate() -> int:
    """
    Build and drop 1000 small dicts, lists and strings: an allocation-heavy
    piece of work.
    """
    rows = [{"id": i, "name": str(i), "tags": [i, i + 1]} for i in range(1000)]
    return len(rows)


def allocations_per_second(seconds: float) -> float:
    """
    Return how many times per second :func:`allocate` runs.
    """
    count = 0
    end = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < end:
        allocate()
        count += 1
    return count / (time.perf_counter() - start)


def call_cost_us(diagnostic: Callable[[], object], calls: int = 20_000) -> float:
    """
    Return the time of one call of ``diagnostic`` in µs.
    """
    start = time.perf_counter()
    for _ in range(calls):
        diagnostic()
    return (time.perf_counter() - start) / calls * 1e6


def tracemalloc_cost(rounds: int, seconds: float) -> dict[str, Any]:
    """
    Return the throughput of :func:`allocate` with tracemalloc off and on,
    their median ratio over ``rounds`` pairs, and the cost of one call of
    mem_allocation (which needs tracemalloc) and of rss_mb (which does not).
    """
    was_tracing = tracemalloc.is_tracing()
    off: list[float] = []
    on: list[float] = []
    ratios: list[float] = []
    for index in range(rounds):
        pair: dict[bool, float] = {}
        for tracing in (False, True) if index % 2 == 0 else (True, False):
            if tracing:
                tracemalloc.start()
            pair[tracing] = allocations_per_second(seconds)
            if tracing:
                mem_allocation_us = call_cost_us(trace_client.mem_allocation)
                tracemalloc.stop()
        off.append(pair[False])
        on.append(pair[True])
        ratios.append(pair[False] / pair[True])
    rss_mb_us = call_cost_us(trace_client.rss_mb)
    if was_tracing:
        tracemalloc.start()

    return {
        "rounds": rounds,
        "round_seconds": seconds,
        "off_per_s": statistics.median(off),
        "on_per_s": statistics.median(on),
        "slowdown": statistics.median(ratios),
        "mem_allocation_call_us": mem_allocation_us,
        "rss_mb_call_us": rss_mb_us,
    }


def print_report(results: dict[str, Any]) -> None:
    """
    Print the figures as text.
    """
    tracer = results["tracer"]
    print(
        f"python {sys.version.split()[0]}, {WORKERS} busy tasks, "
        f"{tracer['rounds']} pairs of {tracer['round_seconds']:g} s rounds"
    )
    print(f"  without tracer  {tracer['without_per_s']:12.0f} pieces/CPU-s (median)")
    print(f"  tracer at 1 Hz  {tracer['with_per_s']:12.0f} pieces/CPU-s (median)")
    low, high = tracer["ratio_spread_percent"]
    print(
        f"  change          {tracer['change_percent']:+11.2f} % "
        f"(median of pair ratios; pairs ranged {low:+.2f} to {high:+.2f} %)"
    )
    low, high = tracer["wall_ratio_spread_percent"]
    print(
        f"  wall clock      {tracer['wall_change_percent']:+11.2f} % "
        f"(pairs ranged {low:+.2f} to {high:+.2f} %)"
    )
    print(
        f"  tracer's own time: {tracer['sample_us_median']:.0f} us per sample "
        f"(median of {tracer['samples']}), "
        f"{tracer['tracer_share_percent']:.4f} % of the run"
    )

    cost = results["tracemalloc"]
    print(
        f"\ntracemalloc, allocation-heavy work, {cost['rounds']} pairs of "
        f"{cost['round_seconds']:g} s rounds"
    )
    print(f"  tracemalloc off {cost['off_per_s']:12.0f} runs/s (median)")
    print(f"  tracemalloc on  {cost['on_per_s']:12.0f} runs/s (median)")
    print(f"  slowdown        {cost['slowdown']:12.2f} x (median of pair ratios)")
    print(
        f"  one call: mem_allocation {cost['mem_allocation_call_us']:.1f} us "
        f"(tracemalloc on), rss_mb {cost['rss_mb_call_us']:.1f} us"
    )


def main() -> None:
    """
    Parse the options, run both benchmarks and print the results.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds", type=int, default=20, help="pairs of rounds with the tracer"
    )
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="length of one round, in s"
    )
    parser.add_argument(
        "--tracemalloc-rounds",
        type=int,
        default=5,
        help="pairs of rounds with tracemalloc",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of text"
    )
    options = parser.parse_args()

    results = {
        "tracer": asyncio.run(tracer_overhead(options.rounds, options.seconds)),
        "tracemalloc": tracemalloc_cost(options.tracemalloc_rounds, 2.0),
    }
    if options.json:
        print(json.dumps(results))
    else:
        print_report(results)


if __name__ == "__main__":
    main()
