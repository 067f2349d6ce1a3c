// SVG gauges and line charts, drawn from numbers with no library.
import { s, h } from "./dom.js";

// level names the colour band of a percentage against alert marks.
export function level(pct, marks = [50, 80, 100]) {
  if (pct >= marks[2]) return "crit";
  if (pct >= marks[1]) return "warn";
  if (pct >= marks[0]) return "notice";
  return "ok";
}

function arcPath(cx, cy, r, from, to) {
  // Angles in degrees, 180 = left, 0 = right, drawn over the top.
  const rad = (a) => (a * Math.PI) / 180;
  const x1 = cx + r * Math.cos(rad(from)), y1 = cy - r * Math.sin(rad(from));
  const x2 = cx + r * Math.cos(rad(to)), y2 = cy - r * Math.sin(rad(to));
  const large = Math.abs(from - to) > 180 ? 1 : 0;
  return `M ${x1.toFixed(2)} ${y1.toFixed(2)} A ${r} ${r} 0 ${large} 1 ${x2.toFixed(2)} ${y2.toFixed(2)}`;
}

// gauge draws a half-circle gauge. value and max are numbers; label names
// it; detail is a line under the value; marks are the alert percentages.
export function gauge({ name, label, value, max, text, detail, marks }) {
  const known = value !== null && value !== undefined && max > 0;
  const pct = known ? Math.max(0, Math.min(100, (100 * value) / max)) : 0;
  const lv = known ? level(pct, marks) : "none";
  const svg = s("svg", { viewBox: "0 0 120 72", class: "gauge-svg", role: "img", "aria-label": `${label}: ${known ? Math.round(pct) + "%" : "unknown"}` },
    s("path", { d: arcPath(60, 62, 50, 180, 0), class: "gauge-track" }),
    known && pct > 0 ? s("path", { d: arcPath(60, 62, 50, 180, 180 - 1.8 * Math.max(pct, 0.5)), class: `gauge-value lv-${lv}` }) : null,
    ...(marks || []).filter((m) => m < 100).map((m) => {
      const a = ((180 - 1.8 * m) * Math.PI) / 180;
      return s("line", { x1: 60 + 43 * Math.cos(a), y1: 62 - 43 * Math.sin(a), x2: 60 + 57 * Math.cos(a), y2: 62 - 57 * Math.sin(a), class: "gauge-mark" });
    }),
    s("text", { x: 60, y: 58, class: "gauge-text", "text-anchor": "middle" }, text ?? (known ? `${Math.round(pct)}%` : "–")),
  );
  return h("div", { class: `gauge lv-${lv}`, dataset: { name: name || label, level: lv, pct: known ? pct.toFixed(1) : "" } },
    svg, h("div", { class: "gauge-label" }, label), detail ? h("div", { class: "gauge-detail" }, detail) : null);
}

// lineChart draws series of [time(ms), value] points over a shared time
// axis, at the width its box has (drawn again when that changes), so its
// labels keep their CSS size on a phone. opts: {height, ymax, yfmt, empty}
export function lineChart(series, opts = {}) {
  const pts = series.flatMap((x) => x.points);
  if (pts.length < 2) {
    return h("div", { class: "chart-empty" }, opts.empty || "Collecting samples…");
  }
  const legend = h("div", { class: "legend" }, series.map((sr) => h("span", { class: `key ${sr.cls || ""}` }, sr.name)));
  const wrap = h("div", { class: "chart-wrap" }, legend);
  let drawn = 0;
  const draw = () => {
    const W = Math.round(wrap.clientWidth);
    if (!W || W === drawn) return;
    drawn = W;
    wrap.querySelector("svg")?.remove();
    wrap.prepend(chartSVG(series, pts, W, opts));
  };
  new ResizeObserver(draw).observe(wrap);
  return wrap;
}

function chartSVG(series, pts, W, opts) {
  const H = opts.height || 150, L = 56, R = 8, T = 8, B = 20;
  const t0 = Math.min(...pts.map((p) => p[0])), t1 = Math.max(...pts.map((p) => p[0]));
  const ymax = opts.ymax || Math.max(1e-9, ...pts.map((p) => p[1])) * 1.1;
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - Math.min(v, ymax) / ymax) * (H - T - B);
  const yfmt = opts.yfmt || ((v) => v.toFixed(0));
  const grid = [0, 0.5, 1].map((f) => [
    s("line", { x1: L, x2: W - R, y1: y(ymax * f), y2: y(ymax * f), class: "grid" }),
    s("text", { x: L - 4, y: Math.max(12, y(ymax * f) + 4), class: "axis", "text-anchor": "end" }, yfmt(ymax * f)),
  ]);
  const secs = Math.round((t1 - t0) / 1000);
  return s("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "chart", role: "img", "aria-label": opts.label || "chart" },
    grid,
    s("text", { x: L + 2, y: H - 4, class: "axis" }, `${secs >= 120 ? Math.round(secs / 60) + " min" : secs + " s"} ago`),
    s("text", { x: W - R, y: H - 4, class: "axis", "text-anchor": "end" }, "now"),
    series.map((sr) => sr.points.length > 1
      ? s("polyline", { points: sr.points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" "), class: `line ${sr.cls || ""}` })
      : null),
  );
}

// History keeps a bounded time series per key.
export class History {
  constructor(limit = 360) { this.limit = limit; this.series = new Map(); }
  add(key, t, v) {
    if (v === null || v === undefined || isNaN(v)) return;
    let arr = this.series.get(key);
    if (!arr) { arr = []; this.series.set(key, arr); }
    // Seeded history can arrive after live samples: keep time order.
    let i = arr.length;
    while (i > 0 && arr[i - 1][0] > t) i--;
    if (i > 0 && arr[i - 1][0] === t) return;
    arr.splice(i, 0, [t, Number(v)]);
    if (arr.length > this.limit) arr.shift();
  }
  get(key) { return this.series.get(key) || []; }
}
