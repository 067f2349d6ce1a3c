// What a run's detail says about its planning: the router's decision, the
// planner's model calls (plan, repairs, replans), when planning started and
// ended, and how it went. The run page, its timeline and its step list all
// read it from here.

// Calls made for a step, or for the answer, are not planning: every other
// call without a step is (router classification, workflow parameters,
// plan, plan repair, replan, and the remote planner's).
const NOT_PLANNING = new Set(["execute", "synthesize", "summarize", "scratchpad", "validate"]);

export const isPlanningCall = (c) => !c.step_id && !NOT_PLANNING.has(c.purpose);
export const isAnswerCall = (c) => !c.step_id && c.purpose === "synthesize";

const t = (v) => (v ? Date.parse(v) : NaN);
export const callStart = (c) => t(c.created_at);
export const callEnd = (c) => t(c.created_at) + (c.wall_ms || c.total_ms || 0);

// mergeCalls adds the model calls seen live (model.call events) that the
// stored detail does not hold yet, so tokens and planner progress show as
// they happen, not when the next fetch lands.
export function mergeCalls(stored, live) {
  const key = (c) => [c.step_id || "", c.purpose || "", c.model, c.prompt_tokens, c.output_tokens].join("|");
  const have = new Map();
  for (const c of stored) have.set(key(c), (have.get(key(c)) || 0) + 1);
  const out = [...stored];
  for (const c of live) {
    const n = have.get(key(c)) || 0;
    if (n > 0) have.set(key(c), n - 1);
    else out.push(c);
  }
  return out.sort((a, b) => callStart(a) - callStart(b));
}

// callFromEvent turns a model.call event into the detail's call shape.
export function callFromEvent(ev) {
  const d = ev.data || {};
  const ms = d.wall_ms || d.total_ms || 0;
  // The event is published when the call ends.
  const end = Date.parse(ev.time) || Date.now();
  return {
    created_at: new Date(end - ms).toISOString(), step_id: d.step_id || "", purpose: d.purpose || "", model: d.model || "",
    location: d.location || d.where || "local", prompt_tokens: d.prompt_tokens || 0, output_tokens: d.output_tokens || 0,
    total_ms: d.total_ms || 0, wall_ms: ms, cost_usd: d.cost_usd || 0, error: d.error || "", done_reason: d.done_reason || "", live: true,
  };
}

const TERMINAL = new Set(["done", "partial", "failed", "canceled", "review"]);

// planningOf summarises the planning phase. status is running, done,
// failed, deferred or queued; end is null while it goes on.
export function planningOf(detail, calls) {
  const r = detail.run;
  const mine = calls.filter(isPlanningCall);
  const first = mine.filter((c) => c.purpose !== "replan");
  const start = t(r.started_at) || (first.length ? callStart(first[0]) : NaN) || t(r.created_at);
  const planned = detail.plan_version > 0 || (detail.steps || []).length > 0;
  let end = null;
  const v1 = (detail.plans || []).find((p) => p.version === 1);
  const stepStarts = (detail.steps || []).map((s) => t(s.started_at)).filter((x) => !isNaN(x));
  if (v1) end = t(v1.created_at);
  else if (stepStarts.length) end = Math.min(...stepStarts);
  else if (planned || TERMINAL.has(r.status) || r.status === "deferred") {
    const ends = first.map(callEnd).filter((x) => !isNaN(x));
    end = t(r.finished_at) || (ends.length ? Math.max(...ends) : start);
    if (planned && ends.length) end = Math.max(...ends);
  }
  let status = "done";
  if (r.status === "queued") status = "queued";
  else if (r.status === "deferred") status = "deferred";
  else if (!planned && r.status === "planning") status = "running";
  else if (!planned && TERMINAL.has(r.status)) status = r.route === "scratchpad" ? "done" : r.status === "canceled" ? "canceled" : "failed";
  const tokens = mine.reduce((a, c) => a + (c.prompt_tokens || 0) + (c.output_tokens || 0), 0);
  return { calls: mine, start, end, status, tokens, route: r.route || "", reasons: r.route_reasons || [] };
}

// workflowOf names the run's workflow: the one it asked for, or the one the
// router matched (recorded only in its reasons).
export function workflowOf(r) {
  if (r.workflow) return { name: r.workflow, how: "requested" };
  for (const why of r.route_reasons || []) {
    let m = /^workflow (\S+) matched keywords/.exec(why);
    if (m) return { name: m[1], how: "matched by keyword" };
    m = /classified the request as workflow (\S+)/.exec(why);
    if (m) return { name: m[1], how: "matched by the router model" };
    m = /^workflow (\S+) (?:requested|has a plan template|runs in scratchpad mode)/.exec(why);
    if (m) return { name: m[1], how: "" };
  }
  return null;
}

// purposeLabel says what a planning call was for, in words.
export function purposeLabel(p) {
  return {
    workflow_classify: "router: which workflow", workflow_params: "workflow parameters", plan: "plan", plan_repair: "plan repair",
    replan: "replan", escalate: "remote planner", route: "remote planner", replan_remote: "remote replan",
  }[p] || p || "call";
}
