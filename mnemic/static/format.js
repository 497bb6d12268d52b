/*
 * Formatting of times, durations, counts and values for the page.
 * Times are shown in the browser's time zone.
 */

export function pad(number) {
  return String(number).padStart(2, "0");
}

// Parse an ISO 8601 time from the API into milliseconds since the epoch.
// The fraction is cut to milliseconds, the precision Date.parse is
// specified for.
export function parseTime(iso) {
  if (!iso) {
    return null;
  }
  const ms = Date.parse(iso.replace(/(\.\d{3})\d+/, "$1"));
  return Number.isNaN(ms) ? null : ms;
}

export function formatDate(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

export function formatClock(date) {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

// Format a time, e.g. "2024-05-01 14:03:22".
export function formatTime(ms) {
  const date = new Date(ms);
  return `${formatDate(date)} ${formatClock(date)}`;
}

// Format a time briefly for the tree: the clock alone for today.
export function formatShortTime(ms) {
  const date = new Date(ms);
  if (formatDate(date) === formatDate(new Date())) {
    return formatClock(date);
  }
  return `${formatDate(date)} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export function formatUtcOffset(ms) {
  const minutes = -new Date(ms).getTimezoneOffset();
  const sign = minutes < 0 ? "-" : "+";
  const absolute = Math.abs(minutes);
  return `UTC${sign}${pad(Math.floor(absolute / 60))}:${pad(absolute % 60)}`;
}

// Format a duration in seconds with its two largest units, e.g. "3m 05s".
export function formatDuration(seconds) {
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

// Format an offset from a run's start for an axis tick, e.g. "+1:30" or
// "+2:05:00", to whole seconds.
export function formatOffset(seconds) {
  const sign = seconds < 0 ? "-" : "+";
  const s = Math.round(Math.abs(seconds));
  const clock = `${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
  if (s >= 3600) {
    return `${sign}${Math.floor(s / 3600)}:${clock}`;
  }
  return `${sign}${Math.floor(s / 60)}:${pad(s % 60)}`;
}

// Format the time ticks of an x axis in 24-hour time, to the precision of
// the tick increment in seconds. The date is added under every tick that
// starts a new day, and under the first tick unless that is today.
export function formatTimeTicks(plot, splits, axisIndex, space, increment) {
  let previousDay = formatDate(new Date());
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

export function formatCount(count) {
  return Number(count).toLocaleString("en-US");
}

// Format a sample value for an axis, with an SI suffix above a thousand,
// e.g. 1250000 -> "1.25M".
export function formatValue(value) {
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

export function formatLegendValue(value) {
  if (value === null || value === undefined) {
    return "–";
  }
  return value.toLocaleString("en-US", { maximumFractionDigits: 3 });
}

// Return the run's length in seconds, from its start to its last sample,
// or null when it has no samples yet.
export function runDuration(run) {
  const started = parseTime(run.started);
  const lastSeen = parseTime(run.last_seen);
  if (started === null || lastSeen === null) {
    return null;
  }
  return (lastSeen - started) / 1000;
}

// A run whose last sample is younger than this is marked live.
export const LIVE_WINDOW_MS = 10000;

export function isLive(run) {
  const lastSeen = parseTime(run.last_seen);
  return lastSeen !== null && Date.now() - lastSeen < LIVE_WINDOW_MS;
}

// Count ``count`` of a thing, e.g. "1 column" or "3 columns".
export function formatPlural(count, singular, plural) {
  return `${formatCount(count)} ${count === 1 ? singular : plural}`;
}

// Describe a run's length and sample count, e.g. "4m 11s · 251 samples".
export function runDetails(run) {
  const duration = runDuration(run);
  if (run.samples === 0 || duration === null) {
    return "no samples";
  }
  return `${formatDuration(duration)} · ${formatPlural(run.samples, "sample", "samples")}`;
}
