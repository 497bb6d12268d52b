"""
Run dolon's three benchmarks in one go and print each figure beside its
target: the cost of one sample, the cost @profiler adds to a call (beside an
undecorated call and prometheus_client's Summary.time()), and the change in
a busy asyncio program's throughput while a tracer samples once a second.

Each benchmark runs in a child process of its own, so that tracemalloc and
module state cannot leak from one to the next. Run with
``python bench/dolon_targets.py`` from the repository; ``--quick`` runs
shorter versions that only show that the scripts work.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

_BENCH = os.path.dirname(os.path.abspath(__file__))

#: Arguments of each benchmark: full, then quick.
_ARGUMENTS: dict[str, tuple[list[str], list[str]]] = {
    "dolon_sample.py": ([], ["--samples", "500", "--spaced", "5"]),
    "dolon_profiler.py": ([], ["--calls", "20000", "--repeats", "3"]),
    "dolon_overhead.py": (
        [],
        ["--rounds", "2", "--seconds", "1", "--tracemalloc-rounds", "1"],
    ),
}


def run(script: str, quick: bool) -> dict[str, Any]:
    """
    Run one benchmark script with ``--json`` and return its figures.
    """
    full, short = _ARGUMENTS[script]
    output = subprocess.run(
        [sys.executable, os.path.join(_BENCH, script), "--json"]
        + (short if quick else full),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    figures: dict[str, Any] = json.loads(output)
    return figures


def verdict(value: float, limit: float) -> str:
    """
    Return "met" when ``value`` is below ``limit``, else "MISSED".
    """
    return "met" if value < limit else "MISSED"


def print_sample(figures: dict[str, Any]) -> None:
    """
    Print the sample cost beside its target of 100 µs.
    """
    warm = figures["back_to_back"]["median_us"]
    spaced = figures["spaced"]["median_us"]
    print("One sample: mem_allocation, active_tasks, cpu_percent, tracemalloc on")
    print(
        f"  back to back   {warm:8.1f} us median   target < 100 us: "
        f"{verdict(warm, 100.0)}"
    )
    print(f"  0.2 s apart    {spaced:8.1f} us median   (cold caches; no target)")


def print_profiler(figures: dict[str, Any]) -> None:
    """
    Print what @profiler and Summary.time() add to a call, beside the
    undecorated call and the targets of 1 µs and 5 µs.
    """
    print("\nAdded per call, µs (ns/call of the undecorated function in brackets)")
    print(f"  {'':<32}{'@profiler':>10}{'Summary.time()':>16}{'target':>9}")
    for tracing, limit in (("off", 1.0), ("on", 5.0)):
        for kind in ("sync", "async"):
            medians = figures[tracing]
            plain = medians[f"{kind} plain"]
            ours = (medians[f"{kind} @profiler"] - plain) / 1000
            theirs = (medians[f"{kind} Summary.time()"] - plain) / 1000
            label = f"{kind}, tracemalloc {tracing} [{plain:.0f} ns]"
            print(
                f"  {label:<32}{ours:>10.2f}{theirs:>16.2f}"
                f"{'< ' + format(limit, 'g'):>9}  {verdict(ours, limit)}"
            )


def print_overhead(figures: dict[str, Any]) -> None:
    """
    Print the throughput change with a tracer at 1 Hz and the cost of
    tracemalloc.
    """
    tracer = figures["tracer"]
    change = tracer["change_percent"]
    low, high = tracer["ratio_spread_percent"]
    print(
        "\nBusy asyncio program, tracer at 1 Hz vs none "
        f"({tracer['rounds']} pairs of {tracer['round_seconds']:g} s rounds)"
    )
    print(
        f"  throughput per CPU-s {change:+7.2f} % median   target within 1 %: "
        f"{verdict(abs(change), 1.0)}"
    )
    print(
        f"  pairs ranged from {low:+.2f} to {high:+.2f} %; wall clock "
        f"{tracer['wall_change_percent']:+.2f} %"
    )
    print(
        f"  tracer's own time {tracer['tracer_share_percent']:.4f} % of the run, "
        f"{tracer['sample_us_median']:.0f} us per sample"
    )

    cost = figures["tracemalloc"]
    print(
        "\ntracemalloc on an allocation-heavy loop: "
        f"{cost['slowdown']:.1f} x slower; one call of mem_allocation "
        f"{cost['mem_allocation_call_us']:.1f} us, rss_mb "
        f"{cost['rss_mb_call_us']:.1f} us"
    )


def main() -> None:
    """
    Parse the options, run the benchmarks and print the figures.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="short runs, to check the scripts"
    )
    options = parser.parse_args()

    before = os.getloadavg()[0]
    sample = run("dolon_sample.py", options.quick)
    profiler = run("dolon_profiler.py", options.quick)
    overhead = run("dolon_overhead.py", options.quick)
    after = os.getloadavg()[0]

    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"load average {before:.2f} before and {after:.2f} after"
    )
    if options.quick:
        print("quick run: too short for the figures to mean anything")
    print()
    print_sample(sample)
    print_profiler(profiler)
    print_overhead(overhead)


if __name__ == "__main__":
    main()
