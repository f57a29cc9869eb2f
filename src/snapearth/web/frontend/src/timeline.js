// Results per month as bars (from the STAC aggregation); dragging across the bars narrows the period.
const SVG = "http://www.w3.org/2000/svg";

function el(name, attrs = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

export class Timeline {
  constructor(element, onBrush) {
    this.element = element;
    this.onBrush = onBrush;
    this.buckets = [];
  }

  render(buckets, selected) {
    this.buckets = buckets;
    this.element.textContent = "";
    if (!buckets.length) return;
    const width = Math.max(this.element.clientWidth || 300, 120);
    const height = 56;
    const max = Math.max(...buckets.map((b) => b.count), 1);
    const step = width / buckets.length;
    const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
    buckets.forEach((b, i) => {
      const h = Math.max(2, (b.count / max) * (height - 16));
      const inSelection = selected && b.key >= selected[0] && b.key <= selected[1];
      const rect = el("rect", {
        x: i * step + 1, y: height - 14 - h, width: Math.max(step - 2, 1), height: h,
        class: inSelection ? "bar selected" : "bar", "data-month": b.key,
      });
      const title = el("title");
      title.textContent = `${b.key}: ${b.count}`;
      rect.appendChild(title);
      svg.appendChild(rect);
      if (buckets.length <= 24 || i % Math.ceil(buckets.length / 12) === 0) {
        const label = el("text", { x: i * step + step / 2, y: height - 2, "text-anchor": "middle", class: "tick" });
        label.textContent = b.key.slice(2);
        svg.appendChild(label);
      }
    });
    const brush = el("rect", { class: "brush", x: 0, y: 0, width: 0, height: height - 14 });
    svg.appendChild(brush);
    let start = null;
    const indexAt = (event) => {
      const box = svg.getBoundingClientRect();
      return Math.min(buckets.length - 1, Math.max(0, Math.floor((event.clientX - box.left) / step)));
    };
    svg.addEventListener("pointerdown", (event) => {
      start = indexAt(event);
      svg.setPointerCapture(event.pointerId);
      brush.setAttribute("x", start * step);
      brush.setAttribute("width", step);
    });
    svg.addEventListener("pointermove", (event) => {
      if (start === null) return;
      const now = indexAt(event);
      const lo = Math.min(start, now);
      brush.setAttribute("x", lo * step);
      brush.setAttribute("width", (Math.abs(now - start) + 1) * step);
    });
    svg.addEventListener("pointerup", (event) => {
      if (start === null) return;
      const end = indexAt(event);
      const lo = buckets[Math.min(start, end)].key;
      const hi = buckets[Math.max(start, end)].key;
      start = null;
      this.onBrush(lo, hi);
    });
    this.element.appendChild(svg);
  }
}

// "2023-05" .. "2023-08" -> an inclusive RFC 3339 interval covering those months.
export function monthsToInterval(first, last) {
  const [y2, m2] = last.split("-").map(Number);
  const end = new Date(Date.UTC(y2, m2, 0, 23, 59, 59));
  return `${first}-01T00:00:00Z/${end.toISOString().replace(".000Z", "Z")}`;
}

// Fill the months between the first and the last bucket so the axis is continuous.
export function monthlyBuckets(aggregation) {
  const raw = (aggregation?.buckets || []).map((b) => ({ key: String(b.key).slice(0, 7), count: b.frequency ?? b.count ?? 0 }));
  if (!raw.length) return [];
  raw.sort((a, b) => a.key.localeCompare(b.key));
  const byKey = new Map(raw.map((b) => [b.key, b.count]));
  const out = [];
  let [y, m] = raw[0].key.split("-").map(Number);
  const [ly, lm] = raw[raw.length - 1].key.split("-").map(Number);
  while (y < ly || (y === ly && m <= lm)) {
    const key = `${y}-${String(m).padStart(2, "0")}`;
    out.push({ key, count: byKey.get(key) || 0 });
    m += 1;
    if (m > 12) { m = 1; y += 1; }
    if (out.length > 600) break;
  }
  return out;
}
