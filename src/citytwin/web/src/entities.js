// The entity browser: SensorThings entities and their links, each view with its URL.
import { config, getJson, staUrl } from "./api.js";
import { el, numberText, timeText, fill } from "./format.js";

const SETS = ["Things", "Locations", "Datastreams", "MultiDatastreams", "Sensors", "ObservedProperties", "Observations", "FeaturesOfInterest", "HistoricalLocations", "TaskingCapabilities", "Tasks", "Actuators"];

function relative(url) {
  const root = `${location.origin}${config.sta}/`;
  return url.startsWith(root) ? url.slice(root.length) : url;
}

function copyButton(text) {
  return el(
    "button",
    {
      type: "button",
      class: "copy",
      onclick: async (e) => {
        const button = e.currentTarget;
        try {
          await navigator.clipboard.writeText(text);
          button.textContent = "Copied";
        } catch {
          const sel = window.getSelection();
          const range = document.createRange();
          range.selectNodeContents(button.previousElementSibling);
          sel.removeAllRanges();
          sel.addRange(range);
          button.textContent = "Selected: press Ctrl+C";
        }
        setTimeout(() => (button.textContent = "Copy URL"), 2000);
      },
    },
    "Copy URL",
  );
}

function cellText(key, value) {
  if (value == null) return "–";
  if (/Time$/.test(key) && typeof value === "string") return timeText(value);
  if (typeof value === "object") return JSON.stringify(value);
  return typeof value === "number" ? numberText(value) : String(value);
}

function navLinks(entity) {
  return Object.entries(entity)
    .filter(([k]) => k.endsWith("@iot.navigationLink"))
    .map(([k, v]) => el("a", { href: `#entities/${relative(v)}`, class: "nav" }, k.split("@")[0]));
}

export class Entities {
  constructor(root) {
    this.root = root;
  }

  async show(path) {
    path = path || "Things";
    const url = staUrl(path);
    const head = el(
      "div",
      {},
      el("h2", {}, "Entities"),
      el("nav", { class: "sets", "aria-label": "Entity sets" }, SETS.map((s) => el("a", { href: `#entities/${s}` }, s))),
      el("p", { class: "url-line" }, el("code", { class: "sta-url" }, url), " ", copyButton(url)),
    );
    fill(this.root, head, el("p", { class: "muted" }, "Loading…"));
    let body;
    try {
      body = await getJson(url);
    } catch (err) {
      fill(this.root, head, el("p", { class: "error" }, err.message));
      return;
    }
    if (!body) {
      fill(this.root, head, el("p", { class: "muted" }, "Not found."));
      return;
    }
    const content = Array.isArray(body.value) ? this.#collection(body) : this.#entity(body);
    fill(this.root, head, content);
  }

  #collection(body) {
    const rows = body.value;
    if (!rows.length) return el("p", { class: "muted" }, "No entities.");
    const skip = new Set(["@iot.selfLink", "@iot.id"]);
    const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter(
      (k) => !skip.has(k) && !k.includes("@iot.") && !["properties", "location", "feature", "taskingParameters", "parameters"].includes(k),
    ).slice(0, 6);
    const next = body["@iot.nextLink"];
    return el(
      "div",
      { class: "scroll" },
      el(
        "table",
        { class: "entities" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "id"), keys.map((k) => el("th", { scope: "col" }, k)), el("th", { scope: "col" }, "links"))),
        el(
          "tbody",
          {},
          rows.map((r) =>
            el(
              "tr",
              {},
              el("td", {}, el("a", { href: `#entities/${relative(r["@iot.selfLink"] ?? "")}` }, String(r["@iot.id"]))),
              keys.map((k) => el("td", {}, cellText(k, r[k]))),
              el("td", { class: "links" }, navLinks(r)),
            ),
          ),
        ),
      ),
      next ? el("p", {}, el("a", { href: `#entities/${relative(next)}`, class: "next" }, "Next page")) : null,
    );
  }

  #entity(body) {
    const props = Object.entries(body).filter(([k]) => !k.includes("@iot."));
    return el(
      "div",
      {},
      el("h3", {}, `${body.name ?? ""} (id ${body["@iot.id"]})`),
      el("dl", { class: "props" }, props.map(([k, v]) => [el("dt", {}, k), el("dd", {}, typeof v === "object" && v !== null ? el("pre", {}, JSON.stringify(v, null, 2)) : cellText(k, v))])),
      el("p", { class: "links" }, "Related: ", navLinks(body)),
    );
  }
}
