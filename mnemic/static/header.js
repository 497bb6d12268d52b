/*
 * The header of the run view: the tracer name, a live badge, the run's
 * facts, and its actions (CSV download, delete).
 */

import { apiRunPath, el } from "./dom.js";
import {
  formatCount, formatDuration, formatTime, formatUtcOffset, isLive, parseTime,
  runDuration,
} from "./format.js";

function fact(label, value, className) {
  return el("div", { class: `fact ${className || ""}` }, [
    el("dt", {}, [label]),
    el("dd", {}, [value]),
  ]);
}

// Render the header of the run ``info``, as returned by /api/runs/{id}.
// ``onDelete`` is called when the delete button is pressed.
export function renderHeader(info, onDelete) {
  const started = parseTime(info.started);
  const duration = runDuration(info);
  const title = el("h1", { class: "run-name" }, [
    el("span", { class: "run-name-text" }, [info.name]),
  ]);
  if (isLive(info)) {
    title.append(el("span", { class: "live-badge", title: "Receiving samples" }, ["live"]));
  }
  const facts = el("dl", { class: "facts" }, [
    fact(
      "Started",
      started === null
        ? "unknown"
        : `${formatTime(started)} (${formatUtcOffset(started)})`,
    ),
    fact("Duration", duration === null ? "no samples" : formatDuration(duration)),
    fact("Samples", formatCount(info.samples)),
    fact("Lost", formatCount(info.lost), info.lost > 0 ? "fact-warn" : ""),
    fact("Columns", String(info.columns.length)),
    info.host === null ? null : fact("Host", info.host),
    info.pid === null ? null : fact("PID", String(info.pid)),
  ]);
  const csv = el(
    "a",
    { class: "button", href: `${apiRunPath(info.id)}/csv`, download: "" },
    ["Download CSV"],
  );
  const remove = el("button", { type: "button", class: "button button-quiet-danger" }, [
    "Delete run",
  ]);
  remove.addEventListener("click", onDelete);
  return el("header", { class: "run-header" }, [
    el("div", { class: "run-title" }, [
      title,
      el("div", { class: "run-actions" }, [csv, remove]),
    ]),
    facts,
    el("p", { class: "run-id muted" }, [`Run ${info.id}`]),
  ]);
}
