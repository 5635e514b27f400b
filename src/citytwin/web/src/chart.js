// Time-series charts (uPlot). Times on the axis are in the viewer's zone.
import { el, numberText, timeZone, unitText, zoneText, fill } from "./format.js";

const PALETTE = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f"];

// Tick labels in the viewer's locale and zone (uPlot's own are English): the time of day,
// with the date under the first tick and wherever the day changes; dates alone when the
// ticks are a day or more apart.
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", timeZone });
const day = new Intl.DateTimeFormat(undefined, { day: "2-digit", month: "2-digit", timeZone });

export function timeTicks(ticks) {
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : 3600;
  let last = null;
  return ticks.map((t) => {
    const d = new Date(t * 1000);
    const date = day.format(d);
    if (step >= 86400) return date;
    const text = date !== last ? `${clock.format(d)}\n${date}` : clock.format(d);
    last = date;
    return text;
  });
}

function width(container) {
  return Math.max(260, Math.floor(container.getBoundingClientRect().width || 320) - 8);
}

// series: [{label, unit, values: [number|null]}], times: [seconds]; band: [lowIdx, highIdx] optional
// uPlot is loaded with the first chart, not with the page (see build.mjs).
export async function lineChart(container, times, series, { band = null, height = 200 } = {}) {
  fill(container);
  const points = times.length;
  container.dataset.points = String(points);
  if (!points) {
    container.append(el("p", { class: "muted" }, "No data in this period."));
    return null;
  }
  const { default: uPlot } = await import("uplot");
  const opts = {
    width: width(container),
    height,
    scales: { x: { time: true } },
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), timeZone),
    axes: [
      {
        label: `Time in ${zoneText()}`,
        labelSize: 20,
        size: 45,
        values: (u, ticks) => {
          const labels = timeTicks(ticks);
          container.dataset.timeTicks = labels.join(" | "); // what the axis reads, for tests
          return labels;
        },
      },
      { values: (u, ticks) => ticks.map((v) => numberText(v)), size: 55 },
    ],
    series: [
      { label: `time (${timeZone})` },
      ...series.map((s, i) => ({
        label: `${s.label}${s.unit ? ` (${unitText(s.unit)})` : ""}`,
        stroke: s.stroke ?? PALETTE[i % PALETTE.length],
        width: s.width ?? 2,
        dash: s.dash,
        spanGaps: false,
        value: (u, v) => (v == null ? "–" : `${numberText(v)} ${unitText(s.unit)}`),
      })),
    ],
    bands: band ? [{ series: band, fill: "rgba(21,101,192,0.12)" }] : [],
  };
  const plot = new uPlot(opts, [times, ...series.map((s) => s.values)], container);
  const resize = new ResizeObserver(() => plot.setSize({ width: width(container), height }));
  resize.observe(container);
  return plot;
}
