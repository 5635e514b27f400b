// Time-series charts (uPlot). Times on the axis are in the viewer's zone.
import { el, numberText, timeZone, unitText, fill } from "./format.js";

const PALETTE = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f"];

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
    axes: [{}, { values: (u, ticks) => ticks.map((v) => numberText(v)), size: 55 }],
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
