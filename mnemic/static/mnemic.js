/*
 * The mnemic page: the tracer tree on the left, and on the right either a
 * run, a comparison of runs, or a placeholder. The address follows what is
 * on screen (/runs/{id}, /runs/{id}#correlations, /compare?runs=a,b), so
 * every view can be shared and reloaded.
 *
 * The tree is polled every 3 seconds, a run on screen every second.
 */

import { CompareView } from "./compare.js";
import {
  apiRunPath, comparePath, el, fetchJson, mainPane, renderMessage, runPath, setStatus,
} from "./dom.js";
import { formatClock } from "./format.js";
import { renderHome } from "./home.js";
import { RunView } from "./runview.js";
import { clearSelection, renderTree, tree } from "./tree.js";

const TREE_INTERVAL_MS = 3000;
const RUN_INTERVAL_MS = 1000;
const COMPARE_INTERVAL_MS = 3000;
// mnemic responds with 503 while PostgreSQL is down or restarting.
const UNAVAILABLE = 503;
const DATABASE_DOWN = "mnemic is running but its database is unavailable; retrying…";

const page = {
  // The view on screen, a RunView or a CompareView, or null.
  view: null,
  // Incremented on every navigation, so that a slow response for an
  // earlier view is dropped.
  generation: 0,
  udpPort: 12013,
  // True while mnemic reports its database as unavailable.
  databaseDown: false,
};

// Show, in one wording everywhere, that the database is unavailable.
// A run or comparison already on screen stays; an empty pane gets the
// message, and the view is loaded again when the database is back.
function showDatabaseDown() {
  page.databaseDown = true;
  setStatus(DATABASE_DOWN, true);
  if (tree.tracers === null) {
    document.getElementById("tree").replaceChildren(
      el("p", { class: "muted" }, ["The runs appear when the database is back."]));
  }
  if (page.view === null) {
    renderMessage("error", DATABASE_DOWN);
  }
}

function renderPlaceholder() {
  renderHome(tree.tracers, page.udpPort);
}

function destroyView() {
  if (page.view !== null) {
    page.view.destroy();
    page.view = null;
  }
}

function navigate(path) {
  if (window.location.pathname + window.location.search !== path) {
    window.history.pushState({}, "", path);
  }
  showLocation();
}

async function showRun(runId) {
  const generation = page.generation;
  tree.current = new Set([runId]);
  renderTree();
  renderMessage("placeholder", "Loading run…");
  let info;
  try {
    info = await fetchJson(apiRunPath(runId));
  } catch (error) {
    if (generation !== page.generation) {
      return;
    }
    if (error.status === UNAVAILABLE) {
      showDatabaseDown();
    } else if (error.status === 404) {
      renderMessage("error",
                    `Run ${runId} not found. Check the link, or select a run on the left.`);
    } else {
      setStatus(`Cannot load the run: ${error.message}`, true);
    }
    return;
  }
  if (generation !== page.generation) {
    return;
  }
  document.title = `${info.name} · mnemic`;
  const tab = window.location.hash === "#correlations" ? "correlations" : "charts";
  page.view = new RunView(info, tab, () => {
    navigate("/");
    refreshTree().catch(() => {});
  });
  await page.view.refresh();
}

async function showCompare(runIds) {
  tree.current = new Set(runIds);
  tree.selection = [...runIds];
  renderTree();
  document.title = "Compare runs · mnemic";
  page.view = new CompareView(runIds);
  await page.view.refresh();
}

function compareIdsFromLocation() {
  const raw = new URLSearchParams(window.location.search).get("runs") || "";
  return raw.split(",").map((id) => id.trim()).filter((id) => id !== "");
}

function runIdFromPath(pathname) {
  const match = /^\/runs\/([^/]+)\/?$/.exec(pathname);
  return match === null ? null : decodeURIComponent(match[1]);
}

// Show the view for the current address.
async function showLocation() {
  page.generation += 1;
  destroyView();
  document.title = "mnemic";
  const pathname = window.location.pathname;
  try {
    if (pathname === "/compare") {
      const ids = compareIdsFromLocation();
      if (ids.length < 2) {
        tree.current = new Set(ids);
        renderTree();
        renderMessage("error", "Select at least two runs of one tracer to compare them.");
        return;
      }
      await showCompare(ids);
    } else {
      const runId = runIdFromPath(pathname);
      if (runId === null) {
        tree.current = new Set();
        renderTree();
        if (pathname === "/") {
          renderPlaceholder();
        } else {
          renderMessage("error",
                        `There is no page at ${pathname}. Select a run on the left.`);
        }
        return;
      }
      await showRun(runId);
    }
  } catch (error) {
    if (error.status === UNAVAILABLE) {
      showDatabaseDown();
    } else {
      setStatus(`Cannot load the view: ${error.message}`, true);
    }
  }
}

async function refreshTree() {
  tree.tracers = await fetchJson("/api/tracers");
  renderTree();
  if (page.view === null && window.location.pathname === "/") {
    renderPlaceholder();
  }
}

// Run ``step`` every ``interval`` milliseconds while the tab is visible, never
// two at once.
function every(interval, step) {
  async function tick() {
    if (!document.hidden) {
      await step();
    }
    window.setTimeout(tick, interval);
  }
  tick();
}

function onTreeClick(event) {
  const link = event.target.closest("a.run-link");
  // Let the browser open a new tab or window for modified clicks.
  if (link === null || event.button !== 0 || event.ctrlKey || event.metaKey ||
      event.shiftKey || event.altKey) {
    return;
  }
  event.preventDefault();
  navigate(runPath(link.getAttribute("data-run-id")));
}

function start() {
  const body = document.body;
  page.udpPort = Number(body.getAttribute("data-udp-port")) || page.udpPort;
  tree.onCompare = (runIds) => navigate(comparePath(runIds));

  document.getElementById("tree").addEventListener("click", onTreeClick);
  // Links to runs in the main pane open them without reloading the page.
  mainPane().addEventListener("click", (event) => {
    const link = event.target.closest("a.compare-run-link, a.home-run");
    if (link !== null && event.button === 0 && !event.ctrlKey && !event.metaKey &&
        !event.shiftKey && !event.altKey) {
      event.preventDefault();
      clearSelection();
      navigate(link.getAttribute("href"));
    }
  });
  window.addEventListener("popstate", showLocation);
  new ResizeObserver(() => window.requestAnimationFrame(() => {
    if (page.view !== null) {
      page.view.resize();
    }
  })).observe(mainPane());

  every(TREE_INTERVAL_MS, async () => {
    try {
      await refreshTree();
      setStatus(`Updated ${formatClock(new Date())}`, false);
    } catch (error) {
      if (error.status === UNAVAILABLE) {
        showDatabaseDown();
      } else {
        setStatus(`Cannot reach mnemic: ${error.message}. Retrying.`, true);
      }
      return;
    }
    if (page.databaseDown) {
      page.databaseDown = false;
      if (page.view === null) {
        await showLocation();
      }
    }
  });
  showLocation().then(() => {
    let ticks = 0;
    every(RUN_INTERVAL_MS, async () => {
      ticks += 1;
      const view = page.view;
      const due = view instanceof RunView ||
        (view instanceof CompareView && ticks % (COMPARE_INTERVAL_MS / RUN_INTERVAL_MS) === 0);
      if (view !== null && due) {
        try {
          await view.refresh();
        } catch (error) {
          if (error.status === 404 && view instanceof RunView && view === page.view) {
            destroyView();
            renderMessage("error", "This run no longer exists: it was deleted.");
          } else if (error.status === UNAVAILABLE) {
            showDatabaseDown();
          } else {
            setStatus(`Cannot update the view: ${error.message}`, true);
          }
        }
      }
    });
  });
}

start();
