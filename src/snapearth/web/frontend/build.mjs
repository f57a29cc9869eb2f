// Bundles the web UI into ../static (served by `snapearth serve` at /). No CDN at run time:
// Leaflet and the Natural Earth basemap (world-atlas) come from the npm registry at build time.
import { build } from "esbuild";
import { mkdirSync, readFileSync, writeFileSync, copyFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { feature } from "topojson-client";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "static", "dist");
mkdirSync(out, { recursive: true });

await build({
  entryPoints: [join(here, "src", "main.js")],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "iife",
  target: ["es2020"],
  outfile: join(out, "app.js"),
  loader: { ".png": "file", ".svg": "file" },
  assetNames: "assets/[name]-[hash]",
  logLevel: "warning",
});

// Offline base map: Natural Earth 1:50m countries and land as GeoJSON.
for (const name of ["countries-50m"]) {
  const topo = JSON.parse(readFileSync(join(here, "node_modules", "world-atlas", `${name}.json`), "utf8"));
  const key = Object.keys(topo.objects)[0];
  writeFileSync(join(out, `${name}.geojson`), JSON.stringify(feature(topo, topo.objects[key])));
}
const leafletImages = join(here, "node_modules", "leaflet", "dist", "images");
mkdirSync(join(out, "images"), { recursive: true });
for (const f of readdirSync(leafletImages)) copyFileSync(join(leafletImages, f), join(out, "images", f));
console.log(`web UI built into ${out}`);
