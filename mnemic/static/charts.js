/*
 * uPlot options and chart frames shared by the run view and the compare
 * view: one chart per column, all with the same width and y axis size, so
 * that their plot areas line up under the shared cursor.
 */

import { el } from "./dom.js";
import {
  formatLegendValue, formatOffset, formatTime, formatTimeTicks, formatValue,
} from "./format.js";

export const COLORS = [
  "#2563c9", "#d9730d", "#2e9e5b", "#c23b7a",
  "#7a5bd6", "#a88100", "#1c8fa0", "#cf3f33",
];
// Width in pixels of every y axis, so that the plot areas of all charts
// line up and the shared cursor falls on the same x position in each.
const Y_AXIS_SIZE = 64;
const GRID = { stroke: "#eceef1" };
const TICKS = { stroke: "#d8dce1" };
// Tick steps in seconds for an axis of offsets from a run's start.
const OFFSET_INCREMENTS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
  21600, 43200, 86400, 172800, 604800,
];

// Return the chart height for a run of ``count`` columns: smaller when
// there are many, so that more of them fit on the screen.
export function chartHeight(count) {
  return count > 8 ? 120 : 150;
}

// Build the frame of one chart: a header with the column name, where the
// legend goes, and a body for the plot or a message.
export function chartFrame(column, index) {
  const latest = el("span", { class: "chart-latest", title: "Latest value" });
  const header = el("figcaption", { class: "chart-header" }, [
    el("span", { class: "chart-heading" }, [
      el("span", { class: "chart-title" }, [column]),
      latest,
    ]),
  ]);
  const body = el("div", { class: "chart-body" });
  const figure = el("figure", { class: "chart", "data-column": column }, [
    header, body,
  ]);
  return { index, column, figure, header, body, latest, plot: null };
}

// Show the last non-null value of ``values`` next to the chart's title, or
// nothing when ``values`` is null.
export function showLatest(chart, values) {
  let text = "";
  if (values !== null) {
    for (let i = values.length - 1; i >= 0; i -= 1) {
      if (values[i] !== null && values[i] !== undefined) {
        text = formatLegendValue(values[i]);
        break;
      }
    }
  }
  chart.latest.textContent = text;
}

// Return the value of ``values`` at ``index``, or when it has none there,
// its nearest earlier value. In joined compare data, each run has values
// only at its own sample offsets.
function valueAtOrBefore(values, index) {
  for (let i = index; i >= 0; i -= 1) {
    if (values[i] !== undefined) {
      return values[i];
    }
  }
  return null;
}

function valueAxis() {
  return {
    size: Y_AXIS_SIZE,
    // uPlot's default of 30 pixels between ticks leaves a short chart with
    // one or two labels, or none when they fall outside the range.
    space: 15,
    grid: GRID,
    ticks: TICKS,
    values: (plot, splits) => splits.map(formatValue),
  };
}

// Round ``value`` to 12 significant digits, dropping the float noise of
// multiplying a step such as 0.05.
function tidy(value) {
  return Number(value.toPrecision(12));
}

// Return the y range of a chart whose values lie between ``min`` and
// ``max``: 10% wider on each side, with ends on a round number so that
// they get labels, and not below 0 for values that are not. uPlot would
// show a constant 0 on a scale of 0 to 100, so a constant gets a range
// around it: 0 to 1 for 0, otherwise 10% either side.
export function valueRange(plot, min, max) {
  if (min === null || max === null) {
    return [0, 1];
  }
  const delta = max - min;
  if (delta < 1e-9 * Math.max(1, Math.abs(max))) {
    if (min === 0) {
      return [0, 1];
    }
    const margin = Math.abs(min) * 0.1;
    return [min - margin, max + margin];
  }
  const step = 10 ** Math.floor(Math.log10(delta)) / 2;
  let low = tidy(Math.floor((min - delta * 0.1) / step) * step);
  const high = tidy(Math.ceil((max + delta * 0.1) / step) * step);
  if (min >= 0 && low < 0) {
    low = 0;
  }
  return [low, high];
}

// Return uPlot options for a column over time.
export function timeOptions(column, index, size, cursor, hooks) {
  const color = COLORS[index % COLORS.length];
  return {
    ...size,
    cursor,
    scales: { x: { time: true }, y: { range: valueRange } },
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
      // Minimum pixels between ticks, wide enough for "HH:MM:SS".
      { grid: GRID, ticks: TICKS, space: 90, values: formatTimeTicks },
      valueAxis(),
    ],
    hooks,
  };
}

// Return uPlot options for one column of several runs, against the time
// since each run's start. ``runs`` are {label, color} in series order.
export function offsetOptions(runs, size, cursor, hooks) {
  return {
    ...size,
    cursor,
    scales: { x: { time: false }, y: { range: valueRange } },
    series: [
      {
        label: "Since start",
        value: (plot, seconds) => (seconds === null ? "–" : formatOffset(seconds)),
      },
      ...runs.map((run) => ({
        label: run.label,
        stroke: run.color,
        width: 1.5,
        // Points that only another run has are undefined in this series,
        // and the line runs through them. Nulls from the run are gaps.
        spanGaps: false,
        value: (plot, value, seriesIndex, index) => formatLegendValue(
          index === null ? value : valueAtOrBefore(plot.data[seriesIndex], index)),
      })),
    ],
    axes: [
      {
        grid: GRID,
        ticks: TICKS,
        space: 70,
        incrs: OFFSET_INCREMENTS,
        values: (plot, splits) => splits.map(formatOffset),
      },
      valueAxis(),
    ],
    hooks,
  };
}

// Draw ``data`` in the chart, creating its plot on first use. The legend
// moves from under the plot to the chart's header.
export function drawChart(chart, options, data, resetScales) {
  if (chart.plot === null) {
    chart.body.replaceChildren();
    chart.plot = new uPlot(options(), data, chart.body);
    const legend = chart.plot.root.querySelector(".u-legend");
    if (legend !== null) {
      chart.header.append(legend);
    }
    // The legends show the values under the shared cursor, so run.css
    // shows them only while the cursor is on a chart.
    chart.plot.over.addEventListener("mouseenter", () => {
      document.body.classList.add("chart-hover");
    });
    chart.plot.over.addEventListener("mouseleave", () => {
      document.body.classList.remove("chart-hover");
    });
  } else {
    chart.plot.setData(data, resetScales);
  }
}

export function destroyChart(chart) {
  if (chart.plot !== null) {
    chart.plot.destroy();
    chart.plot = null;
    document.body.classList.remove("chart-hover");
    const legend = chart.header.querySelector(".u-legend");
    if (legend !== null) {
      legend.remove();
    }
  }
}

export function showChartMessage(chart, text) {
  destroyChart(chart);
  chart.body.replaceChildren(el("p", { class: "chart-empty" }, [text]));
}

// Resize every plot of ``charts`` to ``width``.
export function resizeCharts(charts, width, height) {
  for (const chart of charts) {
    if (chart.plot !== null && chart.plot.width !== width) {
      chart.plot.setSize({ width, height });
    }
  }
}
