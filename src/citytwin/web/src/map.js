// The city map: the city's own GeoJSON layers, Things by category, legend and toggles.
import * as maplibregl from "maplibre-gl";
import { config, getJson, optionalApi } from "./api.js";
import { el, numberText, unitText, valueText, fill } from "./format.js";
import { CATEGORIES } from "./twin.js";

maplibregl.setWorkerUrl(new URL("/ui/maplibre-gl-worker.mjs", location.href).href);

const OFFLINE_STYLE = {
  version: 8,
  sources: {},
  layers: [{ id: "background", type: "background", paint: { "background-color": "#eef1f4" } }],
};

const IN_VIEW_MAX = 50; // sensors listed for keyboard users, nearest the map's centre first

const CITY_LAYER_COLOURS = {
  districts: "#7986cb",
  neighbourhoods: "#9fa8da",
  streets: "#b0b7bf",
  buildings: "#a1887f",
};

export class CityMap {
  constructor(container, twin, { onThing, onArea }) {
    this.twin = twin;
    this.onThing = onThing;
    this.onArea = onArea;
    this.cityLayers = []; // [{name, title, layerIds}]
    this.map = new maplibregl.Map({
      container,
      style: config.basemapStyle || OFFLINE_STYLE,
      center: [8.06, 51.4],
      zoom: 12,
      attributionControl: config.basemapStyle ? undefined : false,
      fadeDuration: 0, // no label fade-in to wait for: the Things show at once
    });
    this.map.addControl(new maplibregl.NavigationControl(), "top-right");
    this.map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");
    // Ready once the layers exist and the worker has taken their first (one-point) data:
    // new data given while that is still on its way makes the worker lay out every tile
    // twice (the late answer starts the tiles, the new data's answer restarts them).
    this.ready = new Promise((resolve) =>
      this.map.on("load", () => {
        window.citytwin.timings.mapLoaded = performance.now();
        const waiting = new Set(["things", "vehicles"]);
        const taken = (e) => {
          if (e.sourceDataType !== "content" || !waiting.delete(e.sourceId) || waiting.size) return;
          this.map.off("sourcedata", taken);
          resolve();
        };
        this.map.on("sourcedata", taken);
        this.#addThingLayers();
      }),
    );
    this.pending = new Set(); // sources to redraw in the next frame
  }

  async showCityLayers() {
    const list = await optionalApi("layers", "/api/v1/layers");
    for (const layer of list?.value ?? []) {
      const data = await getJson(layer.url ?? `/api/v1/layers/${layer.name}`).catch(() => null);
      if (data?.type !== "FeatureCollection") continue;
      this.#addCityLayer(layer.name, layer.title ?? layer.name, data);
    }
  }

  #addCityLayer(name, title, data) {
    const source = `city-${name}`;
    const colour = CITY_LAYER_COLOURS[name] ?? "#90a4ae";
    const before = this.map.getLayer("things") ? "things" : undefined;
    this.map.addSource(source, { type: "geojson", data });
    const ids = [];
    const poly = ["match", ["geometry-type"], ["Polygon", "MultiPolygon"], true, false];
    const line = ["match", ["geometry-type"], ["LineString", "MultiLineString"], true, false];
    const fillColour =
      name === "buildings"
        ? ["match", ["get", "use"], "commercial", "#ffb74d", "residential", "#bcaaa4", colour]
        : colour;
    this.map.addLayer(
      { id: `${source}-fill`, type: "fill", source, filter: poly, paint: { "fill-color": fillColour, "fill-opacity": name === "buildings" ? 0.7 : 0.12 } },
      before,
    );
    this.map.addLayer(
      { id: `${source}-line`, type: "line", source, paint: { "line-color": colour, "line-width": name === "streets" ? 2 : 1 } },
      before,
    );
    ids.push(`${source}-fill`, `${source}-line`);
    this.cityLayers.push({ name, title, layerIds: ids, count: data.features.length });
    if (name === "districts" || name === "neighbourhoods") {
      this.map.on("click", `${source}-fill`, (e) => {
        if (this.map.queryRenderedFeatures(e.point, { layers: this.#thingLayerIds() }).length) return;
        const f = e.features?.[0];
        if (f?.properties?.name) this.onArea(name === "districts" ? "district" : "neighbourhood", f.properties.name);
      });
    }
  }

  #thingLayerIds() {
    return ["things", "vehicles"].filter((id) => this.map.getLayer(id));
  }

  // One circle layer draws every category but the fleet: with a layer per category,
  // MapLibre's worker laid out each of 10,000 points once per layer, which doubled the
  // first render. Toggles change the layer's filter. The layers exist from the start,
  // holding one invisible point, so that the workers load and warm up their code and
  // the GPU compiles its shaders while the Things are still on their way (the first
  // layout of 10,000 points took twice as long in a cold worker as in a warm one).
  // Points need no tiles beyond zoom 12 (they are drawn scaled up): fewer tiles to cut.
  #addThingLayers() {
    const warmup = {
      type: "FeatureCollection",
      features: [
        {
          type: "Feature",
          id: 0,
          geometry: { type: "Point", coordinates: this.map.getCenter().toArray() },
          properties: { category: "warmup", colour: "rgba(0,0,0,0)" },
        },
      ],
    };
    this.map.addSource("things", { type: "geojson", data: warmup, maxzoom: 12 });
    this.map.addSource("vehicles", { type: "geojson", data: warmup });
    const stroke = ["match", ["get", "category"], "warmup", "rgba(0,0,0,0)"];
    for (const c of CATEGORIES) stroke.push(c.key, c.stroke);
    stroke.push("#616161");
    this.hidden = new Set();
    for (const [id, source, small, big, width] of [
      ["things", "things", 2.5, 7, 1],
      ["vehicles", "vehicles", 4, 9, 2],
    ]) {
      this.map.addLayer({
        id,
        type: "circle",
        source,
        paint: {
          "circle-color": ["coalesce", ["feature-state", "colour"], ["get", "colour"]],
          "circle-radius": ["interpolate", ["linear"], ["zoom"], 10, small, 16, big],
          "circle-stroke-color": stroke,
          "circle-stroke-width": width,
        },
      });
      this.map.on("click", id, (e) => {
        const fid = e.features?.[0]?.id;
        if (fid) this.onThing(Number(fid));
      });
      this.map.on("mouseenter", id, () => (this.map.getCanvas().style.cursor = "pointer"));
      this.map.on("mouseleave", id, () => (this.map.getCanvas().style.cursor = ""));
    }
  }

  showThings() {
    const twin = this.twin;
    this.#fit();
    this.map.getSource("things").setData(twin.features((t) => t.category !== "vehicles"));
    this.map.getSource("vehicles").setData(twin.features((t) => t.category === "vehicles"));
    twin.listeners.add((event) => {
      if (event.thing.category === "vehicles") this.#schedule("vehicles");
      else if (event.type === "observation") {
        this.map.setFeatureState({ source: "things", id: event.thing.id }, { colour: event.thing.colour });
        if (this.inView?.querySelector(`[data-thing="${event.thing.id}"]`)) this.#queueList();
      } else this.#schedule("things"); // a Thing added, moved or changed
    });
  }

  setCategoryVisible(key, visible) {
    if (key === "vehicles") {
      this.setVisible(["vehicles"], visible);
      this.#listInView();
      return;
    }
    if (visible) this.hidden.delete(key);
    else this.hidden.add(key);
    this.map.setFilter(
      "things",
      this.hidden.size ? ["!", ["in", ["get", "category"], ["literal", [...this.hidden]]]] : null,
    );
    this.#listInView();
  }

  // Moving vehicles (and Things added later) redraw their source at most once per frame.
  #schedule(source) {
    if (this.pending.has(source)) return;
    this.pending.add(source);
    requestAnimationFrame(() => {
      this.pending.delete(source);
      const vehicles = source === "vehicles";
      this.map.getSource(source)?.setData(this.twin.features((t) => (t.category === "vehicles") === vehicles));
    });
  }

  #fit() {
    let w = 180, s = 90, e = -180, n = -90;
    for (const t of this.twin.things.values()) {
      const c = t.geometry?.type === "Point" ? t.geometry.coordinates : null;
      if (!c) continue;
      w = Math.min(w, c[0]); e = Math.max(e, c[0]);
      s = Math.min(s, c[1]); n = Math.max(n, c[1]);
    }
    // keep the points clear of the layers panel on the left where there is room for it
    const wide = this.map.getContainer().clientWidth > 900;
    const padding = wide ? { top: 40, bottom: 40, left: 300, right: 70 } : 40;
    if (w <= e) this.map.fitBounds([[w, s], [e, n]], { padding, maxZoom: 15, duration: 0 });
  }

  // The sensors in view as a list a keyboard reaches: one Tab stop, arrow keys move
  // through it, Enter opens a sensor's panel. It follows the map once listing started
  // (after the first picture, which it would only slow down).
  startListing() {
    if (this.listing) return;
    this.listing = true;
    this.map.on("moveend", () => this.#queueList());
    this.#listInView();
  }

  // at most once a second: a listed sensor's new value, or the map moved
  #queueList() {
    if (this.listQueued || !this.listing) return;
    this.listQueued = true;
    setTimeout(() => {
      this.listQueued = false;
      this.#listInView();
    }, 1000);
  }

  #listInView() {
    const list = this.inView;
    if (!list || !this.listing) return;
    const bounds = this.map.getBounds();
    const centre = this.map.getCenter();
    const vehiclesShown = this.map.getLayoutProperty("vehicles", "visibility") !== "none";
    const found = [];
    for (const t of this.twin.things.values()) {
      const c = t.geometry?.type === "Point" ? t.geometry.coordinates : null;
      if (!c || !bounds.contains(c)) continue;
      if (t.category === "vehicles" ? !vehiclesShown : this.hidden.has(t.category)) continue;
      found.push([(c[0] - centre.lng) ** 2 + (c[1] - centre.lat) ** 2, t]);
    }
    found.sort((a, b) => a[0] - b[0]);
    const shown = found.slice(0, IN_VIEW_MAX).map(([, t]) => t);
    const focused = list.contains(document.activeElement) ? Number(document.activeElement.dataset.thing) : null;
    fill(
      list,
      shown.map((t, i) => {
        const ds = this.twin.primary(t);
        const current = focused === t.id || (focused === null && i === 0);
        return el(
          "li",
          {},
          el(
            "button",
            { type: "button", class: "link", tabindex: current ? "0" : "-1", "data-thing": t.id, onclick: () => this.onThing(t.id, { focus: true }) },
            t.name,
            ds ? el("span", { class: "muted" }, ` ${valueText(ds.result, ds.unit)}`) : null,
          ),
        );
      }),
    );
    if (focused !== null) list.querySelector(`[data-thing="${focused}"]`)?.focus();
    this.inViewNote.textContent = found.length > shown.length
      ? `${shown.length} of ${found.length.toLocaleString()} in view, nearest the centre first; zoom in to list the others.`
      : found.length ? `${found.length.toLocaleString()} in view.` : "None in view.";
  }

  #moveInList(e) {
    const buttons = [...this.inView.querySelectorAll("button")];
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    const next = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: buttons.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    const target = buttons[Math.max(0, Math.min(buttons.length - 1, next))];
    buttons[i].tabIndex = -1;
    target.tabIndex = 0;
    target.focus();
  }

  flyTo(thing) {
    if (thing.geometry?.type === "Point") this.map.flyTo({ center: thing.geometry.coordinates, zoom: 16 });
  }

  setVisible(layerIds, visible) {
    for (const id of layerIds) this.map.setLayoutProperty(id, "visibility", visible ? "visible" : "none");
  }

  // Layer toggles, legend and a search for keyboard users.
  renderPanel(panel) {
    const counts = {};
    for (const t of this.twin.things.values()) counts[t.category] = (counts[t.category] ?? 0) + 1;
    const toggle = (title, show, swatch, count, checked = true) =>
      el(
        "label",
        { class: "toggle" },
        el("input", { type: "checkbox", checked, onchange: (e) => show(e.target.checked) }),
        el("span", { class: "swatch", style: swatch }),
        `${title}`,
        count != null ? el("span", { class: "count" }, ` ${count.toLocaleString()}`) : null,
      );
    const search = el("input", { type: "search", placeholder: "Find a sensor or vehicle", "aria-label": "Find a sensor or vehicle by name" });
    const results = el("ul", { class: "results" });
    search.addEventListener("input", () => {
      const q = search.value.trim().toLowerCase();
      fill(results);
      if (!q) return;
      let n = 0;
      for (const t of this.twin.things.values()) {
        if (!t.name.toLowerCase().includes(q)) continue;
        results.append(el("li", {}, el("button", { type: "button", onclick: () => { this.flyTo(t); this.onThing(t.id, { focus: true }); } }, t.name)));
        if (++n >= 8) break;
      }
    });
    const legend = this.twin.scales.legend(unitText, numberText).map((entry) =>
      el(
        "div",
        { class: "legend-entry" },
        el("div", { class: "legend-title" }, entry.title),
        el("div", { class: "stops" }, entry.stops.map((s) => el("span", { class: "stop" }, el("span", { class: "swatch", style: `background:${s.colour}` }), s.label))),
      ),
    );
    fill(panel, 
      el("h2", {}, "Layers"),
      el(
        "fieldset",
        {},
        el("legend", {}, "City"),
        this.cityLayers.length
          ? this.cityLayers.map((l) => toggle(l.title, (v) => this.setVisible(l.layerIds, v), `background:${CITY_LAYER_COLOURS[l.name] ?? "#90a4ae"}`, l.count, this.map.getLayoutProperty(l.layerIds[0], "visibility") !== "none"))
          : el("p", { class: "muted" }, "No city layers on this server yet."),
      ),
      el(
        "fieldset",
        {},
        el("legend", {}, "Things"),
        CATEGORIES.filter((c) => counts[c.key]).map((c) => toggle(c.title, (v) => this.setCategoryVisible(c.key, v), `border:2px solid ${c.stroke}`, counts[c.key], !this.hidden.has(c.key) && (c.key !== "vehicles" || this.map.getLayoutProperty("vehicles", "visibility") !== "none"))),
      ),
      search,
      results,
      el("h2", { id: "in-view-title" }, "Sensors in view"),
      (this.inView = el("ul", { class: "in-view", "aria-labelledby": "in-view-title", onkeydown: (e) => this.#moveInList(e) })),
      (this.inViewNote = el("p", { class: "muted small", "aria-live": "polite" })),
      el("h2", {}, "Legend"),
      legend.length ? legend : el("p", { class: "muted" }, "No values yet."),
      el("p", { class: "muted" }, "Grey: no value yet. Colours follow each sensor's latest value."),
    );
    this.#listInView();
  }
}
