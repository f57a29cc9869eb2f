// Every call the page makes to the SnapEarth API, in one place.
export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.description || body.detail || body.message)) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function getJSON(url, options = {}) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, ...options });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    search.set(key, Array.isArray(value) ? value.join(",") : String(value));
  }
  return search.toString();
}

export function earthsearch(params, signal) {
  return getJSON(`/earthsearch?${query(params)}`, { signal });
}

export function suggest(text, signal) {
  return getJSON(`/earthsearch/suggest?${query({ q: text })}`, { signal });
}

export function aggregateMonths(params, signal) {
  return getJSON(`/aggregate?${query({ ...params, aggregations: "datetime_frequency" })}`, { signal });
}

export function getItem(collection, id) {
  return getJSON(`/collections/${encodeURIComponent(collection)}/items/${encodeURIComponent(id)}`);
}

export function similar(collection, id, signal) {
  return getJSON(`/similar/collections/${encodeURIComponent(collection)}/items/${encodeURIComponent(id)}?${query({ limit: 8 })}`, { signal });
}

export function renderings() {
  return getJSON("/renderings");
}

export function tileUrl(collection, id, rendering) {
  return `/collections/${encodeURIComponent(collection)}/items/${encodeURIComponent(id)}/tiles/{z}/{x}/{y}.png?${query({ rendering })}`;
}

export function thumbnailUrl(collection, id, rendering) {
  return `/collections/${encodeURIComponent(collection)}/items/${encodeURIComponent(id)}/thumbnail.png?${query({ rendering })}`;
}
