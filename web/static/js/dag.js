// The plan as a layered graph, and a timeline of what ran when. Text is
// drawn at its CSS size (the drawing never scales down): a graph that does
// not fit its box across is drawn top to bottom, and one that still does
// not fit becomes a list.
import { s, h, fmtDur } from "./dom.js";
import { purposeLabel, callStart, callEnd } from "./planning.js";

// refsIn lists the step ids a value cites with ${step_id...} references.
export function refsIn(v, out = new Set()) {
  if (typeof v === "string") {
    for (const m of v.matchAll(/\$\{([a-z][a-z0-9_]*)/g)) out.add(m[1]);
  } else if (Array.isArray(v)) {
    v.forEach((x) => refsIn(x, out));
  } else if (v && typeof v === "object") {
    Object.values(v).forEach((x) => refsIn(x, out));
  }
  return out;
}

function parse(v) {
  if (typeof v !== "string") return v || null;
  try { return JSON.parse(v); } catch { return null; }
}

// planGraph picks what the plan card draws: every step of the final plan,
// the steps they and the answer cite (depends_on and ${ref} bindings) even
// when an earlier plan version holds them, and the answer. Steps no longer
// cited (superseded by a replan) are listed in hidden.
export function planGraph(detail) {
  const plan = parse(detail.plan);
  const byId = new Map();
  for (const st of detail.steps || []) byId.set(st.step_id, { st, spec: parse(st.spec) || {} });
  // A step of the plan not stored yet is drawn pending.
  for (const sp of plan?.steps || []) {
    if (!byId.has(sp.id)) byId.set(sp.id, { st: { step_id: sp.id, status: "pending", tool: sp.tool, tier: sp.tier, depends_on: sp.depends_on || [], plan_version: detail.plan_version }, spec: sp });
  }
  const cites = (id) => {
    const { st, spec } = byId.get(id);
    const deps = new Set((st.depends_on && st.depends_on.length ? st.depends_on : spec.depends_on) || []);
    const refs = refsIn([spec.args, spec.task]);
    return { deps, refs };
  };
  const roots = plan ? plan.steps.map((sp) => sp.id) : [...byId.keys()];
  const answerRefs = plan ? [...refsIn(plan.answer)].filter((id) => byId.has(id)) : [];
  const keep = new Set();
  const queue = [...roots, ...answerRefs];
  while (queue.length) {
    const id = queue.shift();
    if (keep.has(id) || !byId.has(id)) continue;
    keep.add(id);
    const { deps, refs } = cites(id);
    queue.push(...deps, ...refs);
  }
  const nodes = [...byId.keys()].filter((id) => keep.has(id)).map((id) => {
    const { st } = byId.get(id);
    return { id, step: st, carried: detail.plan_version > 0 && st.plan_version > 0 && st.plan_version < detail.plan_version };
  });
  const edges = [];
  for (const n of nodes) {
    const { deps, refs } = cites(n.id);
    for (const d of deps) if (keep.has(d)) edges.push({ from: d, to: n.id, kind: "dep" });
    for (const r of refs) if (keep.has(r) && !deps.has(r)) edges.push({ from: r, to: n.id, kind: "ref" });
  }
  let answer = null;
  if (plan && plan.answer && nodes.length) {
    let from = answerRefs;
    if (!from.length) {
      // The answer is made from the results of the steps nothing else uses.
      const used = new Set(edges.map((e) => e.from));
      from = nodes.filter((n) => !used.has(n.id) && roots.includes(n.id)).map((n) => n.id);
    }
    answer = { text: plan.answer, from };
  }
  const hidden = [...byId.values()].filter(({ st }) => !keep.has(st.step_id)).map(({ st }) => st);
  return { nodes, edges, answer, hidden };
}

// layers assigns each node a layer (longest path from a root) and orders
// each layer by its parents' mean position, so edges cross less.
function layers(nodes, edges) {
  const parents = new Map(nodes.map((n) => [n.id, []]));
  for (const e of edges) parents.get(e.to)?.push(e.from);
  const layer = new Map();
  const visiting = new Set();
  const depth = (id) => {
    if (layer.has(id)) return layer.get(id);
    if (visiting.has(id)) return 0; // a cycle cannot pass validation; draw it anyway
    visiting.add(id);
    let d = 0;
    for (const p of parents.get(id) || []) d = Math.max(d, depth(p) + 1);
    visiting.delete(id);
    layer.set(id, d);
    return d;
  };
  nodes.forEach((n) => depth(n.id));
  const out = [];
  for (const n of nodes) (out[layer.get(n.id)] ||= []).push(n.id);
  const pos = new Map();
  out.forEach((ids, li) => {
    if (li > 0) {
      const key = (id) => {
        const ps = parents.get(id).filter((p) => pos.has(p));
        return ps.length ? ps.reduce((a, p) => a + pos.get(p), 0) / ps.length : 0;
      };
      ids.sort((a, b) => key(a) - key(b));
    }
    ids.forEach((id, i) => pos.set(id, i));
  });
  return { layers: out, layer, pos };
}

// measure is the width of text in px, in the page's font.
let measurer = null;
function measure(text, font) {
  measurer ||= document.createElement("canvas").getContext("2d");
  measurer.font = `${font} ${getComputedStyle(document.body).fontFamily}`;
  return measurer.measureText(text).width;
}

// fit cuts text to width px with an ellipsis.
function fit(text, font, width) {
  if (measure(text, font) <= width) return text;
  let lo = 0, hi = text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (measure(text.slice(0, mid) + "…", font) <= width) lo = mid; else hi = mid - 1;
  }
  return text.slice(0, lo) + "…";
}

const ID_FONT = "700 13px", SUB_FONT = "11px";
const NH = 46, GX = 44, GY = 16, VGX = 16, VGY = 40, MIN_W = 120, MAX_W = 240;
const ANSWER = "(answer)";

function subOf(n) {
  const st = n.step;
  const what = st.kind === "tool" || st.tool ? `tool · ${st.tool}` : `task${st.tier ? " · " + st.tier : ""}`;
  return n.carried ? `${what} · v${st.plan_version}` : what;
}

function tip(n) {
  return `${n.id}\n${subOf(n)}${n.carried ? " (carried from plan v" + n.step.plan_version + ")" : ""}\nstatus: ${n.step.status}`;
}

// dag draws the graph in the width it has. onPick(stepID) is called on a
// click or Enter. Nodes carry data-step and data-status so a step.status
// event can restyle them in place (setNodeStatus).
export function dag(graph, onPick, width) {
  if (!graph.nodes.length) return h("div", { class: "chart-empty" }, "The plan has no steps.");
  const all = graph.answer ? [...graph.nodes, { id: ANSWER, answer: true }] : graph.nodes;
  const edges = graph.answer ? [...graph.edges, ...graph.answer.from.map((f) => ({ from: f, to: ANSWER, kind: "answer" }))] : graph.edges;
  const L = layers(all, edges);
  const textW = Math.max(...graph.nodes.map((n) => Math.max(measure(n.id, ID_FONT) + 32, measure(subOf(n), SUB_FONT) + 20)));
  const NW = Math.ceil(Math.min(MAX_W, Math.max(MIN_W, textW)));
  const rows = Math.max(...L.layers.map((l) => l.length));
  const horizontal = { W: L.layers.length * (NW + GX) - GX + 20, H: rows * (NH + GY) - GY + 20 };
  const vertical = { W: rows * (NW + VGX) - VGX + 20, H: L.layers.length * (NH + VGY) - VGY + 20 };
  if (horizontal.W <= width) return drawSVG(graph, all, edges, L, NW, false, horizontal, onPick);
  if (vertical.W <= width) return drawSVG(graph, all, edges, L, NW, true, vertical, onPick);
  return drawList(graph, L, onPick);
}

function drawSVG(graph, all, edges, L, NW, vertical, size, onPick) {
  const { layers: ls, layer, pos } = L;
  const rows = Math.max(...ls.map((l) => l.length));
  const stepAlong = vertical ? NH + VGY : NW + GX, stepAcross = vertical ? NW + VGX : NH + GY;
  const corner = (id) => {
    const li = layer.get(id), n = ls[li].length;
    const along = 10 + li * stepAlong, across = 10 + ((rows - n) * stepAcross) / 2 + pos.get(id) * stepAcross;
    return vertical ? { x: across, y: along } : { x: along, y: across };
  };
  const paths = edges.map((e) => {
    const a = corner(e.from), b = corner(e.to);
    let d;
    if (vertical) {
      const x1 = a.x + NW / 2, y1 = a.y + NH, x2 = b.x + NW / 2, y2 = b.y, my = (y1 + y2) / 2;
      d = `M ${x1} ${y1} C ${x1} ${my}, ${x2} ${my}, ${x2} ${y2 - 6}`;
    } else {
      const x1 = a.x + NW, y1 = a.y + NH / 2, x2 = b.x, y2 = b.y + NH / 2, mx = (x1 + x2) / 2;
      d = `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2 - 6} ${y2}`;
    }
    const cls = e.kind === "answer" ? "edge to-answer" : e.kind === "ref" ? "edge ref" : "edge";
    return s("path", { d, class: cls, dataset: e.kind === "answer" ? { from: e.from } : { from: e.from, to: e.to }, "marker-end": "url(#arrow)" },
      s("title", {}, e.kind === "ref" ? `${e.to} uses the result of ${e.from}` : e.kind === "answer" ? `the answer uses ${e.from}` : `${e.to} runs after ${e.from}`));
  });
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const nodes = all.map((n) => {
    const c = corner(n.id);
    if (n.answer) {
      return s("g", { class: "node answer-node", transform: `translate(${c.x},${c.y})`, dataset: { node: "answer" } },
        s("title", {}, `The answer: ${graph.answer.text}`),
        s("rect", { width: NW, height: NH, rx: 8 }),
        s("text", { x: 10, y: 19, class: "node-id" }, "Answer"),
        s("text", { x: 10, y: 36, class: "node-sub" }, fit(`from ${graph.answer.from.join(", ") || "the steps"}`, SUB_FONT, NW - 18)));
    }
    const st = byId.get(n.id).step;
    const pick = () => onPick && onPick(n.id);
    return s("g", { class: `node${n.carried ? " carried" : ""}`, transform: `translate(${c.x},${c.y})`, dataset: { step: n.id, status: st.status, tip: tip(n) },
      tabindex: 0, role: "button", "aria-label": `step ${n.id}, ${st.status}`, onclick: pick, onkeydown: (e) => { if (e.key === "Enter") pick(); } },
      s("title", {}, tip(n)),
      s("rect", { width: NW, height: NH, rx: 8 }),
      s("text", { x: 10, y: 19, class: "node-id" }, fit(n.id, ID_FONT, NW - 32)),
      s("text", { x: 10, y: 36, class: "node-sub" }, fit(subOf(n), SUB_FONT, NW - 18)),
      s("circle", { cx: NW - 12, cy: 12, r: 5, class: "node-dot" }));
  });
  const svg = s("svg", { viewBox: `0 0 ${size.W} ${size.H}`, width: size.W, height: size.H, class: "dag", role: "group", "aria-label": "plan graph",
    dataset: { layout: vertical ? "vertical" : "horizontal" } },
    s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 6, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }))),
    paths, nodes);
  return h("div", { class: "dag-wrap" }, svg, hiddenNote(graph));
}

// drawList is the graph for a narrow screen: the steps layer by layer,
// each saying what it waits for and whose results it uses.
function drawList(graph, L, onPick) {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const items = [];
  for (const ids of L.layers) {
    for (const id of ids) {
      if (id === ANSWER) continue;
      const n = byId.get(id);
      const deps = graph.edges.filter((e) => e.to === id && e.kind === "dep").map((e) => e.from);
      const refs = graph.edges.filter((e) => e.to === id && e.kind === "ref").map((e) => e.from);
      const pick = () => onPick && onPick(id);
      items.push(h("li", { class: `plan-item${n.carried ? " carried" : ""}`, dataset: { step: id, status: n.step.status, tip: tip(n) }, title: tip(n),
        tabindex: 0, role: "button", onclick: pick, onkeydown: (e) => { if (e.key === "Enter") pick(); } },
        h("span", { class: "plan-dot", "aria-hidden": "true" }),
        h("span", { class: "plan-id" }, id),
        h("span", { class: "plan-sub" }, subOf(n)),
        deps.length ? h("span", { class: "plan-deps" }, "after ", deps.join(", ")) : null,
        refs.length ? h("span", { class: "plan-deps" }, "uses ", refs.join(", ")) : null));
    }
  }
  if (graph.answer) {
    items.push(h("li", { class: "plan-item answer-node", dataset: { node: "answer" }, title: graph.answer.text },
      h("span", { class: "plan-id" }, "Answer"),
      h("span", { class: "plan-deps" }, "from ", graph.answer.from.join(", ") || "the steps")));
  }
  return h("div", { class: "dag-wrap" }, h("ol", { class: "plan-list", "aria-label": "plan steps in order" }, items), hiddenNote(graph));
}

function hiddenNote(graph) {
  if (!graph.hidden.length) return null;
  return h("p", { class: "muted plan-hidden" }, "Not in the final plan: ",
    graph.hidden.map((st, i) => [i ? ", " : "", h("span", { title: st.error || "" }, `${st.step_id} (${st.status})`)]));
}

// setNodeStatus changes one node's state in place (from a step.status event).
export function setNodeStatus(root, stepID, status) {
  for (const el of root.querySelectorAll("[data-step]")) {
    if (el.dataset.step !== stepID) continue;
    el.dataset.status = status;
    const t = el.dataset.tip ? el.dataset.tip.replace(/status: .*$/, `status: ${status}`) : null;
    if (t) {
      el.dataset.tip = t;
      const title = el.querySelector(":scope > title");
      if (title) title.textContent = t; else el.title = t;
    }
    if (el.getAttribute("aria-label")) el.setAttribute("aria-label", `step ${stepID}, ${status}`);
  }
}

// timelineRows lists what the timeline shows: the planning phase and each
// planner call, then each step, then the answer, with start and end times
// in ms (end null while it goes on).
export function timelineRows(detail, planning, calls) {
  const rows = [];
  if (!isNaN(planning.start) && planning.status !== "queued") {
    rows.push({ key: "planning", label: "Planning", title: planning.reasons.join("\n"), start: planning.start, end: planning.end, status: planning.status === "done" ? "done" : planning.status });
    planning.calls.forEach((c, i) => rows.push({ key: `call-${i + 1}`, sub: true, label: `${purposeLabel(c.purpose)} · ${c.model}`,
      title: `${c.purpose} by ${c.model} (${c.location}): ${c.prompt_tokens} in, ${c.output_tokens} out${c.error ? "\nfailed: " + c.error : ""}`,
      start: callStart(c), end: callEnd(c), status: c.error ? "failed" : "done" }));
  }
  const steps = [...(detail.steps || [])].filter((st) => st.started_at)
    .sort((a, b) => Date.parse(a.started_at) - Date.parse(b.started_at));
  for (const st of steps) {
    rows.push({ key: st.step_id, step: true, label: st.step_id, title: `${st.step_id}${st.tool ? " · tool " + st.tool : ""}: ${st.status}${st.error ? "\n" + st.error : ""}`,
      start: Date.parse(st.started_at), end: st.finished_at ? Date.parse(st.finished_at) : (["running", "waiting_approval"].includes(st.status) ? null : Date.parse(st.started_at)), status: st.status });
  }
  calls.filter((c) => !c.step_id && c.purpose === "synthesize").forEach((c, i) => rows.push({ key: i ? `answer-${i + 1}` : "answer",
    label: "Answer", title: `synthesize by ${c.model}`, start: callStart(c), end: callEnd(c), status: c.error ? "failed" : "done" }));
  return rows;
}

// timeline draws rows as bars over a shared time axis: HTML, so labels
// wrap and stay at their size on any screen.
export function timeline(rows, now = Date.now()) {
  const started = rows.filter((r) => !isNaN(r.start));
  if (!started.length) return h("div", { class: "chart-empty" }, "Nothing has started yet.");
  const t0 = Math.min(...started.map((r) => r.start));
  const end = (r) => (r.end === null || isNaN(r.end) ? now : r.end);
  const t1 = Math.max(t0 + 1, ...started.map(end));
  const pct = (t) => (100 * (t - t0)) / (t1 - t0);
  const list = h("ol", { class: "timeline", "aria-label": "timeline" },
    started.map((r) => {
      const bar = h("span", { class: `tl-bar st-${r.status}`, title: `${r.label}: ${fmtDur(end(r) - r.start)}` });
      bar.style.left = `${pct(r.start).toFixed(2)}%`;
      bar.style.width = `max(3px, ${(pct(end(r)) - pct(r.start)).toFixed(2)}%)`;
      return h("li", { class: `tl-row${r.sub ? " tl-sub" : ""}${r.step ? " tl-step" : ""}`, dataset: { row: r.key, status: r.status } },
        h("span", { class: "tl-label", title: r.title || r.label }, r.label),
        h("span", { class: "tl-track" }, bar),
        h("span", { class: "tl-dur" }, r.end === null ? `${fmtDur(end(r) - r.start)}…` : fmtDur(end(r) - r.start)));
    }));
  const axis = h("div", { class: "tl-axis", "aria-hidden": "true" }, h("span", {}, "0"), h("span", {}, fmtDur(t1 - t0)));
  return h("div", { class: "timeline-wrap" }, list, axis);
}
