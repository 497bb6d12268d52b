/*
 * Gaps in a run's samples. While mnemic is down or datagrams are lost, a
 * run has no samples for a while, and a line drawn across that time would
 * show data that never arrived. A null point in the gap makes uPlot break
 * the line there.
 */

// A gap is this many times longer than the run's usual spacing.
const GAP_FACTOR = 3;

function median(numbers) {
  const sorted = [...numbers].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// Return the usual time between the points of ``t``. A reduced range
// gives two points per bucket, its minimum at the bucket's first sample
// and its maximum at its last, so the spacing alternates between long and
// short: half the median distance between every other point covers both.
export function usualSpacing(t) {
  const steps = [];
  for (let i = 2; i < t.length; i += 1) {
    steps.push(t[i] - t[i - 2]);
  }
  return steps.length === 0 ? null : median(steps) / 2;
}

// Return ``data`` ({t, values}) with a null point in every gap longer than
// GAP_FACTOR times the usual spacing, or ``data`` itself when it has none.
export function withGaps(data) {
  const spacing = usualSpacing(data.t);
  if (spacing === null || !(spacing > 0)) {
    return data;
  }
  const limit = spacing * GAP_FACTOR;
  const gaps = [];
  for (let i = 1; i < data.t.length; i += 1) {
    if (data.t[i] - data.t[i - 1] > limit) {
      gaps.push(i);
    }
  }
  if (gaps.length === 0) {
    return data;
  }
  const t = [];
  const values = data.values.map(() => []);
  let from = 0;
  for (const gap of [...gaps, data.t.length]) {
    for (let i = from; i < gap; i += 1) {
      t.push(data.t[i]);
      data.values.forEach((column, index) => values[index].push(column[i] ?? null));
    }
    if (gap < data.t.length) {
      t.push((data.t[gap - 1] + data.t[gap]) / 2);
      values.forEach((column) => column.push(null));
    }
    from = gap;
  }
  return { t, values };
}
