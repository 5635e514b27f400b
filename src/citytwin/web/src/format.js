// Units, numbers and times as people read them.

const UNIT_TEXT = {
  "ug/m3": "µg/m³",
  "mg/l": "mg/l",
  Cel: "°C",
  "m3/h": "m³/h",
  m3: "m³",
  "kW.h": "kWh",
  "MW.h": "MWh",
  "km/h": "km/h",
  "1": "",
  "%": "%",
};

export function unitText(unit) {
  if (unit == null) return "";
  const symbol = typeof unit === "string" ? unit : unit.symbol ?? unit.name ?? "";
  return UNIT_TEXT[symbol] ?? symbol;
}

export function numberText(value) {
  if (value == null || value === "") return "–";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value !== "number") return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString(undefined, { maximumFractionDigits: digits });
}

export function valueText(value, unit) {
  const u = unitText(unit);
  return u && value != null && typeof value === "number" ? `${numberText(value)} ${u}` : numberText(value);
}

export const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "short", timeStyle: "medium" });

// An ISO 8601 instant or interval in the viewer's zone.
export function timeText(iso) {
  if (!iso) return "–";
  return String(iso)
    .split("/")
    .map((t) => {
      const d = new Date(t);
      return Number.isNaN(d.getTime()) ? t : dateTime.format(d);
    })
    .join(" – ");
}

export function zoneText() {
  const offset = -new Date().getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const hh = String(Math.floor(Math.abs(offset) / 60)).padStart(2, "0");
  const mm = String(Math.abs(offset) % 60).padStart(2, "0");
  return `${timeZone} (UTC${sign}${hh}:${mm})`;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c != null && c !== false) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

// Replace a node's children; arrays are flattened and null/false left out, as in el().
export function fill(node, ...children) {
  node.replaceChildren();
  for (const c of children.flat(Infinity)) {
    if (c != null && c !== false) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

export function table(columns, rows, caption) {
  return el(
    "table",
    {},
    caption ? el("caption", {}, caption) : null,
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c.title)))),
    el(
      "tbody",
      {},
      rows.map((r) => el("tr", {}, columns.map((c) => el("td", {}, c.cell(r))))),
    ),
  );
}
