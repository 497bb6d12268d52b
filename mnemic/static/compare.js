/*
 * The compare view: two or more runs overlaid in one chart per column,
 * aligned by the time since each run's start.
 *
 * Each run is fetched reduced to about one point per pixel, and uPlot.join
 * merges their offsets into one x axis. Zooming is done by uPlot on the
 * fetched points, and the whole view is fetched again when a run has new
 * samples.
 */

import { apiRunPath, el, fetchJson, mainPane, runPath } from "./dom.js";
import {
  COLORS, chartFrame, chartHeight, destroyChart, drawChart, offsetOptions,
  resizeCharts, showChartMessage,
} from "./charts.js";
import { formatShortTime, isLive, parseTime, runDetails } from "./format.js";
import { withGaps } from "./gaps.js";

const MAX_POINTS = 2000;
const SYNC_KEY = "mnemic-compare";

// Return the run's start in Unix seconds: its announced start, or its first
// sample when the announcement carried none.
function startSeconds(info) {
  const started = parseTime(info.started) ?? parseTime(info.first_sample);
  return started === null ? 0 : started / 1000;
}

export class CompareView {
  constructor(runIds) {
    this.runIds = runIds;
    this.infos = null;
    this.charts = [];
    this.destroyed = false;
    this.signature = null;
    this.grid = el("div", { class: "charts" });
    this.header = el("header", { class: "run-header" });
    mainPane().replaceChildren(this.header, this.grid);
  }

  chartWidth() {
    return Math.max(240, this.grid.clientWidth || mainPane().clientWidth - 56);
  }

  // Fetch the runs' infos, and their samples when any run has changed.
  async refresh() {
    const results = await Promise.allSettled(
      this.runIds.map((runId) => fetchJson(apiRunPath(runId))));
    if (this.destroyed) {
      return;
    }
    const infos = [];
    const missing = [];
    results.forEach((result, index) => {
      if (result.status === "fulfilled") {
        infos.push(result.value);
      } else if (result.reason.status === 404) {
        missing.push(this.runIds[index]);
      } else {
        throw result.reason;
      }
    });
    const signature = JSON.stringify(infos.map((info) => [info.samples, info.last_seen]));
    this.infos = infos;
    this.renderHeader(missing);
    if (signature === this.signature) {
      return;
    }
    await this.loadSamples(infos);
    this.signature = signature;
  }

  renderHeader(missing) {
    const infos = this.infos;
    const names = [...new Set(infos.map((info) => info.name))];
    const title = el("h1", { class: "run-name" }, [
      el("span", { class: "compare-label" }, ["Compare"]),
      el("span", { class: "run-name-text" }, [names.join(", ") || "no runs"]),
    ]);
    const runs = infos.map((info, index) => {
      const started = parseTime(info.started);
      return el("li", { class: "compare-run" }, [
        el("span", {
          class: "swatch", style: `background: ${COLORS[index % COLORS.length]}`,
        }),
        el("a", { href: runPath(info.id), class: "compare-run-link" }, [
          started === null ? "unknown start" : formatShortTime(started),
        ]),
        isLive(info) ? el("span", { class: "live-badge" }, ["live"]) : null,
        el("span", { class: "muted" }, [runDetails(info)]),
        names.length > 1 ? el("span", { class: "muted" }, [info.name]) : null,
      ]);
    });
    const children = [
      el("div", { class: "run-title" }, [title]),
      el("ul", { class: "compare-runs" }, runs),
      el("p", { class: "run-id muted" }, [
        "Time since each run's start. Drag across a chart to zoom, " +
        "double-click to zoom out.",
      ]),
    ];
    if (missing.length > 0) {
      children.push(el("p", { class: "error" }, [
        `Not found: ${missing.join(", ")}. These runs may have been deleted.`,
      ]));
    }
    this.header.replaceChildren(...children);
  }

  async loadSamples(infos) {
    const points = Math.min(MAX_POINTS, Math.round(this.chartWidth()));
    const samples = await Promise.all(infos.map((info) =>
      fetchJson(`${apiRunPath(info.id)}/samples?points=${points}`)));
    if (this.destroyed) {
      return;
    }
    const columns = [];
    for (const info of infos) {
      for (const column of info.columns) {
        if (!columns.includes(column)) {
          columns.push(column);
        }
      }
    }
    if (this.charts.length !== columns.length ||
        this.charts.some((chart, index) => chart.column !== columns[index])) {
      this.charts.forEach(destroyChart);
      this.charts = columns.map((column, index) => chartFrame(column, index));
      this.grid.replaceChildren(...this.charts.map((chart) => chart.figure));
    }
    this.height = chartHeight(columns.length);
    for (const chart of this.charts) {
      this.drawColumn(chart, infos, samples);
    }
  }

  // Overlay one column of every run that has it.
  drawColumn(chart, infos, samples) {
    const series = [];
    const tables = [];
    infos.forEach((info, index) => {
      const position = samples[index].columns.indexOf(chart.column);
      if (position < 0 || samples[index].t.length === 0) {
        return;
      }
      const start = startSeconds(info);
      const started = parseTime(info.started);

      series.push({
        label: started === null ? `run ${index + 1}` : formatShortTime(started),
        color: COLORS[index % COLORS.length],
      });
      // Null points where the run lost samples break its line there.
      const gapped = withGaps(samples[index]);
      tables.push([
        gapped.t.map((t) => t - start),
        gapped.values[position],
      ]);
    });
    const hasValue = tables.some((table) => table[1].some((value) => value !== null));
    if (!hasValue) {
      showChartMessage(chart, "No values in any of these runs.");
      return;
    }

    const data = uPlot.join(tables);
    const signature = series.map((entry) => entry.label + entry.color).join("|");
    if (chart.plot !== null && chart.seriesSignature !== signature) {
      destroyChart(chart);
    }
    chart.seriesSignature = signature;

    const cursor = { y: false, sync: { key: SYNC_KEY }, drag: { x: true, y: false } };
    const size = { width: this.chartWidth(), height: this.height };
    drawChart(chart, () => offsetOptions(series, size, cursor, {}), data, true);
  }

  resize() {
    resizeCharts(this.charts, this.chartWidth(), this.height);
  }

  destroy() {
    this.destroyed = true;
    this.charts.forEach(destroyChart);
  }
}
