// Builds the UI into dist/, which citytwin serves at /ui (see citytwin/http/web.py).
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "dist");
const require = createRequire(import.meta.url);

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, "src", "main.js")],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"],
  minify: true,
  sourcemap: true,
  // the map's code comes with the page; mqtt.js and uPlot, a third of the bundle, are
  // split off and loaded when first used, after the first picture
  splitting: true,
  outdir: out,
  entryNames: "app",
  chunkNames: "chunk-[hash]",
  legalComments: "linked",
  logLevel: "warning",
});
// MapLibre loads its worker as a separate module next to the page's script
const maplibre = dirname(require.resolve("maplibre-gl/package.json"));
copyFileSync(join(maplibre, "dist", "maplibre-gl-worker.mjs"), join(out, "maplibre-gl-worker.mjs"));
// the page preloads the Things query the script will make (see twin.js)
const { SENSORS_QUERY } = await import("./src/queries.js");
const page = readFileSync(join(here, "src", "index.html"), "utf8").replace(
  "<!-- things preload -->",
  `<link rel="preload" as="fetch" crossorigin="anonymous" data-things href="/v1.1/${encodeURI(SENSORS_QUERY)}">`,
);
writeFileSync(join(out, "index.html"), page);
writeFileSync(join(out, "BUILT"), new Date().toISOString() + "\n");
