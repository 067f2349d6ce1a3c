// The plan templates agentd learned from its own runs: the list, one
// template's detail, the acts that keep a person in charge of them, and the
// line a run planned from one shows.
import { get, post, del } from "./api.js";
import { h, clear, fmtTime, badge, card } from "./dom.js";

const enc = encodeURIComponent;

// slots shows a phrasing's {{param}} placeholders as <param>, the way a
// person reads a form to fill.
export const slots = (text) => String(text || "").replace(/\{\{\s*([\w.]+)\s*\}\}/g, "<$1>");

// rate is the share of its runs that ended done, or – before it has any
// (the API computes the share; a template with no run has none to show).
function rate(t) {
  return t.learned + t.uses ? `${Math.round(100 * t.success_rate)}%` : "–";
}

const paramText = (params) => Object.entries(params || {}).map(([k, v]) => `${k}=${v}`).join(", ");

// wf reads a field of the template's workflow. The workflow is
// config.WorkflowConfig, written with its Go field names today (it has TOML
// tags only); read the snake_case name too, so JSON tags added later keep
// the page working.
const wf = (t, snake, goName) => (t.workflow || {})[snake] ?? (t.workflow || {})[goName];

function stateBadge(t) {
  return h("span", { class: "tpl-state" }, badge(t.state), t.pinned ? h("span", { class: "badge pinned", title: "Pinned: never retired or evicted" }, "pinned") : null);
}

// actions are the buttons for what a person may do to a template now; each
// calls the API and then redraw(result) with the updated template, or
// redraw(null) after a delete.
function actions(t, ui, redraw, onError) {
  const act = (verb, fn) => async (e) => {
    const btn = e.currentTarget;
    btn.disabled = true;
    try {
      const r = await ui.guard(fn);
      if (r === undefined) { btn.disabled = false; return; } // not confirmed, or signed out
      await redraw(verb === "delete" ? null : r);
    } catch (err) {
      onError(err);
      btn.disabled = false;
    }
  };
  const path = `/api/v1/templates/${enc(t.id)}`;
  const button = (verb, label, cls, fn) => h("button", { type: "button", class: cls, dataset: { act: verb, template: t.id }, onclick: act(verb, fn) }, label);
  return h("div", { class: "actions tpl-actions" },
    t.state !== "active" ? button("approve", "Approve", "ok", () => post(`${path}/approve`)) : null,
    t.state !== "disabled" ? button("disable", "Disable", "secondary", () => post(`${path}/disable`)) : null,
    t.pinned ? button("unpin", "Unpin", "secondary", () => post(`${path}/unpin`)) : button("pin", "Pin", "secondary", () => post(`${path}/pin`)),
    button("delete", "Delete", "danger", async () => {
      // A deleted template is gone with its record; agentd may learn it
      // again from the next run of its kind.
      if (!window.confirm(`Delete learned template ${t.name} (${t.id})? Its record is lost; agentd may learn it again from the next run of its kind.`)) return undefined;
      return del(path);
    }));
}

// fetchOr404 reads path; a 404 (the plan cache is off, or no such
// template) shows the API's reason in box instead, and gives null.
async function fetchOr404(path, box) {
  try {
    return await get(path);
  } catch (err) {
    if (err.status === 404) { clear(box).append(h("p", { class: "muted card", id: "templates-off" }, err.message)); return null; }
    throw err;
  }
}

// templatesPage is #/templates: every learned template, most useful first.
export async function templatesPage(view, ui) {
  const box = h("div", { id: "templates" });
  view.append(h("div", { class: "page-head" }, h("h1", {}, "Learned templates"),
    h("a", { href: "/api/v1/templates/export", download: "workflows.toml", class: "export-link", title: "The usable templates as [[workflows]] to paste into config.toml" }, "Export as config workflows")),
  h("p", { class: "muted" }, "Plan templates agentd learned from runs that ended done. A matching request is planned from one with no planner call. ",
    "Approve the ones waiting for you; disable or delete one that plans wrongly; pin one to keep it through failures."),
  box);
  const draw = async () => {
    const data = await fetchOr404("/api/v1/templates", box);
    if (!data) return;
    clear(box);
    if (!data.templates.length) {
      box.append(h("p", { class: "muted card" }, "No template learned yet: agentd learns one from each kind of request whose run ends done."));
      return;
    }
    const cell = (label, cls, ...v) => h("td", { class: cls, dataset: { label } }, ...v);
    const row = (t) => h("tr", { dataset: { template: t.id, state: t.state } },
      cell("Template", "tpl-name", h("a", { href: `#/template/${enc(t.id)}` }, t.name), h("div", { class: "muted tpl-id" }, t.id)),
      cell("State", "tpl-state-cell", stateBadge(t)),
      cell("Success", "num", rate(t)),
      cell("Uses", "num", t.uses),
      cell("Source", "", t.source),
      cell("Phrasing", "tpl-phrasing", slots((t.phrasings || [])[0]), t.phrasings?.length > 1 ? h("span", { class: "muted" }, ` +${t.phrasings.length - 1} more`) : null),
      cell("", "tpl-act", actions(t, ui, draw, (err) => box.prepend(ui.errorBox(err)))));
    box.append(h("div", { class: "card" }, h("table", { class: "small stack templates" },
      h("thead", {}, h("tr", {}, ["Template", "State", "Success", "Uses", "Source", "First phrasing", ""].map((c) =>
        h("th", { class: c === "Success" || c === "Uses" ? "num" : undefined }, c)))),
      h("tbody", {}, data.templates.map(row)))));
  };
  // A run that ends may teach a template or score one.
  const refresh = ui.debounce(() => ui.guard(draw));
  ui.onEvent((ev) => { if (ev.type === "run.status" && ["done", "partial", "failed"].includes(ev.data?.status)) refresh(); });
  await draw();
}

// templatePage is #/template/ID: everything a person needs to decide on one.
export async function templatePage(view, ui, id) {
  const box = h("div", { id: "template" });
  view.append(box);
  const draw = async (t) => {
    if (t === null) { location.hash = "#/templates"; return; }
    t = t || await fetchOr404(`/api/v1/templates/${enc(id)}`, box);
    if (!t) return;
    const onError = (err) => box.prepend(ui.errorBox(err));
    clear(box).append(
      h("div", { class: "page-head" }, h("h1", {}, "Template ", h("code", {}, t.name)), h("span", { id: "template-state" }, stateBadge(t)),
        actions(t, ui, draw, onError)),
      h("div", { class: "card" }, h("dl", { class: "facts" },
        fact("Id", t.id), fact("Source", `${t.source} planner`), fact("Learned from", `${t.learned} run${t.learned === 1 ? "" : "s"}`),
        fact("Planned", `${t.uses} (${t.successes} done, ${t.failures} failed)`), fact("Success", rate(t)),
        t.fail_streak ? fact("Failures in a row", t.fail_streak) : null,
        fact("Approved by", t.approved_by || "—"), fact("Created", fmtTime(t.created_at)), fact("Last used", t.last_used_at ? fmtTime(t.last_used_at) : "—")),
      t.last_error ? h("div", { class: "error-box", id: "template-error" }, "Last error: ", t.last_error) : null),
      card("Phrasings", h("ul", { class: "reasons", id: "template-phrasings" }, (t.phrasings || []).map((p) => h("li", { title: p }, slots(p))))),
      card("Parameters", paramsTable(t.params || [])),
      card("Steps", stepsTable(wf(t, "steps", "Steps") || [])),
      card("Answer",
        h("h4", {}, "Instruction to the summarizer"), h("pre", { id: "template-answer" }, wf(t, "answer", "Answer") || "—"),
        h("h4", {}, "Answer pattern"),
        wf(t, "answer_pattern", "AnswerPattern")
          ? h("pre", { id: "template-pattern" }, wf(t, "answer_pattern", "AnswerPattern"))
          : h("p", { class: "muted", id: "template-pattern" }, "None yet: a pattern is kept once two runs with different values end on the same answer; then runs need no summarizer call.")),
      card("Examples", examplesTable(t.examples || [])));
  };
  await draw();
}

function fact(k, v) { return h("div", { class: "fact" }, h("dt", {}, k), h("dd", {}, v)); }

function paramsTable(params) {
  if (!params.length) return h("p", { class: "muted" }, "No parameters: it answers one request.");
  return h("table", { class: "small stack" },
    h("thead", {}, h("tr", {}, ["Name", "Kind", "Words", "Example"].map((c) => h("th", {}, c)))),
    h("tbody", {}, params.map((p) => h("tr", { dataset: { param: p.name } },
      h("td", { dataset: { label: "Name" } }, h("code", {}, `<${p.name}>`)), h("td", { dataset: { label: "Kind" } }, p.kind),
      h("td", { dataset: { label: "Words" } }, p.min_words === p.max_words ? p.min_words : `${p.min_words}–${p.max_words}`),
      h("td", { dataset: { label: "Example" } }, p.example || "—")))));
}

function stepsTable(steps) {
  if (!steps.length) return h("p", { class: "muted" }, "No steps.");
  const f = (s, snake, goName) => s[snake] ?? s[goName];
  return h("table", { class: "small stack" },
    h("thead", {}, h("tr", {}, ["Step", "Does", "After"].map((c) => h("th", {}, c)))),
    h("tbody", {}, steps.map((s) => {
      const tool = f(s, "tool", "Tool");
      const does = tool
        ? [h("code", {}, tool), " ", h("code", { class: "tpl-args" }, JSON.stringify(f(s, "args", "Args") || {}))]
        : ["task: ", f(s, "task", "Task")];
      return h("tr", { dataset: { step: f(s, "id", "ID") } },
        h("td", { dataset: { label: "Step" } }, h("b", {}, f(s, "id", "ID"))), h("td", { class: "tpl-does", dataset: { label: "Does" } }, does),
        h("td", { dataset: { label: "After" } }, (f(s, "depends_on", "DependsOn") || []).join(", ") || "—"));
    })));
}

function examplesTable(examples) {
  if (!examples.length) return h("p", { class: "muted" }, "No example kept.");
  return h("table", { class: "small stack" },
    h("thead", {}, h("tr", {}, ["Run", "When", "Values", "Request"].map((c) => h("th", {}, c)))),
    h("tbody", {}, examples.slice().reverse().map((e) => h("tr", { dataset: { example: e.run_id } },
      h("td", { dataset: { label: "Run" } }, h("a", { href: `#/run/${enc(e.run_id)}` }, e.run_id)),
      h("td", { dataset: { label: "When" } }, fmtTime(e.at)),
      h("td", { dataset: { label: "Values" } }, paramText(e.params) || "—"),
      h("td", { class: "tpl-request", dataset: { label: "Request" } }, e.request)))));
}

// templateUse is the run page's line for a run planned from a template:
// which one, and the values it took from the request.
export function templateUse(tu) {
  if (!tu) return null;
  const params = paramText(tu.params);
  const name = tu.learned ? h("a", { href: `#/template/${enc(tu.id)}` }, tu.name) : h("b", {}, tu.name);
  return h("p", { class: "template-use", id: "run-template" },
    `Planned from ${tu.learned ? "learned" : "workflow"} template `, name, ` (${tu.id})`,
    params ? ` — params: ${params}` : "",
    tu.answer_pattern ? h("span", { class: "muted" }, " · answer written from its pattern, no summarizer call") : null);
}
