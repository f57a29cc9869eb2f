// The map: an offline Natural Earth base map, result footprints, the place outline, event polygons, the
// selected image as tiles in a rendering, and a swipe comparison of two images.
import L from "leaflet";
import { tileUrl } from "./api.js";

L.Icon.Default.imagePath = "/ui/dist/images/";

export const EVENT_COLOURS = {
  flood: "#1f78b4",
  wildfire: "#e31a1c",
  snow: "#a6cee3",
  drought: "#ff7f00",
  deforestation: "#33a02c",
  harvest: "#b15928",
};

export class MapView {
  constructor(element, { onSelect, onMove }) {
    this.map = L.map(element, { zoomControl: true, worldCopyJump: true, minZoom: 2, maxZoom: 16 });
    this.map.attributionControl.setPrefix(false);
    this.map.attributionControl.addAttribution("Natural Earth · Copernicus Sentinel data");
    this.map.createPane("basemap").style.zIndex = 150;
    this.map.createPane("imageA").style.zIndex = 350;
    this.map.createPane("imageB").style.zIndex = 351;
    this.onSelect = onSelect;
    this.footprints = L.geoJSON(null, {
      style: () => ({ color: "#0b6e99", weight: 1.5, fillOpacity: 0 }),
      onEachFeature: (feature, layer) => {
        layer.on("click", () => this.onSelect(feature));
        layer.bindTooltip(feature.id);
      },
    }).addTo(this.map);
    this.place = L.geoJSON(null, {
      style: { color: "#222", weight: 2, dashArray: "6 4", fill: false },
      pointToLayer: (_, latlng) => L.circleMarker(latlng, { radius: 7, color: "#222", weight: 2, fillOpacity: 0.2 }),
    }).addTo(this.map);
    this.events = L.geoJSON(null, {
      style: (feature) => {
        const type = feature.properties["signature:event_type"];
        const colour = EVENT_COLOURS[type] || "#6a3d9a";
        return { color: colour, weight: 2, fillColor: colour, fillOpacity: 0.15 };
      },
      onEachFeature: (feature, layer) => {
        const p = feature.properties;
        layer.bindTooltip(`${p["signature:event_type"]} · ${(p["signature:area_km2"] ?? 0).toFixed(1)} km²`);
      },
    }).addTo(this.map);
    this.highlight = null;
    this.swipeLine = document.createElement("div");
    this.swipeLine.className = "swipe-line";
    this.swipeLine.hidden = true;
    this.map.getContainer().appendChild(this.swipeLine);
    this.imageA = null;
    this.imageB = null;
    this.tileStatus = { loaded: 0, errors: 0 };
    this.map.setView([30, 10], 2);
    this.map.on("moveend", () => onMove(this.position()));
    this.loadBasemap();
  }

  async loadBasemap() {
    const response = await fetch("/ui/dist/countries-50m.geojson");
    const world = await response.json();
    L.geoJSON(world, {
      pane: "basemap",
      interactive: false,
      style: { color: "#9aa5b1", weight: 0.6, fillColor: "#eef0e9", fillOpacity: 1 },
    }).addTo(this.map);
  }

  position() {
    const c = this.map.getCenter();
    return `${this.map.getZoom()}/${c.lat.toFixed(4)}/${c.lng.toFixed(4)}`;
  }

  setPosition(text) {
    const parts = (text || "").split("/").map(Number);
    if (parts.length === 3 && parts.every(Number.isFinite)) {
      this.map.setView([parts[1], parts[2]], parts[0], { animate: false });
      return true;
    }
    return false;
  }

  showResults(features, placeGeometry, events) {
    this.footprints.clearLayers();
    this.place.clearLayers();
    this.events.clearLayers();
    if (features.length) this.footprints.addData({ type: "FeatureCollection", features });
    if (placeGeometry) this.place.addData(placeGeometry);
    if (events && events.length) this.events.addData({ type: "FeatureCollection", features: events });
  }

  fit(bbox) {
    let bounds = null;
    if (bbox && bbox.length === 4) {
      bounds = L.latLngBounds([bbox[1], bbox[0]], [bbox[3], bbox[2]]);
    } else if (this.footprints.getLayers().length) {
      bounds = this.footprints.getBounds();
    }
    if (bounds && bounds.isValid()) this.map.fitBounds(bounds, { padding: [20, 20], maxZoom: 12, animate: false });
  }

  fitItems(items) {
    const bounds = L.geoJSON({ type: "FeatureCollection", features: items }).getBounds();
    if (bounds.isValid()) this.map.fitBounds(bounds, { padding: [30, 30], maxZoom: 14, animate: false });
  }

  highlightItem(id) {
    this.footprints.eachLayer((layer) => {
      const selected = layer.feature.id === id;
      layer.setStyle(selected ? { color: "#d94801", weight: 3 } : { color: "#0b6e99", weight: 1.5 });
      if (selected) layer.bringToFront();
    });
  }

  _tileLayer(item, rendering, pane) {
    const layer = L.tileLayer(tileUrl(item.collection, item.id, rendering), {
      pane,
      maxZoom: 16,
      bounds: L.geoJSON(item).getBounds(),
    });
    layer.on("tileload", () => { this.tileStatus.loaded += 1; });
    layer.on("tileerror", () => { this.tileStatus.errors += 1; });
    return layer;
  }

  showImage(item, rendering) {
    this.clearImages();
    if (!item) return;
    this.imageA = this._tileLayer(item, rendering, "imageA").addTo(this.map);
  }

  showComparison(before, after, rendering, position) {
    this.clearImages();
    this.imageA = this._tileLayer(before, rendering, "imageA").addTo(this.map);
    this.imageB = this._tileLayer(after, rendering, "imageB").addTo(this.map);
    this.setSwipe(position);
  }

  setSwipe(fraction) {
    const pane = this.map.getPane("imageB");
    const size = this.map.getSize();
    const topLeft = this.map.containerPointToLayerPoint([0, 0]);
    const x = size.x * fraction;
    pane.style.clip = `rect(${topLeft.y}px, ${topLeft.x + size.x}px, ${topLeft.y + size.y}px, ${topLeft.x + x}px)`;
    this.swipeLine.style.left = `${x}px`;
    this.swipeLine.hidden = false;
    if (!this._swipeBound) {
      this._swipeBound = true;
      this.map.on("move zoom resize", () => this.setSwipe(this._swipe ?? 0.5));
    }
    this._swipe = fraction;
  }

  clearImages() {
    for (const layer of [this.imageA, this.imageB]) if (layer) this.map.removeLayer(layer);
    this.imageA = null;
    this.imageB = null;
    this.map.getPane("imageB").style.clip = "";
    this.swipeLine.hidden = true;
  }

  invalidate() {
    this.map.invalidateSize();
  }
}
