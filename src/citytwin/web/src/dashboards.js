// Domain dashboards, built from whatever GET /api/v1/domains declares.
import { optionalApi } from "./api.js";
import { el, fill } from "./format.js";
import { fetchKpi, kpiCard } from "./kpi.js";
import { RANGES, intervalFor } from "./ranges.js";

const BUCKETS = { hour: "PT15M", day: "PT15M", week: "PT1H", month: "P1D" };

export class Dashboards {
  constructor(root) {
    this.root = root;
    this.domains = null;
    this.areas = [];
    this.state = { domain: null, area: "city", range: RANGES[1] };
  }

  async show() {
    if (this.domains === null) {
      const [domains, areas] = await Promise.all([
        optionalApi("domains", "/api/v1/domains"),
        optionalApi("areas", "/api/v1/areas"),
      ]);
      this.domains = domains?.value ?? [];
      this.areas = areas?.value ?? [];
      this.state.domain = this.domains[0]?.name ?? null;
    }
    if (!this.domains.length) {
      fill(this.root, 
        el("h2", {}, "Dashboards"),
        el("p", { class: "muted" }, "This server offers no domain KPIs yet (GET /api/v1/domains)."),
      );
      return;
    }
    const domainTabs = el(
      "div",
      { class: "buttons", role: "group", "aria-label": "Domain" },
      this.domains.map((d) =>
        el("button", { type: "button", "aria-pressed": String(d.name === this.state.domain), onclick: () => { this.state.domain = d.name; this.show(); } }, d.title ?? d.name),
      ),
    );
    const areaSelect = el(
      "select",
      { "aria-label": "Area", onchange: (e) => { this.state.area = e.target.value; this.show(); } },
      (this.areas.length ? this.areas : [{ id: "city", name: "City" }]).map((a) =>
        el("option", { value: a.id, selected: a.id === this.state.area }, a.level === "neighbourhood" ? `  ${a.name}` : a.name),
      ),
    );
    const rangeSelect = el(
      "select",
      { "aria-label": "Period", onchange: (e) => { this.state.range = RANGES.find((r) => r.key === e.target.value); this.show(); } },
      RANGES.map((r) => el("option", { value: r.key, selected: r === this.state.range }, `Last ${r.title.toLowerCase()}`)),
    );
    const cards = el("div", { class: "cards" });
    fill(this.root, 
      el("h2", {}, "Dashboards"),
      el("div", { class: "controls" }, domainTabs, el("label", {}, "Area ", areaSelect), el("label", {}, "Period ", rangeSelect)),
      cards,
    );
    const domain = this.domains.find((d) => d.name === this.state.domain);
    const params = {
      area: this.state.area,
      interval: intervalFor(this.state.range),
      bucket: BUCKETS[this.state.range.key],
    };
    for (const kpi of domain.kpis ?? []) {
      const meta = { ...kpi, domain: domain.name };
      const slot = el("article", { class: "kpi loading" }, el("h3", {}, kpi.title ?? kpi.key), el("p", { class: "muted" }, "Loading…"));
      cards.append(slot);
      fetchKpi(domain.name, kpi.key, params).then((result) => slot.replaceWith(kpiCard(meta, result)));
    }
  }
}
