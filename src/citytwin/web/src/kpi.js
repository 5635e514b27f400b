// One domain KPI as a card: headline value, named values, series chart, items table.
import { getJson } from "./api.js";
import { lineChart } from "./chart.js";
import { el, numberText, table, timeText, valueText } from "./format.js";

export async function fetchKpi(domain, kpi, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v));
  try {
    return await getJson(`/api/v1/kpis/${encodeURIComponent(domain)}/${encodeURIComponent(kpi)}?${query}`);
  } catch (err) {
    return { error: err.message };
  }
}

function isEmpty(r) {
  return (
    r.value == null &&
    !Object.keys(r.values ?? {}).length &&
    !(r.series ?? []).length &&
    !(r.items ?? []).length
  );
}

export function kpiCard(meta, result) {
  const card = el("article", { class: "kpi", "data-kpi": `${meta.domain}/${meta.key}` });
  card.append(el("h3", {}, meta.title ?? meta.key));
  if (!result || result.error || isEmpty(result)) {
    card.classList.add("empty");
    card.append(el("p", { class: "muted" }, result?.error ? `No data (${result.error})` : "No data"));
    return card;
  }
  const unit = result.unit ?? meta.unit;
  card.append(el("p", { class: "headline" }, valueText(result.value, unit)));
  if (result.interval) card.append(el("p", { class: "muted small" }, timeText(result.interval)));
  const values = Object.entries(result.values ?? {});
  if (values.length) {
    card.append(
      el("dl", { class: "values" }, values.map(([k, v]) => [el("dt", {}, k.replaceAll("_", " ")), el("dd", {}, valueText(v, result.units?.[k]))])),
    );
  }
  const series = result.series ?? [];
  if (series.length) {
    const keys = [...new Set(series.flatMap((p) => Object.keys(p)))].filter(
      (k) => k !== "time" && series.some((p) => typeof p[k] === "number"),
    );
    const holder = el("div", { class: "chart" });
    card.append(holder);
    requestAnimationFrame(() =>
      lineChart(
        holder,
        series.map((p) => Date.parse(p.time) / 1000),
        keys.map((k) => ({ label: k === "value" ? meta.title ?? "value" : k.replaceAll("_", " "), unit: k === "value" ? unit : result.units?.[k], values: series.map((p) => p[k] ?? null) })),
        { height: 160 },
      ),
    );
  }
  const items = result.items ?? [];
  if (items.length) {
    const cols = [...new Set(items.flatMap((i) => Object.keys(i)))];
    card.append(
      el(
        "div",
        { class: "scroll" },
        table(
          cols.map((c) => ({
            title: result.units?.[c] ? `${c.replaceAll("_", " ")} (${result.units[c]})` : c.replaceAll("_", " "),
            cell: (row) => (/time|start|end|hour/.test(c) && typeof row[c] === "string" ? timeText(row[c]) : numberText(row[c])),
          })),
          items.slice(0, 200),
        ),
      ),
    );
  }
  return card;
}
