/*
 * The view of one run: its header, one chart per column with a shared
 * cursor and drag-to-zoom, live updates, and the correlation heat map.
 *
 * Live updates: the page polls the run every second, and when it has new
 * samples, fetches only those (/samples?since=T) and appends them. Once
 * the appended samples have doubled the points on screen, the whole run is
 * fetched again, reduced to about one point per pixel.
 */

import {
  apiRunPath, confirmDialog, el, fetchJson, mainPane, postJson, setStatus,
} from "./dom.js";
import {
  chartFrame, chartHeight, destroyChart, drawChart, resizeCharts, showChartMessage,
  showLatest, timeOptions,
} from "./charts.js";
import { formatCount, formatTime, parseTime } from "./format.js";
import { withGaps } from "./gaps.js";
import { renderHeader } from "./header.js";
import { renderHeatmap } from "./heatmap.js";

const MAX_POINTS = 2000;
const SYNC_KEY = "mnemic-run";
// New samples are fetched from this many seconds before the newest point on
// screen, so that samples stored slightly out of order are not missed.
const OVERLAP_SECONDS = 5;
// The heat map of a live run is computed again at most this often.
const HEATMAP_INTERVAL_MS = 10000;
// Above this many columns, a filter box finds charts by name.
const FILTER_COLUMNS = 8;

export class RunView {
  // ``onDeleted`` is called after the run was deleted.
  constructor(info, tab, onDeleted) {
    this.runId = info.id;
    this.info = info;
    this.onDeleted = onDeleted;
    this.tab = tab === "correlations" ? "correlations" : "charts";
    this.height = chartHeight(info.columns.length);
    // The whole run's points as {t, values}, or null before the first fetch.
    this.data = null;
    // The zoomed time range in Unix seconds, {min, max}, or null for all.
    this.range = null;
    // True when samples arrived while zoomed, so the whole run is fetched
    // again on zooming out.
    this.stale = false;
    this.sampleCount = null;
    this.lastSeen = null;
    this.heatmapFetched = 0;
    this.zoomTimer = null;
    this.destroyed = false;
    // An error shown in the header until dismissed, such as a failed delete.
    this.error = null;
    this.build();
  }

  build() {
    this.charts = this.info.columns.map((column, index) => chartFrame(column, index));
    this.grid = el("div", { class: "charts" }, this.charts.map((chart) => chart.figure));
    this.notice = el("p", { class: "notice", hidden: true }, [
      "No samples yet. The charts appear when the first sample arrives.",
    ]);
    this.zoomInfo = el("span", { class: "zoom-info muted" }, [
      "Drag across a chart to zoom, double-click to zoom out.",
    ]);
    this.heatmap = el("div", { class: "heatmap-pane" });
    this.header = this.newHeader();
    const toolbar = el("div", { class: "toolbar" }, [
      this.renderTabs(),
      this.charts.length > FILTER_COLUMNS ? this.renderFilter() : null,
      this.zoomInfo,
    ]);
    this.chartsPane = el("div", { class: "charts-pane", id: "pane-charts",
                                  role: "tabpanel" }, [this.notice, this.grid]);
    this.heatmap.id = "pane-correlations";
    this.heatmap.setAttribute("role", "tabpanel");
    mainPane().replaceChildren(this.header, toolbar, this.chartsPane, this.heatmap);
    this.showTab(this.tab);
  }

  renderTabs() {
    this.tabs = ["charts", "correlations"].map((name) => {
      const tab = el("button", {
        type: "button", role: "tab", class: "tab", "data-tab": name,
        "aria-controls": `pane-${name}`,
      }, [name === "charts" ? "Charts" : "Correlations"]);
      tab.addEventListener("click", () => {
        this.showTab(name);
        // The tab is kept in the address, so a shared link opens it.
        const hash = name === "charts" ? "" : `#${name}`;
        window.history.replaceState(window.history.state, "",
                                    window.location.pathname + hash);
      });
      return tab;
    });
    return el("div", { class: "tabs", role: "tablist" }, this.tabs);
  }

  renderFilter() {
    const input = el("input", {
      type: "search", class: "column-filter", placeholder: "Filter columns",
      "aria-label": "Show only the columns whose name contains",
    });
    input.addEventListener("input", () => {
      const text = input.value.trim().toLowerCase();
      for (const chart of this.charts) {
        chart.figure.hidden = text !== "" && !chart.column.toLowerCase().includes(text);
      }
    });
    return input;
  }

  showTab(name) {
    this.tab = name;
    for (const tab of this.tabs) {
      tab.setAttribute("aria-selected", String(tab.getAttribute("data-tab") === name));
    }
    this.chartsPane.hidden = name !== "charts";
    this.heatmap.hidden = name !== "correlations";
    this.zoomInfo.hidden = name !== "charts" && this.range === null;
    if (name === "charts") {
      this.resize();
    } else {
      this.refreshHeatmap(true).catch(reportError);
    }
  }

  chartWidth() {
    return Math.max(240, this.grid.clientWidth || mainPane().clientWidth - 56);
  }

  options(chart) {
    const cursor = {
      // No horizontal cursor line: the synced charts would draw it at the
      // same height, where it means nothing for their own values.
      y: false,
      sync: { key: SYNC_KEY },
      drag: { x: true, y: false },
      bind: { dblclick: (plot, target, handler) => (event) => this.onDoubleClick(event) },
    };
    const size = { width: this.chartWidth(), height: this.height };
    const hooks = { setSelect: [(plot) => this.onSelect(plot)] };
    return timeOptions(chart.column, chart.index, size, cursor, hooks);
  }

  // Draw ``data`` ({t, values}) in every chart, with its gaps left open.
  draw(fetched) {
    const data = withGaps(fetched);
    const empty = data.t.length === 0 && this.range === null;
    this.notice.hidden = !empty;
    this.grid.hidden = empty;
    if (empty) {
      return;
    }
    this.charts.forEach((chart, index) => {
      const values = data.values[index] || [];
      showLatest(chart, this.range === null ? values : null);
      if (!values.some((value) => value !== null) &&
          (this.range === null || chart.plot === null)) {
        showChartMessage(chart, this.range === null
          ? "No values: every sample of this column is null."
          : "No values in this time range.");
        return;
      }
      drawChart(chart, () => this.options(chart), [data.t, values], this.range === null);
      if (this.range !== null) {
        chart.plot.setScale("x", this.range);
      }
    });
  }

  samplesPath(extra) {
    const points = Math.min(MAX_POINTS, Math.round(this.chartWidth()));
    return `${apiRunPath(this.runId)}/samples?points=${points}${extra || ""}`;
  }

  async loadAll() {
    const data = await fetchJson(this.samplesPath());
    if (this.destroyed) {
      return;
    }
    this.data = data;
    this.stale = false;
    if (this.range === null) {
      this.draw(data);
    }
  }

  // Fetch the samples newer than what is on screen and append them.
  async appendNew() {
    const data = this.data;
    const last = data.t.length === 0 ? null : data.t[data.t.length - 1];
    if (last === null) {
      await this.loadAll();
      return;
    }
    const since = last - OVERLAP_SECONDS;
    const newer = await fetchJson(this.samplesPath(`&since=${since}`));
    if (this.destroyed || this.data !== data) {
      return;
    }
    let keep = data.t.length;
    while (keep > 0 && data.t[keep - 1] > since) {
      keep -= 1;
    }
    data.t = data.t.slice(0, keep).concat(newer.t);
    data.values = data.values.map((values, index) =>
      values.slice(0, keep).concat(newer.values[index] || []));
    if (data.t.length > 2 * Math.min(MAX_POINTS, this.chartWidth())) {
      await this.loadAll();
    } else if (this.range === null) {
      this.draw(data);
    }
  }

  // Poll the run: update the header, and fetch what is new.
  async refresh() {
    const info = await fetchJson(apiRunPath(this.runId));
    if (this.destroyed) {
      return;
    }
    this.info = info;
    this.renderHeader();
    if (this.sampleCount === info.samples && this.lastSeen === info.last_seen) {
      return;
    }
    if (this.data === null) {
      await this.loadAll();
    } else if (this.range !== null) {
      this.stale = true;
    } else {
      await this.appendNew();
    }
    this.sampleCount = info.samples;
    this.lastSeen = info.last_seen;
    if (this.tab === "correlations") {
      await this.refreshHeatmap(false);
    }
  }

  // Replace the header with one for this.info. A focused button in it, such
  // as Delete, keeps the focus, because this happens every second.
  renderHeader() {
    const focused = this.header.contains(document.activeElement)
      ? document.activeElement.className
      : null;
    const header = this.newHeader();
    this.header.replaceWith(header);
    this.header = header;
    if (focused !== null) {
      const again = header.getElementsByClassName(focused)[0];
      if (again !== undefined) {
        again.focus();
      }
    }
  }

  newHeader() {
    return renderHeader(this.info, () => this.confirmDelete(), this.error, () => {
      this.error = null;
      this.renderHeader();
    });
  }

  async refreshHeatmap(force) {
    const now = Date.now();
    if (!force && now - this.heatmapFetched < HEATMAP_INTERVAL_MS) {
      return;
    }
    this.heatmapFetched = now;
    if (this.heatmap.childElementCount === 0) {
      this.heatmap.append(el("p", { class: "placeholder" }, ["Computing correlations…"]));
    }
    let path = `${apiRunPath(this.runId)}/correlations`;
    const range = this.range;
    if (range !== null) {
      path += `?start=${range.min}&end=${range.max}`;
    }
    const result = await fetchJson(path);
    if (!this.destroyed && this.range === range) {
      this.heatmap.replaceChildren(renderHeatmap(result, range !== null));
    }
  }

  // A drag across a chart selects a time range. uPlot zooms every chart of
  // the run to it at once, because their cursors share SYNC_KEY, and then
  // the samples of that range are fetched at full detail.
  onSelect(plot) {
    if (plot.select.width <= 0) {
      return;
    }
    this.range = {
      min: plot.posToVal(plot.select.left, "x"),
      max: plot.posToVal(plot.select.left + plot.select.width, "x"),
    };
    // Every synced chart reports the selection, so fetch once, after the
    // last of them.
    window.clearTimeout(this.zoomTimer);
    this.zoomTimer = window.setTimeout(() => this.loadRange().catch(reportError), 50);
  }

  async loadRange() {
    const range = this.range;
    this.showZoom();
    // Fetch a margin on both sides, so that the lines run to the edges of
    // the charts instead of stopping at the first and last sample inside.
    const margin = (range.max - range.min) * 0.05;
    const data = await fetchJson(
      this.samplesPath(`&start=${range.min - margin}&end=${range.max + margin}`));
    if (!this.destroyed && this.range === range) {
      this.draw(data);
      this.heatmapFetched = 0;
    }
  }

  // Double-click zooms back out to the whole run. uPlot's own handler is
  // replaced because it would zoom out only to the range fetched last.
  onDoubleClick(event) {
    if (event.button === 0 && this.range !== null) {
      this.zoomOut().catch(reportError);
    }
    return null;
  }

  async zoomOut() {
    this.range = null;
    this.showZoom();
    this.heatmapFetched = 0;
    if (this.stale || this.data === null) {
      await this.loadAll();
    } else {
      this.draw(this.data);
    }
  }

  showZoom() {
    if (this.range === null) {
      this.zoomInfo.replaceChildren("Drag across a chart to zoom, double-click to zoom out.");
      return;
    }
    const reset = el("button", { type: "button", class: "link-button" }, ["Zoom out"]);
    reset.addEventListener("click", () => this.zoomOut().catch(reportError));
    const from = formatTime(this.range.min * 1000);
    let to = formatTime(this.range.max * 1000);
    // Only the clock for the end when both are on the same day.
    if (to.slice(0, 10) === from.slice(0, 10)) {
      to = to.slice(11);
    }
    this.zoomInfo.replaceChildren(`Zoomed to ${from} – ${to} · `, reset);
  }

  async confirmDelete() {
    const info = this.info;
    const started = parseTime(info.started);
    const when = started === null ? "" : ` started ${formatTime(started)}`;
    const confirmed = await confirmDialog(
      "Delete this run?",
      `The run of ${info.name}${when} and its ${formatCount(info.samples)} samples ` +
      "are removed from the database for good. A run that is still sending starts " +
      "again with its next samples.",
      "Delete run",
    );
    if (!confirmed) {
      return;
    }
    this.error = null;
    try {
      await postJson(`${apiRunPath(info.id)}/delete`);
    } catch (error) {
      // The header keeps the message until it is dismissed, where the
      // status line would lose it at the next poll.
      this.error = `Cannot delete the run: ${error.message}`;
      if (!this.destroyed) {
        this.renderHeader();
      }
      return;
    }
    setStatus(`Deleted the run of ${info.name}${when}`, false);
    this.onDeleted(info);
  }

  resize() {
    resizeCharts(this.charts, this.chartWidth(), this.height);
  }

  destroy() {
    this.destroyed = true;
    window.clearTimeout(this.zoomTimer);
    this.charts.forEach(destroyChart);
  }
}

function reportError(error) {
  setStatus(`Cannot load the samples: ${error.message}`, true);
}
