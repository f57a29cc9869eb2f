// The whole view lives in the URL: query, overrides, map position, selection, comparison, rendering.
// Every change pushes a history entry, so shared links and the back button work.
const KEYS = ["q", "now", "bbox", "datetime", "cloud", "sensor", "theme", "item", "compare", "render", "map", "lang", "view"];

export function readState() {
  const params = new URLSearchParams(window.location.search);
  const state = {};
  for (const key of KEYS) {
    const value = params.get(key);
    if (value !== null && value !== "") state[key] = value;
  }
  return state;
}

function toSearch(state) {
  const params = new URLSearchParams();
  for (const key of KEYS) {
    const value = state[key];
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : window.location.pathname;
}

export function pushState(state) {
  const target = toSearch(state);
  if (target !== window.location.search) window.history.pushState(state, "", target);
}

export function replaceState(state) {
  window.history.replaceState(state, "", toSearch(state));
}
