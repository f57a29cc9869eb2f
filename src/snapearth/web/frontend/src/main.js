// SnapEarth web UI: ask in plain words, see the images on a map, compare before and after.
import "leaflet/dist/leaflet.css";
import "./style.css";
import * as api from "./api.js";
import { THEMES, formatDate, language, setLanguage, t, themeName } from "./i18n.js";
import { MapView } from "./map.js";
import { pushState, readState, replaceState } from "./state.js";
import { Timeline, monthlyBuckets, monthsToInterval } from "./timeline.js";

const $ = (selector) => document.querySelector(selector);

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const app = {
  state: {},
  response: null,
  features: [],
  byKey: new Map(),
  renderings: [],
  controller: null,
  compareFirst: null,
};

function keyOf(feature) {
  return `${feature.collection}/${feature.id}`;
}

function splitKey(key) {
  const index = key.indexOf("/");
  return [key.slice(0, index), key.slice(index + 1)];
}

const SENSORS = { s1: ["sentinel-1-grd"], s2: ["sentinel-2-l2a"] };

function sensorOf(feature) {
  const c = feature.collection || "";
  if (c.includes("sentinel-1")) return "Sentinel-1";
  if (c.includes("sentinel-2")) return "Sentinel-2";
  return c;
}

// ---- search ---------------------------------------------------------------------------------------------

function searchParams(state) {
  const params = { q: state.q, now: state.now, limit: 50 };
  if (state.bbox) params.bbox = state.bbox;
  if (state.datetime) params.datetime = state.datetime;
  if (state.cloud !== undefined) params.max_cloud_cover = state.cloud;
  if (state.sensor) params.collections = SENSORS[state.sensor] || "any";
  if (state.theme) params.themes = state.theme;
  return params;
}

async function runSearch() {
  const state = app.state;
  if (app.controller) app.controller.abort();
  if (!state.q && !state.bbox && !state.datetime) {
    showMessage("");
    return;
  }
  app.controller = new AbortController();
  const { signal } = app.controller;
  setBusy(true);
  showMessage(t("loading"));
  try {
    const response = await api.earthsearch(searchParams(state), signal);
    app.response = response;
    app.features = response.features || [];
    app.byKey = new Map(app.features.map((f) => [keyOf(f), f]));
    renderParse(response.parse);
    renderResults();
    const place = response.parse?.place;
    app.map.showResults(app.features, place?.geometry, response.events || []);
    if (!state.map) app.map.fit(place?.bbox);
    showMessage(app.features.length ? "" : t("noResults"));
    renderTimeline(response.parse, signal);
    const pair = response.pair;
    if (response.parse?.compare && pair?.before && pair?.after && !state.compare && !state.item) {
      // "before and after" queries open the comparison of the best pair straight away.
      app.state = { ...state, compare: `${pairKey(pair.before)},${pairKey(pair.after)}`, view: "compare" };
      replaceState(app.state);
    }
    applySelection();
  } catch (error) {
    if (error.name === "AbortError") return;
    app.features = [];
    renderResults();
    showMessage(`${t("serverError")}: ${error.message}`, true);
  } finally {
    setBusy(false);
  }
}

function setBusy(busy) {
  document.body.classList.toggle("busy", busy);
  $("#results").setAttribute("aria-busy", busy ? "true" : "false");
}

function showMessage(text, isError = false) {
  const box = $("#message");
  box.textContent = text;
  box.hidden = !text;
  box.className = isError ? "message error" : "message";
  box.setAttribute("role", isError ? "alert" : "status");
}

// ---- what was understood, as editable chips ---------------------------------------------------------

function periodText(datetime) {
  if (!datetime) return null;
  return `${formatDate(datetime.start)} – ${formatDate(datetime.end)}`;
}

function chip(kind, label, value, onEdit, onRemove) {
  return h(
    "span",
    { class: `chip chip-${kind}`, "data-kind": kind },
    h("span", { class: "chip-label" }, `${label}: `),
    h("button", { class: "chip-value", type: "button", title: t("edit"), onclick: onEdit }, value),
    onRemove ? h("button", { class: "chip-remove", type: "button", "aria-label": `${t("remove")} ${label}`, onclick: onRemove }, "×") : null,
  );
}

function renderParse(parse) {
  const box = $("#chips");
  box.textContent = "";
  if (!parse) return;
  const chips = [];
  if (parse.place) {
    chips.push(chip("place", t("place"), parse.place.name, () => editPlace(), () => override({ bbox: "none" })));
  }
  const period = periodText(parse.datetime);
  if (period) chips.push(chip("period", t("period"), period, () => $("#filter-from").focus(), () => override({ datetime: "none" })));
  if (parse.max_cloud_cover !== null && parse.max_cloud_cover !== undefined) {
    chips.push(chip("clouds", t("clouds"), `≤ ${parse.max_cloud_cover} %`, () => $("#filter-cloud").focus(), () => override({ cloud: "100" })));
  }
  if (parse.collections && parse.collections.length) {
    const label = parse.collections.map((c) => (c.includes("sentinel-1") ? "Sentinel-1" : "Sentinel-2")).join(", ");
    chips.push(chip("sensor", t("sensor"), label, () => $("#filter-sensor").focus(), () => override({ sensor: "any" })));
  }
  for (const theme of parse.themes || []) {
    chips.push(chip("theme", t("theme"), themeName(theme), () => $("#filter-theme").focus(), () => override({ theme: "none" })));
  }
  if (parse.compare) chips.push(chip("compare", t("compare"), t("beforeAfter"), () => openPair()));
  if (chips.length) box.append(h("span", { class: "chips-title" }, `${t("understood")}:`), ...chips);
  if (parse.unparsed && parse.unparsed.length) {
    box.append(h("span", { class: "unparsed", title: "not understood" }, `? ${parse.unparsed.join(" ")}`));
  }
  syncFilters(parse);
}

function editPlace() {
  const input = $("#q");
  input.focus();
  input.select();
}

function override(changes) {
  const next = { ...app.state, ...changes };
  delete next.item;
  delete next.compare;
  delete next.view;
  delete next.map;
  navigate(next);
}

// ---- filters ----------------------------------------------------------------------------------------

function syncFilters(parse) {
  const dt = parse?.datetime;
  const state = app.state;
  const [from, to] = state.datetime && state.datetime !== "none" ? state.datetime.split("/") : [dt?.start, dt?.end];
  $("#filter-from").value = from && from !== ".." ? from.slice(0, 10) : "";
  $("#filter-to").value = to && to !== ".." ? to.slice(0, 10) : "";
  const cloud = state.cloud ?? parse?.max_cloud_cover ?? 100;
  $("#filter-cloud").value = cloud;
  $("#filter-cloud-value").textContent = `${cloud} %`;
  const collections = parse?.collections || [];
  $("#filter-sensor").value = state.sensor || (collections.length === 1 ? (collections[0].includes("sentinel-1") ? "s1" : "s2") : "any");
  $("#filter-theme").value = state.theme || (parse?.themes || [])[0] || "none";
}

function applyFilters(event) {
  event.preventDefault();
  const from = $("#filter-from").value;
  const to = $("#filter-to").value;
  const changes = {
    cloud: $("#filter-cloud").value,
    sensor: $("#filter-sensor").value,
    theme: $("#filter-theme").value,
  };
  if (from || to) changes.datetime = `${from ? `${from}T00:00:00Z` : ".."}/${to ? `${to}T23:59:59Z` : ".."}`;
  override(changes);
}

function buildFilters() {
  const form = $("#filters");
  form.textContent = "";
  const sensor = h(
    "select",
    { id: "filter-sensor", name: "sensor" },
    h("option", { value: "any" }, t("anySensor")),
    h("option", { value: "s2" }, t("optical")),
    h("option", { value: "s1" }, t("radar")),
  );
  const theme = h(
    "select",
    { id: "filter-theme", name: "theme" },
    h("option", { value: "none" }, t("anyTheme")),
    THEMES.map((name) => h("option", { value: name }, themeName(name))),
  );
  const cloud = h("input", { id: "filter-cloud", type: "range", min: 0, max: 100, step: 5, value: 100, name: "cloud" });
  cloud.addEventListener("input", () => { $("#filter-cloud-value").textContent = `${cloud.value} %`; });
  form.append(
    h("legend", {}, t("filters")),
    h("label", {}, `${t("from")} `, h("input", { id: "filter-from", type: "date", name: "from" })),
    h("label", {}, `${t("to")} `, h("input", { id: "filter-to", type: "date", name: "to" })),
    h("label", {}, `${t("maxClouds")} `, cloud, h("output", { id: "filter-cloud-value" }, "100 %")),
    h("label", {}, `${t("sensor")} `, sensor),
    h("label", {}, `${t("theme")} `, theme),
    h("button", { type: "submit" }, t("apply")),
    h("button", { type: "button", onclick: () => navigate({ q: app.state.q, lang: app.state.lang, now: app.state.now }) }, t("reset")),
  );
}

// ---- timeline ---------------------------------------------------------------------------------------

async function renderTimeline(parse, signal) {
  const params = {};
  const bbox = app.state.bbox && app.state.bbox !== "none" ? app.state.bbox : parse?.place?.bbox;
  if (bbox) params.bbox = bbox;
  const collections = app.state.sensor ? SENSORS[app.state.sensor] : parse?.collections;
  if (collections && collections.length) params.collections = collections;
  try {
    const result = await api.aggregateMonths(params, signal);
    const aggregation = (result.aggregations || []).find((a) => a.name === "datetime_frequency");
    const buckets = monthlyBuckets(aggregation);
    const dt = parse?.datetime;
    const selected = dt ? [String(dt.start).slice(0, 7), String(dt.end).slice(0, 7)] : null;
    app.timeline.render(buckets, selected);
  } catch (error) {
    if (error.name !== "AbortError") app.timeline.render([], null);
  }
}

// ---- results ----------------------------------------------------------------------------------------

function highlights(props) {
  const out = [];
  const pct = (v) => `${Math.round(v * 100)} %`;
  const fields = [
    ["signature:water_fraction", "water"],
    ["signature:snow_fraction", "snow"],
    ["signature:burn_fraction", "burn"],
    ["signature:vegetation_fraction", "ndvi"],
  ];
  for (const [field, kind] of fields) {
    const value = props[field];
    if (typeof value === "number" && value >= 0.05) {
      out.push(h("span", { class: `hl hl-${kind}`, title: field }, `${t(`hl_${kind}`)} ${pct(value)}`));
    }
  }
  return out;
}

function resultCard(feature, index) {
  const props = feature.properties || {};
  const key = keyOf(feature);
  const rendering = feature.collection?.includes("sentinel-1") ? "sar" : "truecolor";
  const cloud = props["eo:cloud_cover"];
  const score = props["earthsearch:score"];
  const reason = props["earthsearch:reason"];
  const selected = app.state.item === key;
  return h(
    "li",
    {
      class: selected ? "result selected" : "result",
      tabindex: 0,
      "data-key": key,
      "aria-selected": selected ? "true" : "false",
      onclick: () => selectItem(key),
      onkeydown: (event) => {
        if (event.key === "Enter") selectItem(key);
        if (event.key === "ArrowDown") event.currentTarget.nextElementSibling?.focus();
        if (event.key === "ArrowUp") event.currentTarget.previousElementSibling?.focus();
      },
    },
    h("img", { class: "thumb", src: api.thumbnailUrl(feature.collection, feature.id, rendering), alt: "", loading: index < 6 ? "eager" : "lazy", width: 72, height: 72 }),
    h(
      "div",
      { class: "result-body" },
      h("div", { class: "result-title" }, h("strong", {}, formatDate(props.datetime)), ` · ${sensorOf(feature)}`, typeof cloud === "number" ? ` · ${t("clouds").toLowerCase()} ${Math.round(cloud)} %` : ""),
      h("div", { class: "result-id" }, feature.id),
      h("div", { class: "result-highlights" }, highlights(props)),
      reason ? h("div", { class: "result-reason" }, reason, typeof score === "number" ? ` (${t("score")} ${score.toFixed(2)})` : "") : null,
      h("button", { type: "button", class: "link compare-btn", onclick: (event) => { event.stopPropagation(); pickForCompare(key); } }, t("compareWith")),
    ),
  );
}

function renderResults() {
  const list = $("#results");
  list.textContent = "";
  $("#results-count").textContent = app.features.length ? `${app.features.length}` : "";
  app.features.forEach((feature, index) => list.append(resultCard(feature, index)));
}

// ---- selection, detail and compare ------------------------------------------------------------------

function selectItem(key) {
  navigate({ ...app.state, item: key, view: "detail", compare: undefined });
}

function pickForCompare(key) {
  if (app.compareFirst && app.compareFirst !== key) {
    const first = app.compareFirst;
    app.compareFirst = null;
    navigate({ ...app.state, compare: `${first},${key}`, view: "compare", item: undefined });
    return;
  }
  app.compareFirst = key;
  showMessage(t("pickSecond"));
}

// A pair member may be a feature or an item id (the collection then follows from the Sentinel naming).
function pairKey(value) {
  if (value && typeof value === "object") return keyOf(value);
  const found = app.features.find((f) => f.id === value);
  if (found) return keyOf(found);
  return `${String(value).startsWith("S1") ? "sentinel-1-grd" : "sentinel-2-l2a"}/${value}`;
}

function openPair() {
  const pair = app.response?.pair;
  if (pair?.before && pair?.after) {
    navigate({ ...app.state, compare: `${pairKey(pair.before)},${pairKey(pair.after)}`, view: "compare", item: undefined });
  }
}

async function findItem(key) {
  if (app.byKey.has(key)) return app.byKey.get(key);
  const [collection, id] = splitKey(key);
  const item = await api.getItem(collection, id);
  app.byKey.set(key, item);
  return item;
}

function renderingSelect(item) {
  const assets = item.assets || {};
  const usable = app.renderings.filter((r) => r.assets.every((a) => a in assets));
  const current = app.state.render && usable.some((r) => r.id === app.state.render) ? app.state.render : usable[0]?.id;
  const select = h("select", { id: "rendering", "aria-label": t("rendering") }, usable.map((r) => h("option", { value: r.id }, t(r.id) === r.id ? r.title : t(r.id))));
  select.value = current || "";
  select.addEventListener("change", () => navigate({ ...app.state, render: select.value }, { keepMap: true }));
  return { select, current };
}

function table(entries) {
  return h("table", { class: "kv" }, entries.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, v))));
}

function formatValue(value) {
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(3);
  if (value && typeof value === "object") return JSON.stringify(value);
  return String(value);
}

async function showDetail(key) {
  const panel = $("#detail");
  panel.hidden = false;
  panel.textContent = t("loading");
  let item;
  try {
    item = await findItem(key);
  } catch (error) {
    panel.textContent = `${t("serverError")}: ${error.message}`;
    return;
  }
  const props = item.properties || {};
  const { select, current } = renderingSelect(item);
  app.map.showImage(item, current);
  app.map.highlightItem(item.id);
  if (!app.state.map) app.map.fitItems([item]);
  const meta = Object.entries(props).filter(([k]) => !k.startsWith("signature:") && !k.startsWith("earthsearch:"));
  const signature = Object.entries(props).filter(([k]) => k.startsWith("signature:"));
  const assets = Object.entries(item.assets || {});
  panel.textContent = "";
  panel.append(
    h("div", { class: "detail-head" },
      h("button", { type: "button", class: "link", onclick: () => navigate({ ...app.state, item: undefined, view: undefined }) }, `← ${t("back")}`),
      h("h2", {}, `${formatDate(props.datetime)} · ${sensorOf(item)}`),
      h("div", { class: "result-id" }, item.id)),
    h("label", { class: "rendering" }, `${t("rendering")} `, select),
    h("div", { class: "detail-actions" },
      h("button", { type: "button", id: "more-like-this", onclick: () => showSimilar(item) }, t("moreLikeThis")),
      h("button", { type: "button", onclick: () => pickForCompare(key) }, t("compareWith"))),
    h("div", { id: "similar" }),
    h("details", { open: true }, h("summary", {}, t("signature")), signature.length ? table(signature.map(([k, v]) => [k.replace("signature:", ""), formatValue(v)])) : h("p", {}, t("none"))),
    h("details", {}, h("summary", {}, t("metadata")), table(meta.map(([k, v]) => [k, formatValue(v)]))),
    h("details", { open: true }, h("summary", {}, t("assets")),
      h("ul", { class: "assets" }, assets.map(([name, asset]) => h("li", {}, h("a", { href: asset.href, download: "" }, name), ` ${asset.title || ""} `, h("span", { class: "muted" }, (asset.roles || []).join(", ")))))),
  );
}

async function showSimilar(item) {
  const box = $("#similar");
  box.textContent = t("loading");
  try {
    const result = await api.similar(item.collection, item.id);
    const features = result.features || [];
    box.textContent = "";
    box.append(h("h3", {}, t("similar")), h("ul", { class: "similar-list" }, features.map((f) => {
      const key = keyOf(f);
      app.byKey.set(key, f);
      return h("li", {}, h("button", { type: "button", class: "link", onclick: () => selectItem(key) }, `${formatDate(f.properties?.datetime)} · ${f.id}`));
    })));
  } catch (error) {
    box.textContent = `${t("serverError")}: ${error.message}`;
  }
}

async function showCompare(spec) {
  const panel = $("#compare");
  const keys = spec.split(",");
  if (keys.length !== 2) return;
  panel.hidden = false;
  panel.textContent = t("loading");
  let items;
  try {
    items = await Promise.all(keys.map(findItem));
  } catch (error) {
    panel.textContent = `${t("serverError")}: ${error.message}`;
    return;
  }
  items.sort((a, b) => String(a.properties.datetime).localeCompare(String(b.properties.datetime)));
  const [before, after] = items;
  const { select, current } = renderingSelect(before);
  app.map.showComparison(before, after, current, 0.5);
  const slider = h("input", { id: "swipe", type: "range", min: 0, max: 100, value: 50, "aria-label": t("swipe") });
  slider.addEventListener("input", () => app.map.setSwipe(Number(slider.value) / 100));
  panel.textContent = "";
  panel.append(
    h("div", { class: "detail-head" },
      h("button", { type: "button", class: "link", onclick: () => navigate({ ...app.state, compare: undefined, view: undefined }) }, `← ${t("back")}`),
      h("h2", {}, t("compare"))),
    h("div", { class: "compare-labels" },
      h("span", {}, `◀ ${formatDate(before.properties.datetime)} · ${sensorOf(before)}`),
      h("span", {}, `${formatDate(after.properties.datetime)} · ${sensorOf(after)} ▶`)),
    h("label", { class: "swipe" }, `${t("swipe")} `, slider),
    h("label", { class: "rendering" }, `${t("rendering")} `, select),
  );
  if (!app.state.map) app.map.fitItems([before, after]);
}

function applySelection() {
  const state = app.state;
  $("#detail").hidden = true;
  $("#compare").hidden = true;
  document.body.dataset.view = state.view || "results";
  if (state.compare) {
    showCompare(state.compare);
  } else if (state.item) {
    showDetail(state.item);
  } else {
    app.map.clearImages();
    app.map.highlightItem(null);
  }
  for (const li of document.querySelectorAll("#results .result")) {
    const selected = li.dataset.key === state.item;
    li.classList.toggle("selected", selected);
    li.setAttribute("aria-selected", selected ? "true" : "false");
  }
}

// ---- suggestions while typing -----------------------------------------------------------------------

function setupSuggestions() {
  const input = $("#q");
  const list = $("#suggestions");
  let controller = null;
  let timer = null;
  let active = -1;
  const close = () => { list.hidden = true; list.textContent = ""; active = -1; input.setAttribute("aria-expanded", "false"); };
  const choose = (text) => { input.value = text; close(); input.focus(); };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const text = input.value;
      if (text.trim().length < 2) return close();
      if (controller) controller.abort();
      controller = new AbortController();
      try {
        const result = await api.suggest(text, controller.signal);
        const suggestions = result.suggestions || [];
        list.textContent = "";
        suggestions.slice(0, 8).forEach((s, i) => {
          list.append(h("li", { role: "option", id: `suggestion-${i}`, "data-text": s.text, onmousedown: (e) => { e.preventDefault(); choose(s.text); } },
            h("span", { class: "s-kind" }, s.kind), ` ${s.label}`));
        });
        list.hidden = !suggestions.length;
        input.setAttribute("aria-expanded", suggestions.length ? "true" : "false");
      } catch {
        close();
      }
    }, 120);
  });
  input.addEventListener("keydown", (event) => {
    const options = [...list.querySelectorAll("li")];
    if (event.key === "Escape") close();
    if (!options.length || list.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      active = (active + (event.key === "ArrowDown" ? 1 : -1) + options.length) % options.length;
      options.forEach((o, i) => o.classList.toggle("active", i === active));
      input.setAttribute("aria-activedescendant", options[active].id);
    } else if (event.key === "Enter" && active >= 0) {
      event.preventDefault();
      choose(options[active].dataset.text);
    }
  });
  input.addEventListener("blur", () => setTimeout(close, 100));
}

// ---- navigation -------------------------------------------------------------------------------------

function navigate(next, { keepMap = false } = {}) {
  const previous = app.state;
  const clean = Object.fromEntries(Object.entries(next).filter(([, v]) => v !== undefined && v !== null && v !== ""));
  if (!keepMap) delete clean.map;
  pushState(clean);
  render(previous, clean);
}

function searchKey(state) {
  return JSON.stringify([state.q, state.now, state.bbox, state.datetime, state.cloud, state.sensor, state.theme]);
}

function render(previous, state) {
  app.state = state;
  if (state.lang && state.lang !== language()) {
    setLanguage(state.lang);
    buildStatic();
  }
  $("#q").value = state.q || "";
  if (state.map) app.map.setPosition(state.map);
  if (searchKey(previous) !== searchKey(state) || !app.response) {
    runSearch();
  } else {
    applySelection();
  }
}

function buildStatic() {
  document.title = `${t("title")} — ${t("tagline")}`;
  $("#tagline").textContent = t("tagline");
  $("#q").placeholder = t("placeholder");
  $("#q").setAttribute("aria-label", t("placeholder"));
  $("#search-button").textContent = t("search");
  $("#lang-toggle").textContent = t("language");
  $("#results-title").textContent = t("results");
  $("#timeline-title").textContent = t("timeline");
  buildFilters();
  if (app.response) {
    renderParse(app.response.parse);
    renderResults();
    applySelection();
  }
}

async function start() {
  const initial = readState();
  setLanguage(initial.lang || (navigator.language || "en").slice(0, 2));
  app.map = new MapView($("#map"), {
    onSelect: (feature) => selectItem(keyOf(feature)),
    onMove: (position) => {
      if (app.state.q || app.state.item) replaceState({ ...app.state, map: position });
    },
  });
  app.timeline = new Timeline($("#timeline"), (first, last) => override({ datetime: monthsToInterval(first, last) }));
  buildStatic();
  setupSuggestions();
  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = $("#q").value.trim();
    navigate({ q, now: app.state.now, lang: app.state.lang });
  });
  $("#filters").addEventListener("submit", applyFilters);
  $("#lang-toggle").addEventListener("click", () => navigate({ ...app.state, lang: language() === "fr" ? "en" : "fr" }, { keepMap: true }));
  window.addEventListener("popstate", () => render(app.state, readState()));
  window.addEventListener("resize", () => app.map.invalidate());
  try {
    app.renderings = (await api.renderings()).renderings || [];
  } catch {
    app.renderings = [];
  }
  replaceState(initial);
  render({}, initial);
}

window.snapearth = app; // for tests and debugging
start();
