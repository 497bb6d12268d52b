/*
 * The home view, shown when no run is selected: how to start a tracer when
 * there are none, and otherwise the runs that are receiving samples.
 */

import { el, mainPane, runPath } from "./dom.js";
import {
  formatPlural, formatShortTime, isLive, parseTime, runDetails,
} from "./format.js";

function renderEmptyState(udpPort) {
  // An IPv6 host name comes with brackets, which dolon does not expect.
  const host = window.location.hostname.replace(/^\[(.*)\]$/, "$1");
  const example =
    "import asyncio\n" +
    "import tracemalloc\n" +
    "import dolon.trace_client as tc\n\n" +
    "async def main():\n" +
    "    tracemalloc.start()  # for mem_allocation\n" +
    "    asyncio.ensure_future(tc.start_tracer(\n" +
    `        "my-app", 1, "${host}", ${udpPort},\n` +
    "        tc.mem_allocation, tc.active_tasks, tc.cpu_percent,\n" +
    "    ))\n" +
    "    ...  # the program's own work";
  return el("div", { class: "empty-state" }, [
    el("h1", {}, ["No runs yet: start a program that uses dolon."]),
    el("p", {}, [
      "mnemic is listening for samples on UDP port ",
      el("strong", {}, [String(udpPort)]),
      ". Start a tracer in the asyncio program you want to watch; it samples " +
      "every second here:",
    ]),
    el("pre", {}, [el("code", {}, [example])]),
    el("p", { class: "muted" }, [
      "Each start of the program is a new run. It appears on the left with " +
      "its first sample, and its charts update live while it runs.",
    ]),
  ]);
}

function renderLiveRuns(tracers) {
  const live = [];
  for (const tracer of tracers) {
    for (const run of tracer.runs) {
      if (isLive(run)) {
        live.push({ tracer, run });
      }
    }
  }
  if (live.length === 0) {
    return el("div", { class: "home" }, [
      el("p", { class: "placeholder" }, [
        "No run is receiving samples. Select a run on the left to see its charts.",
      ]),
    ]);
  }
  const items = live.map(({ tracer, run }) => {
    const started = parseTime(run.started);
    return el("li", {}, [
      el("a", { class: "home-run", href: runPath(run.id), "data-run-id": run.id }, [
        el("span", { class: "home-run-name" }, [tracer.name]),
        el("span", { class: "live-badge" }, ["live"]),
        el("span", { class: "muted" }, [
          `started ${started === null ? "at an unknown time" : formatShortTime(started)}` +
          ` · ${runDetails(run)} · ${formatPlural(run.columns.length, "column", "columns")}`,
        ]),
      ]),
    ]);
  });
  return el("div", { class: "home" }, [
    el("h1", {}, ["Receiving samples now"]),
    el("ul", { class: "home-runs" }, items),
    el("p", { class: "muted" }, [
      "Select a run to see its charts, or check two runs of one tracer on the " +
      "left to compare them.",
    ]),
  ]);
}

// Show the home view for ``tracers`` (null while loading).
export function renderHome(tracers, udpPort) {
  if (tracers === null) {
    return;
  }
  mainPane().replaceChildren(
    tracers.length === 0 ? renderEmptyState(udpPort) : renderLiveRuns(tracers));
}
