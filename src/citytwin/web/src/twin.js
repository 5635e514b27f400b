// The city's Things as the map shows them: where they are, what they measure, and
// their latest values, kept current from MQTT.
import { config, getJson, staUrl } from "./api.js";
import { SENSORS_QUERY } from "./queries.js";
import { Scales, scaleKey } from "./scales.js";

export const CATEGORIES = [
  { key: "vehicles", title: "Ride-pooling fleet", stroke: "#111111" },
  { key: "charging", title: "Charging points", stroke: "#6a1b9a" },
  { key: "parking", title: "Parking", stroke: "#1565c0" },
  { key: "air", title: "Air quality stations", stroke: "#2e7d32" },
  { key: "energy", title: "Energy", stroke: "#f9a825" },
  { key: "water", title: "Water structures", stroke: "#00838f" },
  { key: "mobility", title: "Traffic and mobility", stroke: "#5d4037" },
  { key: "other", title: "Other sensors", stroke: "#616161" },
];

export function categoryOf(props) {
  const kind = String(props?.kind ?? "").toLowerCase();
  const domain = String(props?.domain ?? "").toLowerCase();
  if (kind === "vehicle") return "vehicles";
  if (/charg|wallbox|evse/.test(kind)) return "charging";
  if (/park/.test(kind)) return "parking";
  if (domain === "environment") return "air";
  if (domain === "energy") return "energy";
  if (domain === "water") return "water";
  if (domain === "mobility") return "mobility";
  return "other";
}

export class Twin {
  constructor() {
    this.things = new Map(); // id -> thing
    this.datastreams = new Map(); // id -> datastream (with .thing)
    this.scales = new Scales();
    this.listeners = new Set();
  }

  // The first picture comes from the server's compact feed (/api/v1/sensors) where it
  // has one, else from one SensorThings request; index.html preloads whichever the
  // server named, so the answer is on its way before this script has been parsed.
  async load() {
    const preload = document.querySelector("link[data-things]");
    const url = preload ? preload.href : staUrl(SENSORS_QUERY);
    const doc = await getJson(url);
    window.citytwin.timings.sensorsFetched = performance.now();
    if (doc?.things && doc?.datastreams) this.#fromFeed(doc);
    else this.#fromGeoJson(doc);
    for (const t of this.things.values()) t.colour = this.colourOf(t);
  }

  #fromFeed(doc) {
    const t = doc.things;
    const geometries = doc.geometries ?? {};
    for (let i = 0; i < t.id.length; i++) {
      const id = t.id[i];
      const geometry = t.lon[i] == null ? geometries[id] ?? null : { type: "Point", coordinates: [t.lon[i], t.lat[i]] };
      if (geometry) this.#thing(id, t.name[i], { kind: t.kind[i], domain: t.domain[i] }, geometry);
    }
    const d = doc.datastreams;
    const ops = doc.observedProperties ?? [];
    const units = doc.units ?? [];
    for (let i = 0; i < d.id.length; i++) {
      const thing = this.things.get(d.thing[i]);
      if (thing) this.#datastream(thing, d.id[i], ops[d.property[i]] ?? null, units[d.unit[i]] ?? null, d.result[i], d.time[i]);
    }
  }

  #fromGeoJson(collection) {
    for (const f of collection?.features ?? []) {
      if (!f.geometry) continue;
      for (const t of f.properties?.Things ?? []) {
        if (this.things.has(t["@iot.id"])) continue;
        const thing = this.#thing(t["@iot.id"], t.name, t.properties, f.geometry);
        for (const d of t.Datastreams ?? []) {
          const latest = d.Observations?.[0];
          this.#datastream(thing, d["@iot.id"], d.ObservedProperty ?? null, d.unitOfMeasurement?.symbol ?? null, latest?.result ?? null, latest?.phenomenonTime ?? null);
        }
      }
    }
  }

  #thing(id, name, properties, geometry) {
    const thing = {
      id,
      name,
      properties: properties ?? {},
      category: categoryOf(properties),
      geometry,
      datastreams: [],
    };
    this.things.set(id, thing);
    return thing;
  }

  #datastream(thing, id, op, unit, result, time) {
    const ds = { id, name: op?.name ?? `Datastream ${id}`, unit, op, result, time, thing };
    ds.key = scaleKey(ds.op, ds.unit);
    this.scales.observe(ds.key, ds.result, ds.op?.name ?? ds.name, ds.unit);
    thing.datastreams.push(ds);
    this.datastreams.set(ds.id, ds);
    return ds;
  }

  // A Thing as the SensorThings API gives it (see growth.js), added or brought up to
  // date; a new Thing without a Location has no place on the map and is left out.
  upsert(t) {
    const id = t["@iot.id"];
    const loc = t.Locations?.[0]?.location;
    const geometry = (loc?.type === "Feature" ? loc.geometry : loc) ?? null;
    let thing = this.things.get(id);
    const isNew = !thing;
    if (isNew) {
      if (!geometry?.type) return { thing: null, isNew: false, datastreams: [] };
      thing = this.#thing(id, t.name, t.properties, geometry);
    } else {
      thing.name = t.name ?? thing.name;
      thing.properties = t.properties ?? {};
      if (thing.category !== "vehicles") thing.category = categoryOf(thing.properties);
      if (geometry?.type) thing.geometry = geometry;
    }
    const fresh = [];
    for (const d of t.Datastreams ?? []) {
      if (this.datastreams.has(d["@iot.id"])) continue;
      const latest = d.Observations?.[0];
      fresh.push(this.#datastream(thing, d["@iot.id"], d.ObservedProperty ?? null, d.unitOfMeasurement?.symbol ?? null, latest?.result ?? null, latest?.phenomenonTime ?? null));
    }
    thing.colour = this.colourOf(thing);
    for (const l of this.listeners) l({ type: isNew ? "added" : "changed", thing });
    return { thing, isNew, datastreams: fresh };
  }

  primary(thing) {
    return thing.datastreams.find((d) => typeof d.result === "number") ?? thing.datastreams[0];
  }

  colourOf(thing) {
    const ds = this.primary(thing);
    return ds ? this.scales.colour(ds.key, ds.result) : undefined;
  }

  features(filter) {
    const out = [];
    for (const t of this.things.values()) {
      if (!filter(t)) continue;
      out.push({
        type: "Feature",
        id: t.id,
        geometry: t.geometry,
        properties: { category: t.category, colour: t.colour ?? "#9e9e9e" },
      });
    }
    return { type: "FeatureCollection", features: out };
  }

  // MQTT topics that announce new Observations of the loaded Datastreams (or of those
  // given: Datastreams that came later, see growth.js).
  observationTopics(datastreams = null) {
    if (config.mqtt.expandTopics) {
      return datastreams ? [] : ["v1.1/Observations?$select=result,phenomenonTime&$expand=Datastream($select=id)"];
    }
    // plain paths: the broker parses a topic with $select about 15 times slower, which
    // for 10,000 Datastreams was 1.5 s of server CPU per page opened
    const ids = datastreams ? datastreams.map((d) => d.id) : [...this.datastreams.keys()];
    return ids.map((id) => `v1.1/Datastreams(${id})/Observations`);
  }

  onObservation(obs, topic) {
    const id = obs.Datastream?.["@iot.id"] ?? Number(/Datastreams\((\d+)\)/.exec(topic)?.[1]);
    const ds = this.datastreams.get(id);
    if (!ds) return;
    if (ds.time && obs.phenomenonTime && Date.parse(obs.phenomenonTime.split("/")[0]) < Date.parse(ds.time.split("/")[0])) {
      return; // a late Observation does not replace a newer latest value
    }
    ds.result = obs.result;
    ds.time = obs.phenomenonTime;
    this.scales.observe(ds.key, ds.result, ds.op?.name ?? ds.name, ds.unit);
    ds.thing.colour = this.colourOf(ds.thing);
    for (const l of this.listeners) l({ type: "observation", datastream: ds, thing: ds.thing });
  }

  vehicleTopics(things = null) {
    return [...(things ?? this.things.values())]
      .filter((t) => t.category === "vehicles")
      .map((t) => `v1.1/Things(${t.id})/Locations`);
  }

  onLocation(loc, topic) {
    const id = Number(/Things\((\d+)\)/.exec(topic)?.[1]);
    const thing = this.things.get(id);
    const geometry = loc.location?.type === "Feature" ? loc.location.geometry : loc.location;
    if (!thing || !geometry?.type) return;
    thing.geometry = geometry;
    for (const l of this.listeners) l({ type: "moved", thing });
  }
}
