/*
 * The tracer tree in the sidebar: tracers, their runs with a live marker,
 * and check boxes that select runs of one tracer to compare.
 */

import { el, runPath } from "./dom.js";
import { formatCount, formatShortTime, isLive, parseTime, runDetails } from "./format.js";

// Runs listed per tracer before a "Show all" button.
const RUNS_SHOWN = 20;

export const tree = {
  tracers: null,
  // Tracers the user opened or closed by hand. Others are open when they
  // are the most recently active tracer or contain a run on screen.
  opened: new Set(),
  closed: new Set(),
  showAllRuns: new Set(),
  // Runs on screen, marked in the tree.
  current: new Set(),
  // The ids of the runs checked for comparison, all of one tracer.
  selection: [],
  // Called with a list of run ids when the user asks to compare them.
  onCompare: null,
};

function isOpen(tracer, index) {
  if (tree.opened.has(tracer.name)) {
    return true;
  }
  if (tree.closed.has(tracer.name)) {
    return false;
  }
  return index === 0 || tracer.runs.some((run) => tree.current.has(run.id)) ||
    hasSelection(tracer);
}

function hasSelection(tracer) {
  return tracer.runs.some((run) => tree.selection.includes(run.id));
}

function toggleTracer(name, open) {
  (open ? tree.closed : tree.opened).delete(name);
  (open ? tree.opened : tree.closed).add(name);
  renderTree();
}

// Check or uncheck a run for comparison. Checking a run of another tracer
// starts a new selection, because only runs of one tracer are compared.
function selectForCompare(tracer, runId, checked) {
  if (checked) {
    if (!hasSelection(tracer)) {
      tree.selection = [];
    }
    if (!tree.selection.includes(runId)) {
      tree.selection.push(runId);
    }
  } else {
    tree.selection = tree.selection.filter((id) => id !== runId);
  }
  renderTree();
}

export function clearSelection() {
  tree.selection = [];
}

function renderRunItem(tracer, run) {
  const started = parseTime(run.started);
  const live = isLive(run);
  const label = started === null ? "unknown start" : formatShortTime(started);
  const link = el(
    "a",
    {
      class: "run-link",
      href: runPath(run.id),
      "data-run-id": run.id,
      "data-key": `run:${run.id}`,
      "aria-current": tree.current.has(run.id) ? "page" : null,
      title: `Run ${run.id}, started ${run.started}`,
    },
    [
      el("span", { class: "run-start" }, [label]),
      live ? el("span", { class: "live-dot", title: "Receiving samples" }, [
        el("span", { class: "visually-hidden" }, ["live"]),
      ]) : null,
      el("span", { class: "run-details" }, [runDetails(run)]),
    ],
  );
  const check = el("input", {
    type: "checkbox",
    class: "run-check",
    "data-key": `check:${run.id}`,
    "aria-label": `Compare the run started ${label}`,
    title: "Select to compare",
    checked: tree.selection.includes(run.id),
  });
  check.addEventListener("change", () => selectForCompare(tracer, run.id, check.checked));
  return el("li", { class: live ? "run-item run-live" : "run-item" }, [check, link]);
}

function renderCompareBar() {
  const ids = tree.selection;
  const compare = el("button", {
    type: "button",
    class: "button button-primary button-small",
    disabled: ids.length < 2,
  }, [ids.length < 2 ? "Select another run" : `Compare ${ids.length} runs`]);
  compare.addEventListener("click", () => tree.onCompare([...ids]));
  const clear = el("button", { type: "button", class: "link-button" }, ["Clear"]);
  clear.addEventListener("click", () => {
    clearSelection();
    renderTree();
  });
  return el("div", { class: "compare-bar" }, [compare, clear]);
}

function renderTracer(tracer, index) {
  const open = isOpen(tracer, index);
  const live = tracer.runs.some(isLive);
  const toggle = el(
    "button",
    {
      type: "button",
      class: "tracer-toggle",
      "aria-expanded": String(open),
      "data-key": `tracer:${tracer.name}`,
      title: tracer.name,
    },
    [
      el("span", { class: "caret", "aria-hidden": "true" }),
      el("span", { class: "tracer-name" }, [tracer.name]),
      live && !open ? el("span", { class: "live-dot", title: "A run is receiving samples" })
        : null,
      el("span", { class: "tracer-count" }, [String(tracer.runs.length)]),
    ],
  );
  toggle.addEventListener("click", () => toggleTracer(tracer.name, !open));

  const section = el("section", { class: "tracer" }, [toggle]);
  if (!open) {
    return section;
  }
  const showAll = tree.showAllRuns.has(tracer.name);
  const visibleRuns = showAll ? tracer.runs : tracer.runs.slice(0, RUNS_SHOWN);
  section.append(el("ul", { class: "runs" },
                    visibleRuns.map((run) => renderRunItem(tracer, run))));
  if (visibleRuns.length < tracer.runs.length) {
    const more = el("button", { type: "button", class: "show-more" }, [
      `Show all ${formatCount(tracer.runs.length)} runs`,
    ]);
    more.addEventListener("click", () => {
      tree.showAllRuns.add(tracer.name);
      renderTree();
    });
    section.append(more);
  }
  if (hasSelection(tracer)) {
    section.append(renderCompareBar());
  }
  return section;
}

// Rebuild the tree from tree.tracers. Keyboard focus stays on the same
// tracer, run or check box, because polling rebuilds the tree every few
// seconds.
export function renderTree() {
  const element = document.getElementById("tree");
  if (tree.tracers === null) {
    return;
  }
  const focused = element.contains(document.activeElement)
    ? document.activeElement.getAttribute("data-key")
    : null;

  if (tree.tracers.length === 0) {
    element.replaceChildren(el("p", { class: "muted" }, ["No tracers yet."]));
  } else {
    element.replaceChildren(...tree.tracers.map(renderTracer));
  }

  if (focused !== null) {
    const again = Array.from(element.querySelectorAll("[data-key]")).find(
      (node) => node.getAttribute("data-key") === focused,
    );
    if (again) {
      again.focus();
    }
  }
}
