// Small helpers around fetch for the SensorThings API and the /api/v1 JSON API.

export let config = { sta: "/v1.1", mqtt: { url: null, expandTopics: false }, basemapStyle: null, apis: {} };

// GET of an /api/v1 resource the server may not offer yet: null when it does not.
export function optionalApi(name, url) {
  return config.apis?.[name] ? getJson(url).catch(() => null) : Promise.resolve(null);
}

// The configuration the server wrote into the page, else asked for.
export async function loadConfig() {
  const inline = document.getElementById("ui-config");
  const got = inline ? JSON.parse(inline.textContent) : await getJson("/api/v1/ui-config");
  if (got) config = got;
  return config;
}

export function staUrl(path) {
  return path.startsWith("http") ? path : `${location.origin}${config.sta}/${path}`;
}

// JSON of a GET, or null when the server answers 404 (an API that is not there yet,
// an entity that is gone). Other failures throw with the server's message.
export async function getJson(url, init) {
  const resp = await fetch(url, { headers: { accept: "application/json" }, ...init });
  if (resp.status === 404) return null;
  const body = resp.headers.get("content-type")?.includes("json") ? await resp.json() : null;
  if (!resp.ok) {
    const message = body?.message ?? body?.error?.message ?? resp.statusText;
    throw new Error(`${resp.status}: ${message}`);
  }
  return body;
}

export function sta(path) {
  return getJson(staUrl(path));
}

export async function postJson(url, body) {
  const resp = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(body),
  });
  const text = await resp.text();
  const data = text ? JSON.parse(text) : null;
  if (!resp.ok) throw new Error(`${resp.status}: ${data?.message ?? resp.statusText}`);
  return { data, location: resp.headers.get("location") };
}

// All pages of a collection, following @iot.nextLink.
export async function staAll(path, limit = 10000) {
  let url = staUrl(path);
  const out = [];
  while (url && out.length < limit) {
    const page = await getJson(url);
    if (!page) break;
    out.push(...page.value);
    url = page["@iot.nextLink"];
  }
  return out;
}
