// The digital twin in the browser: map, details, dashboards, control and entity browser.
import "maplibre-gl/dist/maplibre-gl.css";
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { config, loadConfig } from "./api.js";
import { Control } from "./control.js";
import { Dashboards } from "./dashboards.js";
import { Detail } from "./detail.js";
import { Entities } from "./entities.js";
import { zoneText } from "./format.js";
import { Growth } from "./growth.js";
import { Live } from "./live.js";
import { loadSession, mqttCredentials, renderSession } from "./session.js";
import { CityMap } from "./map.js";
import { Twin } from "./twin.js";

// Measured by the browser tests and shown in docs/performance.md.
const timings = (window.citytwin = { timings: {} }).timings;

function setStatus(state, text) {
  const node = document.getElementById("live-status");
  node.textContent = text;
  node.className = `live ${state}`;
}

async function start() {
  document.getElementById("zone").textContent = `Times in ${zoneText()}`;
  // the Things are fetched while the configuration and the map load
  const twin = new Twin();
  const loaded = twin.load();
  const session = loadSession().then((s) => {
    renderSession(document.getElementById("session"), s);
    return s;
  });
  await loadConfig();
  timings.config = performance.now();
  const live = new Live(config.mqtt?.url, setStatus);
  const detail = new Detail(document.getElementById("detail"), twin);
  const cityMap = new CityMap(document.getElementById("map"), twin, {
    onThing: (id, options) => detail.showThing(id, options),
    onArea: (level, name) => detail.showArea(level, name),
  });
  const views = {
    map: null,
    dashboards: new Dashboards(document.getElementById("view-dashboards"), twin),
    control: new Control(document.getElementById("view-control"), live),
    entities: new Entities(document.getElementById("view-entities")),
  };
  const route = () => {
    const hash = location.hash.slice(1) || "map";
    const [view, ...rest] = hash.split("/");
    const name = views[view] === undefined ? "map" : view;
    for (const key of Object.keys(views)) {
      document.getElementById(`view-${key}`).hidden = key !== name;
      document.querySelector(`nav a[data-view="${key}"]`)?.setAttribute("aria-current", key === name ? "page" : "false");
    }
    if (name === "map") cityMap.map.resize();
    else views[name].show(rest.join("/"));
  };
  window.addEventListener("hashchange", route);
  route();

  await cityMap.ready;
  timings.mapReady = performance.now();
  // the city's layers (a thousand buildings) go under the Things whenever they arrive;
  // the Things do not wait for them
  const layersPanel = document.getElementById("layers");
  cityMap.showCityLayers().then(() => cityMap.renderPanel(layersPanel));
  await loaded;
  timings.sensorsLoaded = performance.now();
  cityMap.showThings();
  timings.sourcesSet = performance.now();
  cityMap.renderPanel(layersPanel);
  Object.assign(window.citytwin, { live, twin, map: cityMap.map });
  // live updates start once the first picture is drawn: subscribing to thousands of
  // topics would compete with it for the server and the page
  cityMap.map.once("idle", () => {
    timings.sensorsRendered = performance.now();
    timings.things = twin.things.size;
    document.body.dataset.ready = "true";
    cityMap.startListing();
    const onObservation = (obs, topic) => twin.onObservation(obs, topic);
    const onLocation = (loc, topic) => twin.onLocation(loc, topic);
    live.subscribe(twin.observationTopics(), onObservation);
    live.subscribe(twin.vehicleTopics(), onLocation);
    new Growth(twin, live, ({ added, datastreams }) => {
      live.subscribe(twin.observationTopics(datastreams), onObservation);
      live.subscribe(twin.vehicleTopics(added), onLocation);
      if (added.length) cityMap.renderPanel(layersPanel);
    }).start();
    session.then((s) => live.connect(mqttCredentials(s)));
  });
}

start().catch((err) => {
  console.error(err);
  document.body.dataset.ready = "error";
});
