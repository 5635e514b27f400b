// The detail panel: a Thing's Datastreams with latest values and charts, or an area's KPIs.
import { getJson, sta, staUrl } from "./api.js";
import { lineChart } from "./chart.js";
import { el, numberText, table, timeText, unitText, valueText, fill } from "./format.js";
import { fetchKpi, kpiCard } from "./kpi.js";
import { RANGES, intervalFor } from "./ranges.js";

const THING_QUERY =
  "$expand=Datastreams($select=id,name,unitOfMeasurement;$orderby=id;" +
  "$expand=ObservedProperty($select=name,definition)," +
  "Observations($top=1;$orderby=phenomenonTime desc;$select=result,phenomenonTime))," +
  "TaskingCapabilities($select=id,name)";

// What a district's panel shows, per the domain KPI contract.
const AREA_KPIS = [
  { domain: "energy", key: "balance", title: "Energy balance" },
  { domain: "water", key: "night_flow", title: "Water night flow" },
  { domain: "environment", key: "air_quality", title: "Air quality" },
];

export class Detail {
  constructor(panel, twin) {
    this.panel = panel;
    this.twin = twin;
    this.current = null; // {thingId, rows: Map(dsId -> cell)}
    this.range = RANGES[1];
    twin.listeners.add((event) => {
      if (event.type !== "observation" || event.thing.id !== this.current?.thingId) return;
      const cells = this.current.rows.get(event.datastream.id);
      if (cells) {
        cells.value.textContent = valueText(event.datastream.result, event.datastream.unit);
        cells.time.textContent = timeText(event.datastream.time);
      }
    });
  }

  #open(title, ...content) {
    this.panel.hidden = false;
    const close = el("button", { type: "button", class: "close", "aria-label": "Close details", onclick: () => this.close() }, "×");
    fill(this.panel, el("div", { class: "panel-head" }, el("h2", { tabindex: "-1" }, title), close), ...content);
  }

  // Escape closes the panel and gives the focus back to where it came from (the list of
  // sensors in view, say).
  close() {
    this.panel.hidden = true;
    this.current = null;
    const back = this.returnFocus;
    this.returnFocus = null;
    if (back?.isConnected) back.focus();
  }

  // focus: opened from the keyboard, so the panel takes the focus (its heading)
  async showThing(id, { focus = false } = {}) {
    if (focus) this.returnFocus = document.activeElement;
    if (!this.escape) {
      this.escape = (e) => e.key === "Escape" && !this.panel.hidden && this.close();
      this.panel.addEventListener("keydown", this.escape);
    }
    this.#open("Loading…");
    if (focus) this.panel.querySelector("h2").focus();
    let thing;
    try {
      thing = await sta(`Things(${id})?${THING_QUERY}`);
    } catch (err) {
      this.#open("Thing", el("p", { class: "error" }, err.message));
      return;
    }
    if (!thing) {
      this.#open("Thing", el("p", { class: "muted" }, "This Thing no longer exists."));
      return;
    }
    const rows = new Map();
    const props = thing.properties ?? {};
    const chartArea = el("div", { class: "chart-area" });
    const streams = thing.Datastreams ?? [];
    const url = staUrl(`Things(${id})?${THING_QUERY}`);
    this.#open(
      thing.name,
      el("p", { class: "muted" }, [props.domain, props.kind, props.district].filter(Boolean).join(" · ") || thing.description || ""),
      el(
        "table",
        { class: "streams" },
        el("caption", {}, "Datastreams (latest values)"),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Datastream"), el("th", { scope: "col" }, "Latest"), el("th", { scope: "col" }, "Time"))),
        el(
          "tbody",
          {},
          streams.map((d) => {
            const latest = d.Observations?.[0];
            const unit = d.unitOfMeasurement?.symbol;
            const value = el("td", { class: "value" }, valueText(latest?.result, unit));
            const time = el("td", {}, timeText(latest?.phenomenonTime));
            rows.set(d["@iot.id"], { value, time });
            return el(
              "tr",
              {},
              el("td", {}, el("button", { type: "button", class: "link", onclick: () => this.#chart(chartArea, d) }, d.ObservedProperty?.name ?? d.name)),
              value,
              time,
            );
          }),
        ),
      ),
      chartArea,
      (thing.TaskingCapabilities ?? []).length
        ? el("p", {}, el("a", { href: `#control/${id}` }, `Control this Thing (${thing.TaskingCapabilities.length} capabilities)`))
        : null,
      el("p", { class: "small" }, el("a", { href: `#entities/Things(${id})` }, "Open in the entity browser")),
      el("p", { class: "small muted url" }, url),
    );
    this.current = { thingId: id, rows };
    if (focus) this.panel.querySelector("h2").focus();
    const first = streams.find((d) => typeof d.Observations?.[0]?.result === "number") ?? streams[0];
    if (first) await this.#chart(chartArea, first);
  }

  async #chart(area, ds) {
    const id = ds["@iot.id"];
    const unit = ds.unitOfMeasurement?.symbol;
    const label = ds.ObservedProperty?.name ?? ds.name;
    const holder = el("div", { class: "chart", "aria-label": `Chart of ${label}` });
    const raw = el("div", { class: "raw" });
    const buttons = RANGES.map((r) =>
      el(
        "button",
        { type: "button", "aria-pressed": String(r === this.range), onclick: () => { this.range = r; this.#chart(area, ds); } },
        r.title,
      ),
    );
    const rawButton = el("button", { type: "button", onclick: () => this.#raw(raw, id, unit) }, "Raw values");
    fill(area, 
      el("h3", {}, `${label} (${unitText(unit) || "no unit"})`),
      el("div", { class: "buttons", role: "group", "aria-label": "Period" }, buttons, rawButton),
      holder,
      raw,
    );
    const interval = intervalFor(this.range);
    const path = `Datastreams(${id})/Observations/$aggregate?interval=${interval}&bucket=${this.range.bucket}&functions=avg,min,max`;
    area.append(el("p", { class: "small muted url" }, staUrl(path)));
    try {
      const agg = await getJson(staUrl(path));
      const rows = agg?.value ?? [];
      await lineChart(
        holder,
        rows.map((r) => Date.parse(r.phenomenonTime.split("/")[0]) / 1000),
        [
          { label: "max", unit, values: rows.map((r) => r.max), stroke: "rgba(21,101,192,0.35)", width: 1 },
          { label: "mean", unit, values: rows.map((r) => r.avg), stroke: "#1565c0" },
          { label: "min", unit, values: rows.map((r) => r.min), stroke: "rgba(21,101,192,0.35)", width: 1 },
        ],
        { band: [1, 3] },
      );
    } catch (err) {
      fill(holder, el("p", { class: "error" }, `Chart not available: ${err.message}`));
    }
  }

  async #raw(holder, id, unit) {
    const start = intervalFor(this.range).split("/")[0];
    const path = `Datastreams(${id})/Observations?$select=phenomenonTime,result&$orderby=phenomenonTime desc&$top=200&$filter=phenomenonTime ge ${start}`;
    const page = await sta(path).catch((err) => ({ error: err.message }));
    fill(holder, 
      page?.error
        ? el("p", { class: "error" }, page.error)
        : el(
            "div",
            { class: "scroll" },
            table(
              [
                { title: "time", cell: (o) => timeText(o.phenomenonTime) },
                { title: `result (${unitText(unit) || "no unit"})`, cell: (o) => numberText(o.result) },
              ],
              page?.value ?? [],
              `Latest ${page?.value?.length ?? 0} raw values`,
            ),
          ),
      el("p", { class: "small muted url" }, staUrl(path)),
    );
  }

  async showArea(level, name) {
    const area = `${level}:${name}`;
    const cards = el("div", { class: "cards" });
    this.#open(name, el("p", { class: "muted" }, `${level}, last 24 hours`), cards);
    this.current = null;
    const results = await Promise.all(AREA_KPIS.map((k) => fetchKpi(k.domain, k.key, { area })));
    fill(cards, ...AREA_KPIS.map((k, i) => kpiCard(k, results[i])));
  }
}
