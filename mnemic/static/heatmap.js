/*
 * The correlation heat map of a run's columns, drawn as a table whose
 * cells are colored from blue (-1) through white (0) to red (+1).
 * PostgreSQL computes the correlations, see /api/runs/{id}/correlations.
 */

import { el } from "./dom.js";
import { formatCount } from "./format.js";

// Above this many columns, the cells show only their color, and the value
// is in the cell's tooltip.
const VALUE_COLUMNS = 12;
const NEGATIVE = [37, 99, 201];
const NEUTRAL = [246, 247, 249];
const POSITIVE = [207, 63, 51];

// Return the CSS color of a correlation between -1 and 1.
export function correlationColor(value) {
  const weight = Math.min(1, Math.abs(value));
  const end = value < 0 ? NEGATIVE : POSITIVE;
  const rgb = NEUTRAL.map((channel, i) => Math.round(channel + (end[i] - channel) * weight));
  return `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
}

function formatCorrelation(value) {
  if (value === null) {
    return "n/a";
  }
  // No "-0.00" for a tiny negative value.
  const text = (Math.abs(value) < 0.005 ? 0 : value).toFixed(2);
  return text.replace("-", "−");
}

function describe(result, zoomed) {
  const where = zoomed ? "in the zoomed time range" : "over the whole run";
  if (result.total === 0) {
    return `No samples ${where} yet.`;
  }
  if (result.sampled) {
    return `Pearson correlation ${where}, estimated from ` +
      `${formatCount(result.samples)} of its ${formatCount(result.total)} samples, ` +
      "evenly spaced.";
  }
  return `Pearson correlation ${where}, from all ${formatCount(result.total)} samples.`;
}

function legend() {
  const stops = [-1, -0.5, 0, 0.5, 1];
  const gradient = stops.map((value) => correlationColor(value)).join(", ");
  return el("div", { class: "heatmap-legend", "aria-hidden": "true" }, [
    el("span", {}, ["−1"]),
    el("span", {
      class: "heatmap-scale",
      style: `background: linear-gradient(to right, ${gradient})`,
    }),
    el("span", {}, ["+1"]),
  ]);
}

function cell(result, row, column, showValues) {
  const value = result.matrix[row][column];
  const pair = `${result.columns[row]} × ${result.columns[column]}`;
  const title = `${pair}: ${value === null ? "undefined (constant or no values)" : value.toFixed(3)}`;
  const attributes = {
    class: value === null ? "heat-cell heat-none" : "heat-cell",
    title,
    "data-row": row,
    "data-column": column,
    "data-value": value === null ? "" : value,
  };
  if (value !== null && row === column) {
    // A column's correlation with itself is always 1, so it is drawn in
    // gray to let the pairs of different columns stand out.
    attributes.class += " heat-self";
  } else if (value !== null) {
    attributes.style = `background-color: ${correlationColor(value)}`;
    if (Math.abs(value) > 0.6) {
      attributes.class += " heat-strong";
    }
  }
  return el("td", attributes, [showValues ? formatCorrelation(value) : null]);
}

// Return up to ``count`` pairs of different columns with the strongest
// correlation, positive or negative, as {first, second, value}.
function strongestPairs(result, count) {
  const pairs = [];
  result.matrix.forEach((row, i) => {
    row.forEach((value, j) => {
      if (j > i && value !== null) {
        pairs.push({ first: result.columns[i], second: result.columns[j], value });
      }
    });
  });
  pairs.sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
  return pairs.slice(0, count);
}

function renderStrongest(result) {
  const pairs = strongestPairs(result, 8);
  if (pairs.length === 0) {
    return null;
  }
  return el("div", { class: "heat-strongest" }, [
    el("h2", {}, ["Strongest pairs"]),
    el("ol", {}, pairs.map((pair) => el("li", {}, [
      el("span", {
        class: Math.abs(pair.value) > 0.6 ? "heat-chip heat-strong" : "heat-chip",
        style: `background-color: ${correlationColor(pair.value)}`,
      }, [formatCorrelation(pair.value)]),
      el("span", { class: "heat-pair" }, [`${pair.first} × ${pair.second}`]),
    ]))),
  ]);
}

// Render the heat map of ``result``, the body of a correlations response.
export function renderHeatmap(result, zoomed) {
  const columns = result.columns;
  if (columns.length < 2) {
    return el("p", { class: "notice" }, [
      "A correlation needs at least two columns; this run has one.",
    ]);
  }
  const showValues = columns.length <= VALUE_COLUMNS;
  const head = el("tr", {}, [
    el("td", { class: "heat-corner" }),
    ...columns.map((name) => el("th", { scope: "col", class: "heat-top", title: name }, [
      el("span", {}, [name]),
    ])),
  ]);
  const rows = columns.map((name, row) => el("tr", {}, [
    el("th", { scope: "row", class: "heat-side", title: name }, [name]),
    ...columns.map((ignored, column) => cell(result, row, column, showValues)),
  ]));
  const table = el("table", {
    class: showValues ? "heatmap" : "heatmap heatmap-dense",
    "aria-label": "Correlations between the run's columns",
  }, [el("thead", {}, [head]), el("tbody", {}, rows)]);
  return el("div", { class: "heatmap-panel" }, [
    el("div", { class: "heatmap-caption" }, [
      el("p", { class: "muted" }, [describe(result, zoomed)]),
      legend(),
    ]),
    el("div", { class: "heatmap-body" }, [
      el("div", { class: "heatmap-scroll" }, [table]),
      renderStrongest(result),
    ]),
  ]);
}
