// agentd's dashboard: a hash-routed single page over the JSON API and the
// live event stream.
import { get, post, AuthError, EventStream } from "./api.js";
import { h, clear, fmtBytes, fmtUSD, fmtPct, fmtTime, fmtDur, badge, card } from "./dom.js";
import { gauge, lineChart, History } from "./charts.js";
import { dag, planGraph, timeline, timelineRows, setNodeStatus } from "./dag.js";
import { planningOf, workflowOf, mergeCalls, callFromEvent, isAnswerCall, purposeLabel } from "./planning.js";
import { templatesPage, templatePage, templateUse } from "./templates.js";

const view = document.getElementById("view");
const state = {
  hist: new History(360),
  linkHist: new History(360),
  stream: null,
  cleanup: [],
  approvals: 0,
  demoExamples: [],
  // A demo example picked in the banner, for the submit form to fill in.
  example: "",
};

// ---- plumbing ---------------------------------------------------------

function setConn(st) {
  const el = document.getElementById("conn");
  el.textContent = st;
  el.dataset.state = st;
}

function onEvent(fn) {
  const off = state.stream.on(fn);
  state.cleanup.push(off);
}

function every(ms, fn) {
  const id = setInterval(fn, ms);
  state.cleanup.push(() => clearInterval(id));
}

// debounce coalesces bursts of events into one refresh.
function debounce(fn, ms = 250) {
  let t = null;
  const d = () => { clearTimeout(t); t = setTimeout(fn, ms); };
  state.cleanup.push(() => clearTimeout(t));
  return d;
}

function errorBox(err) {
  return h("div", { class: "error-box", role: "alert" }, err.message || String(err));
}

async function guard(fn) {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AuthError) { showLogin(); return undefined; }
    throw err;
  }
}

// ---- login ------------------------------------------------------------

function showLogin(message) {
  state.stream?.stop();
  state.stream = null;
  for (const id of ["nav", "logout", "conn"]) document.getElementById(id).hidden = true;
  teardown();
  const input = h("input", { id: "login-token", type: "password", autocomplete: "current-password", required: true, placeholder: "agd_…", "aria-label": "API token" });
  const msg = h("div", { class: "login-msg", role: "status" }, message || "");
  const form = h("form", { class: "login card", id: "login-form" },
    h("h1", {}, "Sign in to agentd"),
    h("p", {}, "Paste the API token. Print it on the appliance with ", h("code", {}, "agentd token"),
      " (it finds the running daemon's, the demo's included; on a packaged install: ", h("code", {}, "sudo -u agentd agentd token"), ")."),
    input,
    h("button", { type: "submit", id: "login-submit" }, "Sign in"),
    msg);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    msg.textContent = "";
    try {
      await post("/api/v1/login", { token: input.value.trim() });
      start();
    } catch (err) {
      msg.textContent = err.message;
      msg.classList.add("bad");
    }
  });
  clear(view).append(h("div", { class: "login-wrap" }, form));
  input.focus();
}

document.getElementById("logout").addEventListener("click", async () => {
  await post("/api/v1/logout").catch(() => {});
  showLogin("Signed out.");
});

// ---- routing ----------------------------------------------------------

function teardown() {
  for (const f of state.cleanup.splice(0)) f();
}

async function route() {
  if (!state.stream) return;
  teardown();
  const [, page, arg] = (location.hash || "#/overview").split("/");
  const parent = { run: "runs", template: "templates" }[page];
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === page || a.dataset.nav === parent);
  clear(view);
  // The template pages live in templates.js; they get what they share
  // with the rest of the app.
  const ui = { guard, errorBox, debounce, onEvent };
  const views = {
    overview, runs, run: runPage, approvals, egress, submit,
    templates: () => templatesPage(view, ui), template: (id) => templatePage(view, ui, id),
  };
  try {
    await guard(() => (views[page] || overview)(arg ? decodeURIComponent(arg) : undefined));
  } catch (err) {
    view.append(errorBox(err));
  }
}

async function start() {
  try {
    await get("/api/v1/session");
  } catch (err) {
    if (err instanceof AuthError) return showLogin();
    clear(view).append(errorBox(err));
    return;
  }
  for (const id of ["nav", "logout", "conn"]) document.getElementById(id).hidden = false;
  state.statusLoaded = get("/api/v1/status").then(setDemo).catch(() => {});
  state.stream = new EventStream(setConn);
  state.stream.on(globalEvent);
  state.stream.start();
  refreshApprovalCount();
  route();
}

// globalEvent keeps what every page shows (demo banner, approvals count,
// history) current, whatever page is open.
function globalEvent(ev) {
  if (ev.type === "approval.requested" || ev.type === "approval.decided") refreshApprovalCount();
  if (ev.type === "gpu.sample" && ev.data) recordSample(ev.data, Date.parse(ev.time));
  if (ev.type === "link.state" && ev.data) state.linkHist.add("bps", Date.parse(ev.time), ev.data.throughput_bps);
  if (ev.type === "daemon.state" && ev.data) setDemo({ demo: ev.data.demo });
}

async function refreshApprovalCount() {
  try {
    const r = await get("/api/v1/approvals");
    const n = r.approvals.length;
    const el = document.getElementById("approvals-count");
    el.textContent = n;
    el.hidden = n === 0;
  } catch { /* the page itself reports errors */ }
}

// setDemo shows the demo banner, with the scripted examples as chips, from
// a status (or a daemon.state event, which carries no examples).
function setDemo(st) {
  const on = !!st.demo;
  if (st.demo_examples) state.demoExamples = st.demo_examples;
  const banner = document.getElementById("demo-banner");
  banner.hidden = !on;
  document.body.classList.toggle("demo", on);
  const box = document.getElementById("demo-examples");
  if (on && state.demoExamples.length && !box.childElementCount) {
    box.append(h("span", { class: "chips-label" }, "Try:"), exampleChips((ex) => {
      state.example = ex.request;
      if (location.hash.startsWith("#/submit")) fillExample(ex.request); else location.hash = "#/submit";
    }));
  }
  box.hidden = !on || !state.demoExamples.length;
}

// exampleChips are one button per scripted demo request.
function exampleChips(onPick) {
  return h("span", { class: "chips" }, state.demoExamples.map((ex) => h("button", {
    type: "button", class: "chip", dataset: { example: ex.name }, title: ex.request, "aria-label": `${ex.name.replaceAll("_", " ")}: ${ex.request}`,
    onclick: () => onPick(ex),
  }, ex.name.replaceAll("_", " "))));
}

function fillExample(text) {
  const box = document.getElementById("submit-request");
  if (!box) return;
  box.value = text;
  box.focus();
  state.example = "";
}

function recordSample(sm, t) {
  (sm.gpus || []).forEach((g, i) => {
    if (g.memory_used_bytes != null) state.hist.add(`vram${i}`, t, g.memory_used_bytes);
    if (g.utilization_percent != null) state.hist.add(`util${i}`, t, g.utilization_percent);
  });
  if (sm.host) {
    state.hist.add("cpu", t, sm.host.cpu_percent);
    state.hist.add("mem", t, sm.host.memory_used_percent);
  }
}

// ---- overview ---------------------------------------------------------

// seedHistory fills the charts from the samples the daemon kept, once.
async function seedHistory() {
  if (state.seeded) return;
  state.seeded = true;
  try {
    const { points } = await get("/api/v1/history/gpu?minutes=30");
    for (const p of points) {
      const t = Date.parse(p.time);
      state.hist.add(`vram${p.gpu}`, t, p.memory_used_bytes);
      state.hist.add(`util${p.gpu}`, t, p.utilization_percent);
    }
  } catch (err) {
    if (err instanceof AuthError) throw err;
    // No history kept (404): the charts fill as samples arrive.
  }
}

async function overview() {
  const root = h("div", { class: "grid overview" });
  view.append(h("h1", {}, "Overview"), root);
  await seedHistory();
  const draw = async () => {
    const [st, budgets, res, link, provider] = await Promise.all([
      get("/api/v1/status"),
      get("/api/v1/budgets").catch((e) => (e.status === 404 ? null : Promise.reject(e))),
      get("/api/v1/residency").catch((e) => (e.status === 404 ? null : Promise.reject(e))),
      get("/api/v1/link"),
      get("/api/v1/fallback/provider"),
    ]);
    setDemo(st);
    const hw = st.hardware || {};
    const now = Date.now();
    if (hw.time) recordSample(hw, Date.parse(hw.time) || now);
    state.linkHist.add("bps", Date.parse(link.last_measured_at) || now, link.throughput_bps);
    clear(root).append(
      gpuCard(hw), hostCard(hw), modelsCard(res, hw), linkCard(link), budgetCard(budgets, provider, draw), runsCard(st.runs || {}));
  };
  await draw();
  every(5000, () => guard(draw).catch((e) => console.error(e)));
}

function gpuCard(hw) {
  const gpus = hw.gpus || [];
  if (!gpus.length) {
    return card("GPU", h("p", { class: "muted" }, hw.gpu_error || "No GPU detected: models run on the CPU."));
  }
  const gauges = gpus.map((g, i) => h("div", { class: "gpu" },
    h("div", { class: "gpu-name" }, g.name || `GPU ${i}`,
      g.simulated ? h("span", { class: "badge simulated", title: "The demo's simulated GPU: these numbers are not measured" }, "simulated") : null),
    h("div", { class: "gauges" },
      gauge({ name: `vram${i}`, label: "VRAM", value: g.memory_used_bytes, max: g.memory_total_bytes, marks: [70, 90, 100],
        detail: `${fmtBytes(g.memory_used_bytes)} / ${fmtBytes(g.memory_total_bytes)}` }),
      gauge({ name: `util${i}`, label: "Load", value: g.utilization_percent, max: 100, marks: [90, 101, 102] }),
      gauge({ name: `temp${i}`, label: "Temp", value: g.temperature_c, max: 100, text: g.temperature_c != null ? `${Math.round(g.temperature_c)}°C` : "–", marks: [75, 85, 95] }))));
  const series = gpus.map((g, i) => ({ name: `${g.name || "GPU " + i} VRAM`, cls: `s${i}`, points: state.hist.get(`vram${i}`) }));
  const total = Math.max(...gpus.map((g) => g.memory_total_bytes || 0));
  return card("GPU", gauges, h("h3", {}, "VRAM history"), lineChart(series, { ymax: total || undefined, yfmt: fmtBytes, label: "VRAM history" }));
}

function hostCard(hw) {
  const host = hw.host;
  if (!host) return card("Host", h("p", { class: "muted" }, hw.host_error || "No host sample yet."));
  return card("Host",
    h("div", { class: "gauges" },
      gauge({ name: "cpu", label: "CPU", value: host.cpu_percent, max: 100, marks: [70, 90, 100] }),
      gauge({ name: "mem", label: "Memory", value: host.memory_used_percent, max: 100, marks: [70, 85, 95],
        detail: `${fmtBytes(host.memory_used_bytes)} / ${fmtBytes(host.memory_total_bytes)}` })),
    host.load ? h("p", { class: "muted" }, `Load ${host.load.load1.toFixed(2)} · ${host.load.load5.toFixed(2)} · ${host.load.load15.toFixed(2)}`) : null,
    (host.warnings || []).map((w) => h("p", { class: "warn-text" }, w)),
    lineChart([{ name: "CPU %", cls: "s0", points: state.hist.get("cpu") }, { name: "Memory %", cls: "s1", points: state.hist.get("mem") }],
      { ymax: 100, yfmt: (v) => `${Math.round(v)}%`, label: "host history", height: 120 }));
}

function modelsCard(res, hw) {
  if (!res) return card("Loaded models", h("p", { class: "muted" }, "Residency is not reported."));
  const vramTotal = (hw.gpus || []).reduce((a, g) => a + (g.memory_total_bytes || 0), 0);
  if (!res.models.length) return card("Loaded models", h("p", { class: "muted" }, "No model is loaded in Ollama."));
  const rows = res.models.map((m) => {
    const share = vramTotal ? (100 * m.vram_bytes) / vramTotal : 0;
    const spill = m.size_bytes > 0 && m.vram_bytes < m.size_bytes;
    const cpuPct = spill ? Math.round((100 * (m.size_bytes - m.vram_bytes)) / m.size_bytes) : 0;
    const bar = h("div", { class: "bar-track" }, h("div", { class: "bar-fill" }));
    bar.firstChild.style.width = `${Math.min(100, share).toFixed(1)}%`;
    return h("tr", { dataset: { model: m.name } },
      h("td", {}, m.name, spill ? h("div", { class: "spill", role: "alert" }, `⚠ ${cpuPct}% on CPU — slow; free VRAM or use a smaller model`) : null),
      h("td", { class: "num" }, fmtBytes(m.vram_bytes)),
      h("td", { class: "share" }, bar, h("span", { class: "muted" }, vramTotal ? fmtPct(share) : "–")));
  });
  return card("Loaded models", h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "Model"), h("th", { class: "num" }, "VRAM"), h("th", {}, "Share of VRAM"))),
    h("tbody", {}, rows))));
}

function linkCard(link) {
  const pts = state.linkHist.get("bps");
  return card("Remote link",
    h("p", {}, h("span", { class: `badge link-${link.state}`, id: "link-state" }, link.state),
      link.state !== "disabled" ? ` RTT ${Math.round(link.rtt_ms || 0)} ms · ${fmtBytes(link.throughput_bps)}/s` : ""),
    link.reason ? h("p", { class: "muted" }, link.reason) : null,
    link.state === "disabled" ? null : lineChart([{ name: "throughput", cls: "s2", points: pts }],
      { yfmt: (v) => `${fmtBytes(v)}/s`, label: "bandwidth history", height: 110, empty: "Bandwidth is charted as it is measured." }));
}

// providerNotice shows a remote provider suspended for billing past its
// reservation, with the one way back: a person re-enables it.
function providerNotice(p, redraw) {
  if (!p || !p.provider) return null;
  if (!p.suspended) {
    return h("p", { class: "muted", id: "provider-state" }, `Provider ${p.provider} enabled · ${p.in_flight} of ${p.max_in_flight} calls in flight`);
  }
  const btn = h("button", { type: "button", class: "danger", id: "provider-enable" }, "Re-enable provider");
  const box = h("div", { class: "alert", role: "alert", id: "provider-state", dataset: { state: "suspended" } },
    h("b", {}, `Remote provider ${p.provider} suspended`), ` since ${fmtTime(p.suspended_at)}: ${p.reason}. `,
    "No remote call is made until a person re-enables it. ", btn);
  btn.onclick = async () => {
    btn.disabled = true;
    try { await guard(() => post("/api/v1/fallback/provider", { enabled: true })); await redraw(); } catch (err) { box.append(errorBox(err)); btn.disabled = false; }
  };
  return box;
}

function budgetCard(b, provider, redraw) {
  if (!b) return card("Remote budget", h("p", { class: "muted" }, "Remote fallback is off: nothing is spent."));
  const fmt = (c, v) => (c.unit === "usd" ? fmtUSD(v) : fmtBytes(v));
  const gauges = b.caps.map((c) => gauge({
    name: c.name, label: `${c.unit === "usd" ? "USD" : "Bytes"} / ${c.period}`,
    value: c.cap > 0 ? c.spent + c.reserved : null, max: c.cap, marks: [50, 80, 100],
    text: c.cap > 0 ? fmtPct((100 * (c.spent + c.reserved)) / c.cap) : "no cap",
    detail: `${fmt(c, c.spent)}${c.reserved ? " + " + fmt(c, c.reserved) + " reserved" : ""} of ${c.cap > 0 ? fmt(c, c.cap) : "∞"}`,
  }));
  const sv = b.savings || {};
  return card("Remote budget",
    providerNotice(provider, redraw),
    (b.alerts || []).map((a) => h("div", { class: "alert", role: "alert" }, a)),
    h("div", { class: "gauges" }, gauges),
    h("p", { class: "savings", id: "savings" }, `Saved ${fmtUSD(sv.saved_usd)} over ${sv.runs || 0} runs: `,
      h("span", { class: "muted" }, `${fmtUSD(sv.cost_usd)} spent vs ${fmtUSD(sv.remote_only_usd)} had every call gone to the remote model`)));
}

function runsCard(counts) {
  const order = ["queued", "planning", "running", "waiting_approval", "deferred", "review", "done", "partial", "failed", "canceled"];
  return card("Runs", h("div", { class: "counts" },
    order.filter((k) => counts[k]).map((k) => h("a", { class: "count-chip", href: `#/runs/?status=${k}` }, badge(k), h("b", {}, counts[k]))),
    Object.keys(counts).length ? null : h("p", { class: "muted" }, "No runs yet.")),
  h("p", {}, h("a", { href: "#/submit" }, "Submit a request →")));
}

// ---- runs -------------------------------------------------------------

async function runs() {
  const filter = h("select", { id: "runs-filter", "aria-label": "status filter" },
    ["", "queued,planning,running,waiting_approval", "waiting_approval", "done", "partial", "failed", "canceled", "review", "deferred"]
      .map((v) => h("option", { value: v }, v === "" ? "all" : v.includes(",") ? "active" : v.replace("_", " "))));
  const fromHash = new URLSearchParams(location.hash.split("?")[1] || "").get("status");
  if (fromHash) filter.value = fromHash;
  const body = h("tbody", { id: "runs-body" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Older runs");
  let next = "";
  view.append(h("div", { class: "page-head" }, h("h1", {}, "Runs"), filter),
    h("div", { class: "card" }, h("table", { class: "runs" },
      h("thead", {}, h("tr", {}, h("th", {}, "Run"), h("th", {}, "Status"), h("th", {}, "Request"), h("th", {}, "Route"),
        h("th", {}, "Created"), h("th", { class: "num" }, "Took"), h("th", { class: "num" }, "Cost"))), body)), more);
  // On a phone each row is a card (style.css): status, request, time and
  // cost stay readable without scrolling sideways.
  const row = (r) => h("tr", { dataset: { run: r.id, status: r.status } },
    h("td", { class: "run-id" }, h("a", { href: `#/run/${encodeURIComponent(r.id)}`, "aria-label": `run ${r.id}` }, r.id)),
    h("td", { class: "run-status" }, badge(r.status), r.degraded ? h("span", { class: "badge degraded" }, "degraded") : null),
    h("td", { class: "req", title: r.request }, r.request.length > 240 ? r.request.slice(0, 239) + "…" : r.request),
    h("td", { class: "run-route", dataset: { label: "Route" } }, r.route || r.planner || ""),
    h("td", { class: "run-created", dataset: { label: "Created" } }, fmtTime(r.created_at)),
    h("td", { class: "num run-took", dataset: { label: "Took" } }, r.started_at ? fmtDur((r.finished_at ? Date.parse(r.finished_at) : Date.now()) - Date.parse(r.started_at)) : "–"),
    h("td", { class: "num run-cost", dataset: { label: "Cost" } }, fmtUSD(r.cost_usd)));
  const load = async (append) => {
    const q = new URLSearchParams({ limit: "50" });
    if (filter.value) q.set("status", filter.value);
    if (append && next) q.set("before", next);
    const page = await get(`/api/v1/runs?${q}`);
    if (!append) clear(body);
    body.append(...page.runs.map(row));
    if (!body.children.length) body.append(h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No runs.")));
    next = page.next_before || "";
    more.hidden = !next;
  };
  filter.addEventListener("change", () => guard(() => load(false)));
  more.addEventListener("click", () => guard(() => load(true)));
  const refresh = debounce(() => guard(() => load(false)));
  onEvent((ev) => { if (ev.type === "run.created" || ev.type === "run.status") refresh(); });
  await load(false);
}

// ---- one run ----------------------------------------------------------

const TERMINAL = ["done", "partial", "failed", "canceled"];

async function runPage(id) {
  const head = h("div", { class: "page-head" });
  const dagBox = h("div", { id: "dag" });
  const ganttBox = h("div", { id: "gantt" });
  const stepsBox = h("div", { id: "steps" });
  const info = h("div", {});
  view.append(head, info, card("Plan", dagBox), card("Timeline", ganttBox), card("Steps", stepsBox));
  const pick = (sid) => {
    const d = stepsBox.querySelector(`details[data-step="${CSS.escape(sid)}"]`);
    if (d) { d.open = true; d.scrollIntoView({ behavior: "smooth", block: "nearest" }); }
  };
  let detail = null;
  // Model calls seen on the event stream: they show (tokens, planner
  // progress) before the next fetch has them.
  const live = [];
  const calls = () => mergeCalls(detail.model_calls, live);

  const drawTimeline = () => {
    const cs = calls();
    clear(ganttBox).append(timeline(timelineRows(detail, planningOf(detail, cs), cs)));
  };
  const drawInfo = () => {
    const r = detail.run;
    const cs = calls();
    const cancel = h("button", { type: "button", class: "danger", id: "cancel-run" }, "Cancel run");
    cancel.hidden = TERMINAL.includes(r.status);
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      try { await guard(() => post(`/api/v1/runs/${encodeURIComponent(id)}/cancel`)); } catch (err) { info.prepend(errorBox(err)); }
    });
    clear(head).append(h("h1", {}, "Run ", h("code", { class: "run-title" }, r.id)), h("span", { id: "run-status" }, badge(r.status)), cancel);
    const tokens = cs.reduce((a, c) => a + c.prompt_tokens + c.output_tokens, 0);
    const wf = workflowOf(r);
    const start = r.started_at || r.created_at;
    clear(info).append(h("div", { class: "card run-info" },
      h("p", { class: "request" }, r.request),
      h("dl", { class: "facts" },
        fact("Workflow", wf ? [wf.name, wf.how ? h("span", { class: "muted" }, ` (${wf.how})`) : null] : "—", "fact-workflow"),
        fact("Planner", `${r.planner}${r.route ? " → " + r.route : ""}`),
        fact("Plan", detail.plan_version ? `v${detail.plan_version} ${detail.plan_source || ""} ${detail.plan_model || ""}` : "—"),
        fact("Created", fmtTime(r.created_at)),
        fact("Duration", start ? fmtDur((r.finished_at ? Date.parse(r.finished_at) : Date.now()) - Date.parse(start)) : "—", "fact-duration"),
        fact("Tokens", tokens.toLocaleString(), "fact-tokens"), fact("Cost", fmtUSD(r.cost_usd)),
        fact("Remote-only cost", fmtUSD(r.remote_only_usd)), r.degraded ? fact("Degraded", "yes") : null,
        // The OpenTelemetry trace of the run, when traces are exported: the
        // id to look it up by in the collector's UI.
        r.trace_id ? fact("Trace", h("code", {}, `trace ${r.trace_id}`), "fact-trace") : null),
      templateUse(r.template),
      r.answer ? h("div", { class: "answer", id: "run-answer" }, h("h3", {}, "Answer"), h("pre", {}, r.answer)) : null,
      r.error ? h("div", { class: "error-box" }, r.error) : null));
  };
  const drawPlan = () => {
    const cs = calls();
    const planning = planningOf(detail, cs);
    const graph = planGraph(detail);
    if (graph.nodes.length) {
      clear(dagBox).append(dag(graph, pick, dagBox.clientWidth));
      return;
    }
    clear(dagBox).append(planningState(detail, planning));
  };
  const drawSteps = () => {
    const cs = calls();
    const planning = planningOf(detail, cs);
    // Keep the sections a person opened open across live redraws.
    const key = (d) => d.dataset.step || d.dataset.phase;
    const first = !stepsBox.childElementCount;
    const open = new Set([...stepsBox.querySelectorAll("details[open]")].map(key));
    // Planning that is under way or went wrong is what a person came for.
    if (first && planning.status !== "done") open.add("planning");
    const answerCalls = cs.filter(isAnswerCall);
    clear(stepsBox).append(...[
      planningDetail(detail, planning),
      ...(detail.steps || []).map((st) => stepDetail(st, detail, cs)),
      answerCalls.length ? h("details", { class: "step", dataset: { phase: "answer" } },
        h("summary", {}, badge(answerCalls.some((c) => c.error) ? "failed" : "done"), h("b", {}, "Answer"),
          h("span", { class: "muted" }, " synthesis"), h("span", { class: "step-meta" }, callsMeta(answerCalls))),
        callsTable(answerCalls)) : null].filter(Boolean));
    for (const d of stepsBox.querySelectorAll("details")) if (open.has(key(d))) d.open = true;
  };
  const draw = () => { drawInfo(); drawPlan(); drawTimeline(); drawSteps(); };
  const load = async () => {
    detail = await get(`/api/v1/runs/${encodeURIComponent(id)}`);
    // A run still planning has no steps or calls yet.
    for (const k of ["steps", "attempts", "model_calls", "tool_calls", "approvals"]) detail[k] = detail[k] || [];
    draw();
  };
  // Listen before the first fetch: an event that lands between the fetch
  // and the listener would otherwise leave the page showing a stale run.
  const refresh = debounce(() => guard(load).catch((e) => console.error(e)), 200);
  onEvent((ev) => {
    if (ev.run_id !== id) return;
    if (ev.type === "step.status" && ev.data?.step_id) {
      setNodeStatus(dagBox, ev.data.step_id, ev.data.status);
    }
    if (ev.type === "model.call" && ev.data) {
      live.push(callFromEvent(ev));
      if (detail) draw();
    }
    // Before the first draw there is no badge yet; refresh() draws it.
    const badgeBox = ev.type === "run.status" && ev.data?.status ? document.getElementById("run-status") : null;
    if (badgeBox) clear(badgeBox).append(badge(ev.data.status));
    refresh();
  });
  await load();
  // Running bars and the planning clock grow with time.
  every(1000, () => {
    if (!detail || TERMINAL.includes(detail.run.status)) return;
    drawTimeline();
    const el = document.getElementById("planning-elapsed");
    if (el) el.textContent = fmtDur(Date.now() - planningOf(detail, calls()).start);
  });
  // The graph picks its layout from the width it has.
  let width = dagBox.clientWidth;
  const onResize = debounce(() => { if (detail && dagBox.clientWidth !== width) { width = dagBox.clientWidth; drawPlan(); } }, 150);
  window.addEventListener("resize", onResize);
  state.cleanup.push(() => window.removeEventListener("resize", onResize));
}

function fact(k, v, id) { return h("div", { class: "fact", id }, h("dt", {}, k), h("dd", {}, v)); }

function callsMeta(calls) {
  const tokens = calls.reduce((a, c) => a + c.prompt_tokens + c.output_tokens, 0);
  const cost = calls.reduce((a, c) => a + (c.cost_usd || 0), 0);
  return [`${calls.length} call${calls.length === 1 ? "" : "s"}`, tokens ? `${tokens.toLocaleString()} tok` : "", cost ? fmtUSD(cost) : ""].filter(Boolean).join(" · ");
}

// callsTable lists model calls; on a phone each row stacks (style.css).
function callsTable(calls, withPurpose) {
  if (!calls.length) return null;
  const cols = [withPurpose ? "For" : null, "Model", "Where", "Try", "In", "Out", "Time", "Cost", "Ended"].filter(Boolean);
  const num = new Set(["Try", "In", "Out", "Time", "Cost"]);
  return h("table", { class: "small calls stack" },
    h("thead", {}, h("tr", {}, cols.map((c) => h("th", { class: num.has(c) ? "num" : undefined }, c)))),
    h("tbody", {}, calls.map((c) => {
      const cell = (label, v, cls) => h("td", { class: cls, dataset: { label } }, v);
      return h("tr", { class: c.error ? "call-failed" : "", dataset: { purpose: c.purpose || "" } },
        withPurpose ? cell("For", purposeLabel(c.purpose), "call-purpose") : null,
        cell("Model", c.model, "call-model"), cell("Where", c.location), cell("Try", c.attempt || 1, "num"),
        cell("In", c.prompt_tokens, "num"), cell("Out", c.output_tokens, "num"), cell("Time", fmtDur(c.wall_ms || c.total_ms), "num"),
        cell("Cost", fmtUSD(c.cost_usd), "num"),
        h("td", { class: "call-end", dataset: { label: "Ended" }, title: c.error || "" }, c.error ? "failed: " + c.error : (c.done_reason || (c.live ? "done" : ""))));
    })));
}

// planningState stands in for the graph until there is a plan: what the
// planner is doing, or why there is no plan.
function planningState(detail, p) {
  const r = detail.run;
  const tokens = p.tokens.toLocaleString();
  const n = p.calls.length;
  const callsText = `${n} planner call${n === 1 ? "" : "s"} · ${tokens} tokens`;
  const last = p.calls[n - 1];
  if (p.status === "queued") return h("div", { class: "chart-empty", id: "planning-live", dataset: { calls: n } }, "Queued: planning starts when the executor admits the run.");
  if (p.status === "running") {
    return h("div", { class: "planning-state", id: "planning-live", role: "status", dataset: { calls: n } },
      h("p", {}, badge("planning"), " Planning for ", h("span", { id: "planning-elapsed" }, fmtDur(Date.now() - p.start)), ` · ${callsText}`),
      last ? h("p", { class: "muted" }, `Last: ${purposeLabel(last.purpose)} by ${last.model}${last.error ? " — failed: " + last.error : ""}`) : h("p", { class: "muted" }, "Routing the request…"));
  }
  if (p.status === "deferred") {
    return h("div", { class: "planning-state", id: "planning-live", dataset: { calls: n } },
      h("p", {}, badge("deferred"), " Waiting for the remote planner. ", h("span", { class: "muted" }, callsText)),
      p.reasons.length ? h("p", { class: "muted" }, p.reasons[p.reasons.length - 1]) : null);
  }
  if (p.status === "failed" || p.status === "canceled") {
    return h("div", { class: "planning-state", id: "planning-live", dataset: { calls: n } },
      h("p", {}, badge(p.status), ` Planning ${p.status === "failed" ? "failed" : "was canceled"} after ${p.end !== null ? fmtDur(p.end - p.start) : "–"} · ${callsText}. No plan was made.`),
      h("p", { class: "muted" }, "The planning record below lists each planner call and the route taken."));
  }
  return h("div", { class: "chart-empty", id: "planning-live", dataset: { calls: n } },
    r.route === "scratchpad" ? "Scratchpad mode: this run works step by step without a plan." : "The plan has no steps.");
}

// planningDetail is the planning phase as the first entry of the step
// list: the router's decision, every planner call, and the plans made.
function planningDetail(detail, p) {
  const r = detail.run;
  const plans = detail.plans || (detail.plan_version ? [{ version: detail.plan_version, source: detail.plan_source, model: detail.plan_model }] : []);
  const dur = p.end !== null && !isNaN(p.start) ? fmtDur(p.end - p.start) : !isNaN(p.start) && p.status === "running" ? fmtDur(Date.now() - p.start) + "…" : "";
  const status = { running: "planning", done: "done", failed: "failed", deferred: "deferred", queued: "queued", canceled: "canceled" }[p.status];
  return h("details", { class: "step planning", dataset: { phase: "planning", status } },
    h("summary", {}, badge(status), h("b", {}, "Planning"),
      h("span", { class: "muted" }, ` ${r.planner || "auto"}${r.route ? " → " + r.route : ""}`),
      h("span", { class: "step-meta" }, [callsMeta(p.calls), dur].filter(Boolean).join(" · "))),
    p.reasons.length ? h("div", {}, h("h4", {}, "Route"), h("ul", { class: "reasons" }, p.reasons.map((x) => h("li", {}, x)))) : null,
    plans.length ? h("div", {}, h("h4", {}, "Plans"), h("ul", { class: "reasons" }, plans.map((pl) => h("li", {},
      `v${pl.version} ${pl.source || ""}${pl.model ? " by " + pl.model : ""}${pl.attempts ? ` · ${pl.attempts} planner call${pl.attempts === 1 ? "" : "s"}` : ""}`,
      (pl.errors || []).length ? h("span", { class: "muted" }, ` · met: ${pl.errors.join("; ")}`) : null)))) : null,
    p.calls.length ? h("div", {}, h("h4", {}, "Planner calls"), callsTable(p.calls, true)) : h("p", { class: "muted" }, { template: "A workflow template: no planner call.", cache: "A learned template: no planner call." }[r.route] || "No planner call yet."));
}

function stepDetail(st, detail, allCalls) {
  const calls = allCalls.filter((c) => c.step_id === st.step_id);
  const tools = (detail.tool_calls || []).filter((c) => c.step_id === st.step_id);
  const attempts = (detail.attempts || []).filter((a) => a.step_id === st.step_id);
  const appr = (detail.approvals || []).find((a) => a.step_id === st.step_id);
  const tokens = calls.reduce((a, c) => a + c.prompt_tokens + c.output_tokens, 0);
  const cost = calls.reduce((a, c) => a + c.cost_usd, 0);
  const what = st.tool ? `tool ${st.tool}` : `task${st.tier ? " (" + st.tier + ")" : ""}`;
  const carried = detail.plan_version > 0 && st.plan_version > 0 && st.plan_version < detail.plan_version;
  const dur = st.started_at && st.finished_at ? fmtDur(Date.parse(st.finished_at) - Date.parse(st.started_at)) : "";
  return h("details", { class: "step", dataset: { step: st.step_id, status: st.status } },
    h("summary", {}, badge(st.status), h("b", { class: "step-id" }, st.step_id), h("span", { class: "muted step-what" }, ` ${what}${carried ? ` · plan v${st.plan_version}` : ""}`),
      h("span", { class: "step-meta" }, [tokens ? `${tokens.toLocaleString()} tok` : "", cost ? fmtUSD(cost) : "", dur].filter(Boolean).join(" · "))),
    attempts.length ? h("div", { class: "rungs" }, "Ladder: ", attempts.map((a) => h("span", { class: `rung rung-${a.status}`, title: a.error || "" }, `${a.n}. ${a.rung}${a.error_class ? " (" + a.error_class + ")" : ""}`))) : null,
    callsTable(calls),
    tools.map((t) => h("p", { class: "muted" }, `${t.tool}: ${t.status}${t.exit_code != null ? " (exit " + t.exit_code + ")" : ""}`)),
    appr ? h("p", {}, "Approval: ", badge(appr.status), appr.decided_by ? ` by ${appr.decided_by}` : "", appr.reason ? ` — ${appr.reason}` : "") : null,
    st.args && JSON.stringify(st.args) !== "{}" ? h("div", {}, h("h4", {}, "Arguments"), h("pre", {}, JSON.stringify(st.args, null, 2))) : null,
    st.output ? h("div", {}, h("h4", {}, "Output"), h("pre", { class: "output" }, st.output)) : null,
    st.error ? h("div", { class: "error-box" }, st.error) : null);
}

// ---- approvals --------------------------------------------------------

async function approvals() {
  const box = h("div", { id: "approvals" });
  view.append(h("h1", {}, "Approvals"), box);
  const draw = async () => {
    const { approvals: list } = await get("/api/v1/approvals");
    clear(box);
    if (!list.length) { box.append(h("p", { class: "muted card" }, "Nothing is waiting for a decision.")); return; }
    for (const a of list) {
      const key = `${a.run_id}/${a.step_id}`;
      const reason = h("input", { type: "text", placeholder: "Reason (optional)", "aria-label": "reason", class: "reason" });
      const decide = (decision) => async () => {
        try {
          await guard(() => post(`/api/v1/approvals/${encodeURIComponent(a.run_id)}/${encodeURIComponent(a.step_id)}`, { decision, reason: reason.value }));
          await draw();
          refreshApprovalCount();
        } catch (err) { box.prepend(errorBox(err)); }
      };
      box.append(h("section", { class: "card approval", dataset: { approval: key } },
        h("h2", {}, h("code", {}, a.tool), " in ", h("a", { href: `#/run/${encodeURIComponent(a.run_id)}` }, a.run_id), ` / ${a.step_id}`),
        a.request ? h("p", { class: "request" }, a.request) : null,
        h("pre", {}, JSON.stringify(a.args ?? {}, null, 2)),
        h("p", { class: "muted" }, `Requested ${fmtTime(a.requested_at)} · a timeout denies it at ${fmtTime(a.expires_at)}`),
        h("div", { class: "actions" }, reason,
          h("button", { type: "button", class: "ok", dataset: { approve: key }, onclick: decide("approve") }, "Approve"),
          h("button", { type: "button", class: "danger", dataset: { deny: key }, onclick: decide("deny") }, "Deny"))));
    }
  };
  const refresh = debounce(() => guard(draw));
  onEvent((ev) => { if (ev.type === "approval.requested" || ev.type === "approval.decided") refresh(); });
  await draw();

  // The review queue: steps a crash or the failure ladder handed to a person.
  const rbox = h("div", { id: "reviews" });
  view.append(h("h1", {}, "Review queue"),
    h("p", { class: "muted" }, "Steps agentd will not retry on its own. Retry if the call did not take effect; mark it done (your note becomes its result) if it did; or give it up."),
    rbox);
  const drawReviews = async () => {
    let list;
    try {
      ({ reviews: list } = await get("/api/v1/reviews"));
    } catch (err) {
      if (err.status === 404) { clear(rbox).append(h("p", { class: "muted card" }, "The review queue is not available on this server.")); return; }
      throw err;
    }
    clear(rbox);
    if (!list.length) { rbox.append(h("p", { class: "muted card" }, "Nothing is waiting for review.")); return; }
    for (const it of list) {
      const key = `${it.run_id}/${it.step_id}`;
      const note = h("input", { type: "text", placeholder: "What you found (the result, for done)", "aria-label": "note", class: "reason" });
      const resolve = (action) => async () => {
        try {
          await guard(() => post(`/api/v1/reviews/${encodeURIComponent(it.run_id)}/${encodeURIComponent(it.step_id)}`, { action, note: note.value }));
          await drawReviews();
        } catch (err) { rbox.prepend(errorBox(err)); }
      };
      rbox.append(h("section", { class: "card approval", dataset: { review: key } },
        h("h2", {}, it.tool ? h("code", {}, it.tool) : null, it.tool ? " in " : "", h("a", { href: `#/run/${encodeURIComponent(it.run_id)}` }, it.run_id), ` / ${it.step_id}`),
        it.request ? h("p", { class: "request" }, it.request) : null,
        h("p", {}, it.reason),
        h("p", { class: "muted" }, `Since ${fmtTime(it.created_at)}`),
        h("div", { class: "actions" }, note,
          h("button", { type: "button", class: "secondary", dataset: { retry: key }, onclick: resolve("retry") }, "Retry"),
          h("button", { type: "button", class: "ok", dataset: { done: key }, onclick: resolve("done") }, "Mark done"),
          h("button", { type: "button", class: "danger", dataset: { fail: key }, onclick: resolve("fail") }, "Give up"))));
    }
  };
  const refreshReviews = debounce(() => guard(drawReviews));
  onEvent((ev) => { if (ev.type === "review.added" || ev.type === "review.resolved") refreshReviews(); });
  await guard(drawReviews);
}

// ---- egress -----------------------------------------------------------

async function egress() {
  const body = h("tbody", {});
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Older records");
  view.append(h("h1", {}, "Egress ledger"),
    h("p", { class: "muted" }, "Every byte that left this appliance: where, why, how much, the SHA-256 of the body, and what was redacted first."),
    h("div", { class: "table-wrap card" }, h("table", { id: "egress" },
      h("thead", {}, h("tr", {}, ["Time", "Run", "Destination", "Model", "Purpose", "Out", "In", "SHA-256", "Redactions", "Status"].map((c) => h("th", { class: c === "Out" || c === "In" ? "num" : undefined }, c)))),
      body)), more);
  let next = 0;
  const load = async () => {
    const q = new URLSearchParams({ limit: "50" });
    if (next) q.set("before", next);
    let page;
    try {
      page = await get(`/api/v1/egress?${q}`);
    } catch (err) {
      if (err.status === 404) { body.append(h("tr", {}, h("td", { colspan: 10, class: "muted" }, err.message))); return; }
      throw err;
    }
    body.append(...page.records.map((e) => h("tr", {},
      h("td", {}, fmtTime(e.time)), h("td", {}, e.run_id ? h("a", { href: `#/run/${encodeURIComponent(e.run_id)}` }, e.run_id) : "—"),
      h("td", {}, e.destination), h("td", {}, `${e.provider} ${e.model}`), h("td", {}, e.purpose),
      h("td", { class: "num" }, fmtBytes(e.bytes_out)), h("td", { class: "num" }, fmtBytes(e.bytes_in)),
      h("td", {}, h("code", { title: e.sha256 }, (e.sha256 || "").slice(0, 12))),
      h("td", {}, Object.entries(e.redactions || {}).map(([k, v]) => `${k}×${v}`).join(", ") || "none"),
      h("td", {}, badge(e.status)))));
    if (!body.children.length) body.append(h("tr", {}, h("td", { colspan: 10, class: "muted" }, "Nothing has left this appliance.")));
    next = page.next_before || 0;
    more.hidden = !next;
  };
  more.addEventListener("click", () => guard(load));
  await load();
}

// ---- submit -----------------------------------------------------------

async function submit() {
  const models = await get("/v1/models").catch(() => ({ data: [] }));
  const workflows = models.data.map((m) => m.id).filter((id) => id.startsWith("agentd:")).map((id) => id.slice(7));
  const msg = h("div", { role: "status" });
  const form = h("form", { class: "card submit", id: "submit-form" },
    h("label", { for: "submit-request" }, "Request"),
    h("textarea", { id: "submit-request", rows: 5, placeholder: "What should agentd do?" }),
    h("div", { class: "examples", id: "submit-examples", hidden: true }),
    h("div", { class: "row" },
      h("label", {}, "Workflow", h("select", { id: "submit-workflow" }, h("option", { value: "" }, "none (plan it)"), workflows.map((w) => h("option", { value: w }, w)))),
      h("label", {}, "Planner", h("select", { id: "submit-planner" }, ["auto", "local", "remote"].map((p) => h("option", { value: p }, p)))),
      h("label", {}, "Priority", h("input", { id: "submit-priority", type: "number", value: 0, min: -100, max: 100 }))),
    h("label", { class: "check" }, h("input", { id: "submit-sensitive", type: "checkbox" }), " Sensitive request: the privacy gate treats it as confidential"),
    h("label", { class: "check" }, h("input", { id: "submit-async", type: "checkbox" }), " Async: may wait in the deferred queue while the link is offline"),
    h("button", { type: "submit", id: "submit-go" }, "Submit"), msg);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    msg.textContent = "";
    msg.className = "";
    try {
      const r = await guard(() => post("/api/v1/runs", {
        request: form.querySelector("#submit-request").value,
        workflow: form.querySelector("#submit-workflow").value,
        planner: form.querySelector("#submit-planner").value,
        priority: Number(form.querySelector("#submit-priority").value || 0),
        sensitive: form.querySelector("#submit-sensitive").checked,
        async: form.querySelector("#submit-async").checked,
      }));
      if (r) location.hash = `#/run/${encodeURIComponent(r.id)}`;
    } catch (err) {
      msg.className = "error-box";
      msg.textContent = err.message;
    }
  });
  view.append(h("h1", {}, "Submit a request"), form);
  if (state.example) fillExample(state.example);
  // In the demo, the scripted requests are one click away.
  await state.statusLoaded;
  const ex = form.querySelector("#submit-examples");
  if (document.body.classList.contains("demo") && state.demoExamples.length && !ex.childElementCount) {
    ex.append(h("span", { class: "chips-label" }, "Scripted demo examples:"), exampleChips((e) => fillExample(e.request)));
    ex.hidden = false;
  }
}

window.addEventListener("hashchange", route);
start();
