/*
 * The mnemic page: a tree of tracers and their runs, and the charts of the
 * selected run, refreshed by polling the JSON API under /api/.
 *
 * Tracer names, column names and host names come from traced programs, so
 * they reach the DOM only as text nodes, textContent or setAttribute values,
 * never through innerHTML. uPlot also sets its labels with textContent.
 */
"use strict";

(function () {
  const POLL_INTERVAL_MS = 3000;
  // A run whose last sample is younger than this is marked live.
  const LIVE_WINDOW_MS = 10000;
  // Runs listed per tracer before a "Show all" button.
  const RUNS_SHOWN = 20;
  const CHART_HEIGHT = 170;
  // Width in pixels of every y axis, so that the plot areas of all charts
  // line up and the shared cursor falls on the same x position in each.
  const Y_AXIS_SIZE = 64;
  const MAX_POINTS = 2000;
  const SYNC_KEY = "mnemic-run";
  const COLORS = [
    "#2563c9", "#d9730d", "#2e9e5b", "#c23b7a",
    "#7a5bd6", "#a88100", "#1c8fa0", "#cf3f33",
  ];

  const state = {
    tracers: null,
    // Tracers the user opened or closed by hand. Others are open when they
    // are the most recently active tracer or hold the selected run.
    opened: new Set(),
    closed: new Set(),
    showAllRuns: new Set(),
    runId: null,
    // The run on screen, as built by renderView, or null.
    view: null,
    udpPort: 12013,
  };

  // ---- DOM and formatting helpers ---------------------------------------

  // Create an element. Attributes go through setAttribute and children
  // through append(), which turns strings into text nodes.
  function el(tag, attributes, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) {
        continue;
      }
      node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children || []) {
      if (child !== null && child !== undefined) {
        node.append(child);
      }
    }
    return node;
  }

  // Parse an ISO 8601 time from the API into milliseconds since the epoch.
  // The fraction is cut to milliseconds, the precision Date.parse is
  // specified for.
  function parseTime(iso) {
    if (!iso) {
      return null;
    }
    const ms = Date.parse(iso.replace(/(\.\d{3})\d+/, "$1"));
    return Number.isNaN(ms) ? null : ms;
  }

  function pad(number) {
    return String(number).padStart(2, "0");
  }

  function formatDate(date) {
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  }

  function formatClock(date) {
    return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  }

  // Format a time in the browser's time zone, e.g. "2024-05-01 14:03:22".
  function formatTime(ms) {
    const date = new Date(ms);
    return `${formatDate(date)} ${formatClock(date)}`;
  }

  // Format a time briefly for the tree: the clock alone for today.
  function formatShortTime(ms) {
    const date = new Date(ms);
    if (formatDate(date) === formatDate(new Date())) {
      return formatClock(date);
    }
    return `${formatDate(date)} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
  }

  function formatUtcOffset(ms) {
    const minutes = -new Date(ms).getTimezoneOffset();
    const sign = minutes < 0 ? "-" : "+";
    const absolute = Math.abs(minutes);
    return `UTC${sign}${pad(Math.floor(absolute / 60))}:${pad(absolute % 60)}`;
  }

  // Format a duration in seconds with its two largest units, e.g. "3m 05s".
  function formatDuration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) {
      return `${s}s`;
    }
    if (s < 3600) {
      return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
    }
    if (s < 86400) {
      return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
    }
    return `${Math.floor(s / 86400)}d ${pad(Math.floor((s % 86400) / 3600))}h`;
  }

  // Format the time ticks of an x axis in 24-hour time, to the precision of
  // the tick increment in seconds. The date is added under the first tick
  // and under every tick that starts a new day.
  function formatTimeTicks(plot, splits, axisIndex, space, increment) {
    let previousDay = null;
    return splits.map((seconds) => {
      const date = new Date(seconds * 1000);
      const day = formatDate(date);
      let label;
      if (increment >= 86400) {
        label = day;
      } else if (increment >= 60) {
        label = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
      } else {
        label = formatClock(date);
      }
      if (increment < 86400 && day !== previousDay) {
        label += `\n${day}`;
      }
      previousDay = day;
      return label;
    });
  }

  function formatCount(count) {
    return Number(count).toLocaleString("en-US");
  }

  // Format a sample value for an axis or the legend, with an SI suffix
  // above a thousand, e.g. 1250000 -> "1.25M".
  function formatValue(value) {
    if (value === null || value === undefined) {
      return "–";
    }
    const magnitude = Math.abs(value);
    const suffixes = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
    for (const [scale, suffix] of suffixes) {
      if (magnitude >= scale) {
        return `${Number((value / scale).toPrecision(3))}${suffix}`;
      }
    }
    return String(Number(value.toPrecision(4)));
  }

  function formatLegendValue(value) {
    if (value === null || value === undefined) {
      return "–";
    }
    return value.toLocaleString("en-US", { maximumFractionDigits: 3 });
  }

  // Return the run's length in seconds, from its start to its last sample,
  // or null when it has no samples yet.
  function runDuration(run) {
    const started = parseTime(run.started);
    const lastSeen = parseTime(run.last_seen);
    if (started === null || lastSeen === null) {
      return null;
    }
    return (lastSeen - started) / 1000;
  }

  function isLive(run) {
    const lastSeen = parseTime(run.last_seen);
    return lastSeen !== null && Date.now() - lastSeen < LIVE_WINDOW_MS;
  }

  function runPath(runId) {
    return `/runs/${encodeURIComponent(runId)}`;
  }

  function apiRunPath(runId) {
    return `/api/runs/${encodeURIComponent(runId)}`;
  }

  // Fetch JSON from the API. A failed request raises an Error whose message
  // is the server's "error" field when there is one, and whose status is
  // the HTTP status.
  async function fetchJson(path) {
    const response = await fetch(path, {
      headers: { Accept: "application/json" },
      cache: "no-store",
    });
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        const body = await response.json();
        if (body && typeof body.error === "string") {
          message = body.error;
        }
      } catch (ignored) {
        // The body was not JSON; the status line is the message.
      }
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  function setStatus(text, isError) {
    const status = document.getElementById("status");
    status.textContent = text;
    status.classList.toggle("status-error", Boolean(isError));
  }

  // ---- Tracer tree ------------------------------------------------------

  function isOpen(tracer, index) {
    if (state.opened.has(tracer.name)) {
      return true;
    }
    if (state.closed.has(tracer.name)) {
      return false;
    }
    return index === 0 || tracer.runs.some((run) => run.id === state.runId);
  }

  function toggleTracer(name, open) {
    (open ? state.closed : state.opened).delete(name);
    (open ? state.opened : state.closed).add(name);
    renderTree();
  }

  function renderRunItem(run) {
    const started = parseTime(run.started);
    const duration = runDuration(run);
    const live = isLive(run);
    const details = run.samples === 0 || duration === null
      ? "no samples"
      : `${formatDuration(duration)} · ${formatCount(run.samples)} ` +
        (run.samples === 1 ? "sample" : "samples");
    const link = el(
      "a",
      {
        class: "run-link",
        href: runPath(run.id),
        "data-run-id": run.id,
        "data-key": `run:${run.id}`,
        "aria-current": run.id === state.runId ? "page" : null,
        title: `Run ${run.id}, started ${run.started}`,
      },
      [
        el("span", { class: "run-start" }, [
          started === null ? "unknown start" : formatShortTime(started),
        ]),
        live ? el("span", { class: "live-dot", title: "Receiving samples" }, [
          el("span", { class: "visually-hidden" }, ["live"]),
        ]) : null,
        el("span", { class: "run-details" }, [details]),
      ],
    );
    return el("li", {}, [link]);
  }

  function renderTracer(tracer, index) {
    const open = isOpen(tracer, index);
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
        el("span", { class: "tracer-count" }, [String(tracer.runs.length)]),
      ],
    );
    toggle.addEventListener("click", () => toggleTracer(tracer.name, !open));

    const section = el("section", { class: "tracer" }, [toggle]);
    if (!open) {
      return section;
    }
    const showAll = state.showAllRuns.has(tracer.name);
    const visibleRuns = showAll ? tracer.runs : tracer.runs.slice(0, RUNS_SHOWN);
    section.append(el("ul", { class: "runs" }, visibleRuns.map(renderRunItem)));
    if (visibleRuns.length < tracer.runs.length) {
      const more = el("button", { type: "button", class: "show-more" }, [
        `Show all ${formatCount(tracer.runs.length)} runs`,
      ]);
      more.addEventListener("click", () => {
        state.showAllRuns.add(tracer.name);
        renderTree();
      });
      section.append(more);
    }
    return section;
  }

  // Rebuild the tree from state.tracers. Keyboard focus stays on the same
  // tracer or run, because polling rebuilds the tree every few seconds.
  function renderTree() {
    const tree = document.getElementById("tree");
    const focused = tree.contains(document.activeElement)
      ? document.activeElement.getAttribute("data-key")
      : null;

    if (state.tracers.length === 0) {
      tree.replaceChildren(el("p", { class: "muted" }, ["No tracers yet."]));
    } else {
      tree.replaceChildren(...state.tracers.map(renderTracer));
    }

    if (focused !== null) {
      const again = Array.from(tree.querySelectorAll("[data-key]")).find(
        (node) => node.getAttribute("data-key") === focused,
      );
      if (again) {
        again.focus();
      }
    }
  }

  async function refreshTree() {
    state.tracers = await fetchJson("/api/tracers");
    renderTree();
    if (state.runId === null) {
      renderPlaceholder();
    }
  }

  // ---- Run view ---------------------------------------------------------

  function renderPlaceholder() {
    const main = document.getElementById("run");
    if (state.tracers !== null && state.tracers.length === 0) {
      // An IPv6 host name comes with brackets, which dolon does not expect.
      const host = window.location.hostname.replace(/^\[(.*)\]$/, "$1");
      const call =
        "import dolon.trace_client as tc\n\n" +
        `await tc.start_tracer("my-app", 1, "${host}", ` +
        `${state.udpPort}, tc.mem_allocation, tc.active_tasks)`;
      main.replaceChildren(
        el("div", { class: "empty-state" }, [
          el("h1", {}, ["No runs yet: start a program that uses dolon."]),
          el("p", {}, ["For example, in the program's asyncio event loop:"]),
          el("pre", {}, [el("code", {}, [call])]),
        ]),
      );
    } else {
      main.replaceChildren(
        el("p", { class: "placeholder" }, ["Select a run on the left to see its charts."]),
      );
    }
  }

  function renderMessage(className, text) {
    document.getElementById("run").replaceChildren(el("p", { class: className }, [text]));
  }

  function destroyView() {
    if (state.view !== null) {
      window.clearTimeout(state.view.zoomTimer);
      for (const chart of state.view.charts.values()) {
        destroyPlot(chart);
      }
    }
    state.view = null;
  }

  function fact(label, value, className) {
    return el("div", { class: `fact ${className || ""}` }, [
      el("dt", {}, [label]),
      el("dd", {}, [value]),
    ]);
  }

  function renderHeader(info) {
    const started = parseTime(info.started);
    const duration = runDuration(info);
    const title = el("h1", { class: "run-name" }, [
      el("span", { class: "run-name-text" }, [info.name]),
    ]);
    if (isLive(info)) {
      title.append(el("span", { class: "live-badge" }, ["live"]));
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
      info.host === null ? null : fact("Host", info.host),
      info.pid === null ? null : fact("PID", String(info.pid)),
    ]);
    const csv = el(
      "a",
      { class: "button", href: `${apiRunPath(info.id)}/csv`, download: "" },
      ["Download CSV"],
    );
    return el("header", { class: "run-header" }, [
      el("div", { class: "run-title" }, [title, csv]),
      facts,
      el("p", { class: "run-id muted" }, [`Run ${info.id}`]),
    ]);
  }

  function renderView(info) {
    const charts = new Map();
    const grid = el("div", { class: "charts" });
    info.columns.forEach((column, index) => {
      const header = el("figcaption", { class: "chart-header" }, [
        el("span", { class: "chart-title" }, [column]),
      ]);
      const body = el("div", { class: "chart-body" });
      const figure = el("figure", { class: "chart", "data-column": column }, [
        header,
        body,
      ]);
      charts.set(column, { index, figure, header, body, plot: null });
      grid.append(figure);
    });
    const notice = el("p", { class: "notice", hidden: true }, [
      "No samples yet. The charts appear when the first sample arrives.",
    ]);
    const header = renderHeader(info);
    document.getElementById("run").replaceChildren(header, notice, grid);
    state.view = {
      runId: info.id, info, header, notice, grid, charts,
      sampleCount: null, lastSeen: null,
      // The zoomed time range in Unix seconds, {min, max}, or null for all.
      range: null,
      // The time range of the whole run, {min, max}, from its last fetch.
      extent: null,
      zoomTimer: null,
    };
  }

  function chartWidth() {
    return Math.max(240, state.view.grid.clientWidth);
  }

  function plotOptions(column, index) {
    const color = COLORS[index % COLORS.length];
    return {
      width: chartWidth(),
      height: CHART_HEIGHT,
      cursor: {
        // No horizontal cursor line: the synced charts would draw it at the
        // same height, where it means nothing for their own values.
        y: false,
        sync: { key: SYNC_KEY },
        drag: { x: true, y: false },
        bind: { dblclick: bindDoubleClick },
      },
      scales: { x: { time: true } },
      series: [
        {
          label: "Time",
          value: (plot, seconds) => (seconds === null ? "–" : formatTime(seconds * 1000)),
        },
        {
          label: column,
          stroke: color,
          fill: `${color}14`,
          width: 1.5,
          spanGaps: false,
          value: (plot, value) => formatLegendValue(value),
        },
      ],
      axes: [
        {
          grid: { stroke: "#eceef1" },
          ticks: { stroke: "#d8dce1" },
          // Minimum pixels between ticks, wide enough for "HH:MM:SS".
          space: 90,
          values: formatTimeTicks,
        },
        {
          size: Y_AXIS_SIZE,
          grid: { stroke: "#eceef1" },
          ticks: { stroke: "#d8dce1" },
          values: (plot, splits) => splits.map(formatValue),
        },
      ],
      hooks: { setSelect: [onSelect] },
    };
  }

  // A drag across a chart selects a time range. uPlot zooms every chart of
  // the run to it at once, because their cursors share SYNC_KEY, and then
  // the samples of that range are fetched at full detail.
  function onSelect(plot) {
    if (plot.select.width <= 0 || state.view === null) {
      return;
    }
    const view = state.view;
    view.range = {
      min: plot.posToVal(plot.select.left, "x"),
      max: plot.posToVal(plot.select.left + plot.select.width, "x"),
    };
    // Every synced chart reports the selection, so fetch once, after the
    // last of them.
    window.clearTimeout(view.zoomTimer);
    view.zoomTimer = window.setTimeout(() => {
      refreshSamples(view).catch(reportError);
    }, 50);
  }

  // Double-click zooms back out to the whole run. uPlot's own handler is
  // replaced because it would zoom out only to the range fetched last.
  function bindDoubleClick(plot, target, handler) {
    return (event) => {
      const view = state.view;
      if (event.button !== 0 || view === null || view.range === null) {
        return null;
      }
      view.range = null;
      // Show the whole run's time range at once, with the zoomed samples,
      // until the samples of the whole run arrive.
      if (view.extent !== null) {
        for (const chart of view.charts.values()) {
          if (chart.plot !== null) {
            chart.plot.setScale("x", view.extent);
          }
        }
      }
      refreshSamples(view).catch(reportError);
      return null;
    };
  }

  function reportError(error) {
    setStatus(`Cannot load the samples: ${error.message}`, true);
  }

  function destroyPlot(chart) {
    if (chart.plot !== null) {
      chart.plot.destroy();
      chart.plot = null;
      const legend = chart.header.querySelector(".u-legend");
      if (legend !== null) {
        legend.remove();
      }
    }
  }

  // Draw or redraw one column. While the run view is zoomed, every chart
  // keeps the zoomed time range.
  function updateChart(view, column, chart, times, values) {
    const hasValue = values.some((value) => value !== null);
    if (!hasValue && (view.range === null || chart.plot === null)) {
      destroyPlot(chart);
      const text = view.range === null
        ? "No values: every sample of this column is null."
        : "No values in this time range.";
      chart.body.replaceChildren(el("p", { class: "chart-empty" }, [text]));
      return;
    }
    const data = [times, values];
    if (chart.plot === null) {
      chart.body.replaceChildren();
      chart.plot = new uPlot(plotOptions(column, chart.index), data, chart.body);
      // Move the legend from under the chart to the right of its title.
      const legend = chart.plot.root.querySelector(".u-legend");
      if (legend !== null) {
        chart.header.append(legend);
      }
    } else {
      chart.plot.setData(data, view.range === null);
    }
    if (view.range !== null) {
      chart.plot.setScale("x", view.range);
    }
  }

  function samplesPath(view) {
    const points = Math.min(MAX_POINTS, Math.round(chartWidth()));
    let path = `${apiRunPath(view.runId)}/samples?points=${points}`;
    if (view.range !== null) {
      // Fetch a margin on both sides, so that the lines run to the edges of
      // the charts instead of stopping at the first and last sample inside.
      const margin = (view.range.max - view.range.min) * 0.05;
      path += `&start=${view.range.min - margin}&end=${view.range.max + margin}`;
    }
    return path;
  }

  async function refreshSamples(view) {
    // The grid is hidden while a run has no samples, and a hidden element
    // has no width to measure.
    view.grid.hidden = false;
    const range = view.range;
    const data = await fetchJson(samplesPath(view));
    // Drop the response if the user has selected another run or zoomed again.
    if (state.view !== view || view.range !== range) {
      return;
    }
    const empty = data.t.length === 0 && range === null;
    view.notice.hidden = !empty;
    view.grid.hidden = empty;
    if (empty) {
      return;
    }
    if (range === null) {
      view.extent = { min: data.t[0], max: data.t[data.t.length - 1] };
    }
    data.columns.forEach((column, index) => {
      const chart = view.charts.get(column);
      if (chart !== undefined) {
        updateChart(view, column, chart, data.t, data.values[index]);
      }
    });
  }

  // Fetch the selected run and draw it. Samples are fetched again only when
  // the run has new ones.
  async function refreshRun() {
    const runId = state.runId;
    let info;
    try {
      info = await fetchJson(apiRunPath(runId));
    } catch (error) {
      if (error.status === 404 && state.runId === runId) {
        destroyView();
        renderMessage(
          "error",
          `Run ${runId} not found. Check the link, or select a run on the left.`,
        );
        return;
      }
      throw error;
    }
    if (state.runId !== runId) {
      return;
    }

    let view = state.view;
    if (view === null || view.runId !== runId) {
      destroyView();
      renderView(info);
      view = state.view;
    } else {
      const header = renderHeader(info);
      view.header.replaceWith(header);
      view.header = header;
      view.info = info;
    }

    document.title = `${info.name} · mnemic`;
    if (view.sampleCount !== info.samples || view.lastSeen !== info.last_seen) {
      await refreshSamples(view);
      view.sampleCount = info.samples;
      view.lastSeen = info.last_seen;
    }
  }

  // Show a run, or the placeholder for null. With push, the run's URL is
  // added to the browser history so that it can be shared and reloaded.
  async function selectRun(runId, push) {
    if (push) {
      const path = runId === null ? "/" : runPath(runId);
      if (window.location.pathname !== path) {
        window.history.pushState({ runId }, "", path);
      }
    }
    state.runId = runId;
    destroyView();
    document.title = "mnemic";
    if (state.tracers !== null) {
      renderTree();
    }
    if (runId === null) {
      renderPlaceholder();
      return;
    }
    renderMessage("placeholder", "Loading run…");
    try {
      await refreshRun();
    } catch (error) {
      setStatus(`Cannot load the run: ${error.message}`, true);
    }
  }

  function runIdFromPath(pathname) {
    const match = /^\/runs\/([^/]+)\/?$/.exec(pathname);
    return match === null ? null : decodeURIComponent(match[1]);
  }

  // ---- Polling and start-up ---------------------------------------------

  async function poll() {
    if (!document.hidden) {
      try {
        await refreshTree();
        if (state.runId !== null) {
          await refreshRun();
        }
        setStatus(`Updated ${formatClock(new Date())}`, false);
      } catch (error) {
        setStatus(`Cannot reach mnemic: ${error.message}. Retrying.`, true);
      }
    }
    window.setTimeout(poll, POLL_INTERVAL_MS);
  }

  function onTreeClick(event) {
    const link = event.target.closest("a.run-link");
    // Let the browser open a new tab or window for modified clicks.
    if (link === null || event.button !== 0 || event.ctrlKey || event.metaKey ||
        event.shiftKey || event.altKey) {
      return;
    }
    event.preventDefault();
    selectRun(link.getAttribute("data-run-id"), true);
  }

  function onResize() {
    if (state.view === null) {
      return;
    }
    const width = chartWidth();
    for (const chart of state.view.charts.values()) {
      if (chart.plot !== null && chart.plot.width !== width) {
        chart.plot.setSize({ width, height: CHART_HEIGHT });
      }
    }
  }

  function start() {
    const body = document.body;
    state.runId = body.getAttribute("data-run-id") || null;
    state.udpPort = Number(body.getAttribute("data-udp-port")) || state.udpPort;
    if (window.history.state === null) {
      window.history.replaceState({ runId: state.runId }, "");
    }

    document.getElementById("tree").addEventListener("click", onTreeClick);
    window.addEventListener("popstate", () => {
      selectRun(runIdFromPath(window.location.pathname), false);
    });
    new ResizeObserver(() => window.requestAnimationFrame(onResize)).observe(
      document.getElementById("run"),
    );

    if (state.runId !== null) {
      renderMessage("placeholder", "Loading run…");
    }
    poll();
  }

  start();
})();
