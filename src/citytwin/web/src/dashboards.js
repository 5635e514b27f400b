// Domain dashboards, built from whatever GET /api/v1/domains declares.
import { optionalApi } from "./api.js";
import { el, fill } from "./format.js";
import { fetchKpi, kpiCard } from "./kpi.js";
import { RANGES, intervalFor } from "./ranges.js";

const BUCKETS = { hour: "PT15M", day: "PT15M", week: "PT1H", month: "P1D" };
// New values of the shown domain (heard over MQTT by the twin) refresh its KPIs: after a
// second, to gather what arrives together, and then at most once per REFRESH_MS.
const GATHER_MS = 1000;
const REFRESH_MS = 5000;

export class Dashboards {
  constructor(root, twin = null) {
    this.root = root;
    this.domains = null;
    this.areas = [];
    this.state = { domain: null, area: "city", range: RANGES[1] };
    this.cards = null; // the shown cards' container
    this.timer = null;
    this.refreshed = 0;
    twin?.listeners.add((event) => this.#heard(event));
  }

  #heard(event) {
    if (event.type !== "observation" || !this.cards || this.timer) return;
    if (event.thing.properties?.domain !== this.state.domain) return;
    if (this.root.hidden) {
      this.cards = null; // shown again, it reads everything afresh
      return;
    }
    const wait = Math.max(GATHER_MS, this.refreshed + REFRESH_MS - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.#loadCards(true);
    }, wait);
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
    this.cards = el("div", { class: "cards" });
    fill(this.root, 
      el("h2", {}, "Dashboards"),
      el("div", { class: "controls" }, domainTabs, el("label", {}, "Area ", areaSelect), el("label", {}, "Period ", rangeSelect)),
      this.cards,
    );
    this.#loadCards(false);
  }

  // Each KPI of the chosen domain, area and period; a refresh replaces the cards in place
  // once their new values are there, so that nothing flickers.
  #loadCards(refresh) {
    const cards = this.cards;
    if (!cards) return;
    this.refreshed = Date.now();
    const domain = this.domains.find((d) => d.name === this.state.domain);
    const params = {
      area: this.state.area,
      interval: intervalFor(this.state.range),
      bucket: BUCKETS[this.state.range.key],
    };
    for (const kpi of domain.kpis ?? []) {
      const meta = { ...kpi, domain: domain.name };
      let slot = refresh ? cards.querySelector(`[data-kpi="${CSS.escape(`${domain.name}/${kpi.key}`)}"]`) : null;
      if (!slot) {
        slot = el("article", { class: "kpi loading", "data-kpi": `${domain.name}/${kpi.key}` }, el("h3", {}, kpi.title ?? kpi.key), el("p", { class: "muted" }, "Loading…"));
        cards.append(slot);
      }
      fetchKpi(domain.name, kpi.key, params).then((result) => {
        if (this.cards === cards) slot.replaceWith(kpiCard(meta, result));
      });
    }
  }
}
