// Things, Datastreams and Locations created (or changed) after the page loaded join the
// map without a reload. The broker announces each on v1.1/Things, v1.1/Datastreams and
// v1.1/Locations; the page collects what it hears for a moment, then reads the Things
// concerned in a few SensorThings requests and adds or updates them in the twin.
import { staAll } from "./api.js";

const TOPICS = { things: "v1.1/Things", datastreams: "v1.1/Datastreams", locations: "v1.1/Locations" };
const WAIT_MS = 400; // what arrives together (a deep insert: Thing, Location, Datastreams) is read once
const IDS_PER_REQUEST = 40;

export const THING_FIELDS =
  "$select=id,name,properties&$expand=Locations($select=location)," +
  "Datastreams($select=id,unitOfMeasurement;$expand=ObservedProperty($select=name,definition)," +
  "Observations($top=1;$orderby=phenomenonTime desc;$select=result,phenomenonTime))";

function anyId(ids) {
  return `$filter=${encodeURIComponent(ids.map((id) => `id eq ${Number(id)}`).join(" or "))}`;
}

function chunks(ids) {
  const out = [];
  for (let i = 0; i < ids.length; i += IDS_PER_REQUEST) out.push(ids.slice(i, i + IDS_PER_REQUEST));
  return out;
}

export class Growth {
  // onChange({added, datastreams}) runs after each batch with the new Things and the
  // new Datastreams (which need their own live topics).
  constructor(twin, live, onChange) {
    this.twin = twin;
    this.live = live;
    this.onChange = onChange;
    this.pending = { things: new Set(), datastreams: new Set(), locations: new Set() };
    this.timer = null;
  }

  start() {
    for (const [kind, topic] of Object.entries(TOPICS)) {
      this.live.subscribe([topic], (entity) => this.#heard(kind, entity?.["@iot.id"]));
    }
  }

  #heard(kind, id) {
    if (!Number.isInteger(id)) return;
    this.pending[kind].add(id);
    this.timer ??= setTimeout(() => {
      this.timer = null;
      this.#read().catch((err) => console.warn("new Things not read:", err.message));
    }, WAIT_MS);
  }

  async #read() {
    const { things, datastreams, locations } = this.pending;
    this.pending = { things: new Set(), datastreams: new Set(), locations: new Set() };
    const ids = new Set(things);
    for (const chunk of chunks([...datastreams].filter((id) => !this.twin.datastreams.has(id)))) {
      for (const d of await staAll(`Datastreams?${anyId(chunk)}&$select=id&$expand=Thing($select=id)`)) {
        if (d.Thing) ids.add(d.Thing["@iot.id"]);
      }
    }
    for (const chunk of chunks([...locations])) {
      for (const l of await staAll(`Locations?${anyId(chunk)}&$select=id&$expand=Things($select=id)`)) {
        for (const t of l.Things ?? []) {
          // a vehicle's moves come on its own topic (see twin.vehicleTopics)
          if (this.twin.things.get(t["@iot.id"])?.category !== "vehicles") ids.add(t["@iot.id"]);
        }
      }
    }
    if (!ids.size) return;
    const added = [];
    const fresh = [];
    for (const chunk of chunks([...ids])) {
      for (const t of await staAll(`Things?${anyId(chunk)}&${THING_FIELDS}`)) {
        const { thing, isNew, datastreams: newStreams } = this.twin.upsert(t);
        if (isNew) added.push(thing);
        fresh.push(...newStreams);
      }
    }
    this.onChange({ added, datastreams: fresh });
  }
}
