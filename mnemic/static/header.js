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

// Render an error about the run, such as a failed delete, with a button
// that calls ``onDismiss``.
function renderError(text, onDismiss) {
  const dismiss = el("button", { type: "button", class: "link-button run-error-dismiss" },
                     ["Dismiss"]);
  dismiss.addEventListener("click", onDismiss);
  return el("p", { class: "error run-error", role: "alert" }, [
    el("span", {}, [text]), " ", dismiss,
  ]);
}

// Render the header of the run ``info``, as returned by /api/runs/{id}.
// ``onDelete`` is called when the delete button is pressed. ``error`` is
// a message to show under the facts until ``onDismiss`` is called, or null.
export function renderHeader(info, onDelete, error, onDismiss) {
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
    error ? renderError(error, onDismiss) : null,
  ]);
}
