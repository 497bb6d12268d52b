"""
Benchmark: the time @profiler adds to each call of a function, next to an
undecorated function and to prometheus_client's Summary.time(), for sync and
async functions, with tracemalloc off and on.

One tracer is attached to the decorated functions, as in a traced program,
and takes its sample between repeats. Run with
``python bench/dolon_profiler.py``; it prints the median time per call over
the repeats, in nanoseconds, and the overhead over the undecorated call, or
with ``--json`` the medians as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import tracemalloc
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Summary

from dolon import _profiler, trace_client

_SUMMARY = Summary("bench_seconds", "Benchmark calls", registry=CollectorRegistry())


def plain() -> None:
    """
    The undecorated function.
    """


@trace_client.profiler(name="bench_sync")
def profiled() -> None:
    """
    The function decorated with @profiler.
    """


@_SUMMARY.time()
def summarized() -> None:
    """
    The function decorated with prometheus_client's Summary.time().
    """


async def async_plain() -> None:
    """
    The undecorated coroutine function.
    """


@trace_client.profiler(name="bench_async")
async def async_profiled() -> None:
    """
    The coroutine function decorated with @profiler.
    """


async def async_summarized() -> None:
    """
    A coroutine function timed with Summary.time() as a context manager
    around an inner await, because the decorator form times only the
    creation of the coroutine.
    """
    with _SUMMARY.time():
        return await async_plain()


def time_sync(function: Callable[[], Any], calls: int) -> float:
    """
    Return the time per call in ns of ``calls`` calls of ``function``.
    """
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls * 1e9


async def time_async(function: Callable[[], Any], calls: int) -> float:
    """
    Return the time per call in ns of ``calls`` awaited calls of
    ``function``.
    """
    start = time.perf_counter()
    for _ in range(calls):
        await function()
    return (time.perf_counter() - start) / calls * 1e9


def measure(calls: int, repeats: int) -> dict[str, float]:
    """
    Return the median time per call in ns of each variant.
    """
    tracer_columns = [
        _profiler.ProfileColumns(stats) for stats in _profiler.registered()
    ]
    variants: dict[str, Callable[[], Any]] = {
        "sync plain": plain,
        "sync @profiler": profiled,
        "sync Summary.time()": summarized,
        "async plain": async_plain,
        "async @profiler": async_profiled,
        "async Summary.time()": async_summarized,
    }
    results: dict[str, list[float]] = {name: [] for name in variants}

    async def run_async(function: Callable[[], Any]) -> float:
        return await time_async(function, calls)

    for _ in range(repeats):
        # Interleave the variants so that a change in machine load affects
        # all of them alike.
        for name, function in variants.items():
            if name.startswith("async"):
                results[name].append(asyncio.run(run_async(function)))
            else:
                results[name].append(time_sync(function, calls))
        for columns in tracer_columns:
            columns()
    for columns in tracer_columns:
        columns.close()
    return {name: statistics.median(times) for name, times in results.items()}


def main() -> None:
    """
    Parse the options, run the benchmark and print the results.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000, help="calls per repeat")
    parser.add_argument("--repeats", type=int, default=15, help="repeats")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of text"
    )
    options = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    for tracing in (False, True):
        if tracing:
            tracemalloc.start()
        results["on" if tracing else "off"] = measure(options.calls, options.repeats)
        if tracing:
            tracemalloc.stop()
    if options.json:
        print(json.dumps(results))
        return

    print(f"python {sys.version.split()[0]}, {options.repeats} x {options.calls} calls")
    for state, medians in results.items():
        print(f"\ntracemalloc {state}")
        print(f"{'variant':<24}{'ns/call':>10}{'overhead ns':>14}")
        for name, median in medians.items():
            baseline = medians[name.split()[0] + " plain"]
            print(f"{name:<24}{median:>10.0f}{median - baseline:>14.0f}")


if __name__ == "__main__":
    main()
