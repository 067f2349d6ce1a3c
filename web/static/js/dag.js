// The plan as a layered DAG, and a timeline of what ran when.
import { s, h, fmtDur } from "./dom.js";

// layout assigns each step a layer (longest path from a root) and an order
// within its layer (parents' mean position, so edges cross less).
export function layout(steps) {
  const byId = new Map(steps.map((st) => [st.step_id, st]));
  const layer = new Map();
  const visiting = new Set();
  const depth = (id) => {
    if (layer.has(id)) return layer.get(id);
    if (visiting.has(id)) return 0; // a cycle cannot pass validation; draw it anyway
    visiting.add(id);
    const st = byId.get(id);
    let d = 0;
    for (const p of st?.depends_on || []) if (byId.has(p)) d = Math.max(d, depth(p) + 1);
    visiting.delete(id);
    layer.set(id, d);
    return d;
  };
  steps.forEach((st) => depth(st.step_id));
  const layers = [];
  for (const st of steps) (layers[layer.get(st.step_id)] ||= []).push(st.step_id);
  const pos = new Map();
  layers.forEach((ids, li) => {
    if (li > 0) {
      const key = (id) => {
        const ps = (byId.get(id).depends_on || []).filter((p) => pos.has(p));
        return ps.length ? ps.reduce((a, p) => a + pos.get(p), 0) / ps.length : 0;
      };
      ids.sort((a, b) => key(a) - key(b));
    }
    ids.forEach((id, i) => pos.set(id, i));
  });
  return { layers, layer, pos };
}

const NW = 150, NH = 46, GX = 60, GY = 18, VGX = 18, VGY = 44;

// dag draws the steps, layers left to right (top to bottom when vertical,
// for narrow screens). Each node carries data-step and data-status so it can
// change state live. onPick(stepID) is called on a click.
export function dag(steps, onPick, opts = {}) {
  if (!steps.length) return h("div", { class: "chart-empty" }, "No plan yet.");
  const vertical = !!opts.vertical;
  const { layers, layer, pos } = layout(steps);
  const rows = Math.max(...layers.map((l) => l.length));
  // Along is the layer axis, across the axis within a layer.
  const stepAlong = vertical ? NH + VGY : NW + GX, stepAcross = vertical ? NW + VGX : NH + GY;
  const sizeAlong = layers.length * stepAlong - (vertical ? VGY : GX) + 20;
  const sizeAcross = rows * stepAcross - (vertical ? VGX : GY) + 20;
  const W = vertical ? sizeAcross : sizeAlong, H = vertical ? sizeAlong : sizeAcross;
  const corner = (id) => {
    const li = layer.get(id), n = layers[li].length;
    const along = 10 + li * stepAlong, across = 10 + ((rows - n) * stepAcross) / 2 + pos.get(id) * stepAcross;
    return vertical ? { x: across, y: along } : { x: along, y: across };
  };
  const edges = [];
  for (const st of steps) {
    for (const p of st.depends_on || []) {
      if (!layer.has(p)) continue;
      const a = corner(p), b = corner(st.step_id);
      let d;
      if (vertical) {
        const x1 = a.x + NW / 2, y1 = a.y + NH, x2 = b.x + NW / 2, y2 = b.y, my = (y1 + y2) / 2;
        d = `M ${x1} ${y1} C ${x1} ${my}, ${x2} ${my}, ${x2} ${y2 - 6}`;
      } else {
        const x1 = a.x + NW, y1 = a.y + NH / 2, x2 = b.x, y2 = b.y + NH / 2, mx = (x1 + x2) / 2;
        d = `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2 - 6} ${y2}`;
      }
      edges.push(s("path", { d, class: "edge", dataset: { from: p, to: st.step_id }, "marker-end": "url(#arrow)" }));
    }
  }
  const nodes = steps.map((st) => {
    const c = corner(st.step_id);
    const sub = st.kind === "tool" || st.tool ? `tool · ${st.tool}` : `task${st.tier ? " · " + st.tier : ""}`;
    return s("g", { class: "node", transform: `translate(${c.x},${c.y})`, dataset: { step: st.step_id, status: st.status }, tabindex: 0,
      onclick: () => onPick && onPick(st.step_id), onkeydown: (e) => { if (e.key === "Enter" && onPick) onPick(st.step_id); } },
      s("title", {}, `${st.step_id}: ${st.status}`),
      s("rect", { width: NW, height: NH, rx: 8 }),
      s("text", { x: 10, y: 19, class: "node-id" }, clip(st.step_id, 18)),
      s("text", { x: 10, y: 36, class: "node-sub" }, clip(sub, 22)),
      s("circle", { cx: NW - 12, cy: 12, r: 5, class: "node-dot" }));
  });
  // The drawing shrinks to fit its box, down to 60%; past that it scrolls,
  // so labels stay readable.
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "dag", role: "img", "aria-label": "plan graph", dataset: { layout: vertical ? "vertical" : "horizontal" } },
    s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 6, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }))),
    edges, nodes);
  svg.style.maxWidth = `${W}px`;
  svg.style.minWidth = `${Math.round(W * 0.6)}px`;
  return h("div", { class: "dag-wrap" }, svg);
}

// setNodeStatus changes one node's state in place (from a step.status event).
export function setNodeStatus(root, stepID, status) {
  for (const g of root.querySelectorAll("g.node")) {
    if (g.dataset.step === stepID) {
      g.dataset.status = status;
      const t = g.querySelector("title");
      if (t) t.textContent = `${stepID}: ${status}`;
    }
  }
}

function clip(str, n) { return str.length > n ? str.slice(0, n - 1) + "…" : str; }

// gantt draws one bar per step from start to finish (or now while running).
export function gantt(steps, now = Date.now()) {
  const started = steps.filter((st) => st.started_at);
  if (!started.length) return h("div", { class: "chart-empty" }, "Nothing has started yet.");
  const t0 = Math.min(...started.map((st) => Date.parse(st.started_at)));
  const end = (st) => (st.finished_at ? Date.parse(st.finished_at) : now);
  const t1 = Math.max(t0 + 1, ...started.map(end));
  const W = 460, L = 96, R = 10, RH = 24, H = steps.length * RH + 24;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const rows = steps.map((st, i) => {
    const y = 4 + i * RH;
    const bar = st.started_at
      ? s("rect", { x: x(Date.parse(st.started_at)), y: y + 3, width: Math.max(2, x(end(st)) - x(Date.parse(st.started_at))), height: RH - 8, rx: 3, class: `bar st-${st.status}` },
        s("title", {}, `${st.step_id}: ${fmtDur(end(st) - Date.parse(st.started_at))}`))
      : null;
    return s("g", { class: "gantt-row", dataset: { step: st.step_id } },
      s("text", { x: L - 6, y: y + RH / 2 + 4, class: "axis", "text-anchor": "end" }, clip(st.step_id, 16)), bar);
  });
  return h("div", { class: "chart-wrap" }, s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart gantt", role: "img", "aria-label": "timeline" },
    s("line", { x1: L, x2: W - R, y1: H - 18, y2: H - 18, class: "grid" }),
    s("text", { x: L, y: H - 4, class: "axis" }, "0"),
    s("text", { x: W - R, y: H - 4, class: "axis", "text-anchor": "end" }, fmtDur(t1 - t0)),
    rows));
}
