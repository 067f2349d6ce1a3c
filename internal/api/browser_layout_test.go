package api

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/run"
)

// The layout fixtures: runs as the store returns them, with the names that
// broke the run page (a long step id, a long tool name), a replan whose
// final plan cites a step carried from the first, a workflow-routed run, a
// run whose planning failed and one still planning.
const (
	layoutMulti    = "r_20261130T080000_6a1f0c2e9b7d4e10"
	layoutPlanFail = "r_20261130T081500_0b9e3d7c5a2f1e88"
	layoutTemplate = "r_20261130T082000_3c5e7a9b1d2f4a66"
	layoutPlanning = "r_20261130T083000_9f8e7d6c5b4a3921"

	longStep = "fetch_quarterly_generator_maintenance_logs_from_site_archive"
	longTool = "supplier_inventory_lookup_with_extended_lead_times"
)

var layoutT0 = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

func at(sec float64) *time.Time {
	t := layoutT0.Add(time.Duration(sec * float64(time.Second)))
	return &t
}

// layoutStep builds a stored step from its plan JSON.
func layoutStep(runID string, version int, spec string, status run.StepStatus, start, end float64, output, errMsg string) *run.Step {
	var s struct {
		ID        string   `json:"id"`
		Tool      string   `json:"tool"`
		Tier      string   `json:"tier"`
		DependsOn []string `json:"depends_on"`
	}
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		panic(err)
	}
	kind := "task"
	if s.Tool != "" {
		kind = "tool"
	}
	st := &run.Step{RunID: runID, StepID: s.ID, PlanVersion: version, Kind: kind, Tool: s.Tool, Tier: s.Tier, Spec: json.RawMessage(spec),
		DependsOn: append([]string{}, s.DependsOn...), Status: status, Output: output, Error: errMsg, Attempts: 1}
	if start >= 0 {
		st.StartedAt = at(start)
	}
	if end >= 0 {
		st.FinishedAt = at(end)
	}
	return st
}

func layoutCall(sec float64, step, purpose, model string, in, out int, ms float64, errMsg string) ModelCall {
	return ModelCall{CreatedAt: *at(sec), StepID: step, Purpose: purpose, Model: model, Location: "local", PromptTokens: in, OutputTokens: out,
		TotalMS: ms, WallMS: ms, Attempt: 1, Error: errMsg, DoneReason: map[bool]string{true: "", false: "stop"}[errMsg != ""]}
}

// layoutRuns is a RunReader over fixed runs.
type layoutRuns struct{ details map[string]*RunDetail }

func newLayoutRuns() layoutRuns {
	multiPlan := `{"goal":"Decide whether the supply boat can reach Station Bravo on Thursday and what to load",
	  "steps":[{"id":"regional_wind","tool":"regional_forecast","args":{"region":"North Sound","day":"Thursday"}},
	    {"id":"inventory","tool":"` + longTool + `","args":{"warehouse":"W2"}},
	    {"id":"decide","task":"Decide whether the boat can sail: wind ${regional_wind}, tide ${tide}.","tier":"fast","depends_on":["regional_wind"]},
	    {"id":"summarize","task":"Summarise the manifest from ${inventory.items} and the maintenance notes ${` + longStep + `.notes}.","tier":"standard","depends_on":["decide","inventory"]}],
	  "answer":"Say whether the boat sails (${decide}) and what it carries (${summarize})."}`
	multi := &RunDetail{
		Run: &run.Run{ID: layoutMulti, CreatedAt: layoutT0, UpdatedAt: *at(48), StartedAt: at(0.2), FinishedAt: at(48), Status: run.Done,
			Source: "dashboard", Request: "Can the supply boat reach Station Bravo on Thursday? Check the wind forecast for the route, the harbour tide, the generator maintenance logs and what the warehouse can load.",
			Planner: "auto", Route: "local", CostUSD: 0.0031, RemoteOnlyUSD: 0.12,
			RouteReasons: []string{"no workflow matched by keyword or by the router model", "complexity 0.31 is below escalate_score 0.70 (words=31 asks=2 conditionals=0 unknown_entities=3): local planner", "fingerprint f57d190c511f009ecdfb5104bd3b7f81"},
			Answer:       "Yes: gusts stay at 18 kt and waves at 1.2 m on Thursday; high tide is at 10:40. Load the 14 filters and 6 drums of oil."},
		Plan: json.RawMessage(multiPlan), PlanVersion: 2, PlanSource: "replan_local", PlanModel: "gemma3:12b",
		Steps: []*run.Step{
			layoutStep(layoutMulti, 1, `{"id":"`+longStep+`","tool":"read_maintenance_archive","args":{"site":"bravo","quarter":"Q3"}}`, run.StepDone, 9, 12, `{"notes":"filters due"}`, ""),
			layoutStep(layoutMulti, 1, `{"id":"wind","tool":"station_forecast","args":{"station":"BRAVO-AWS"}}`, run.StepSkipped, 9, 10, "", "superseded by plan v2 after: tool station_forecast: tool failed: station BRAVO-AWS has no forecast"),
			layoutStep(layoutMulti, 1, `{"id":"tide","tool":"tide_table","args":{"harbour":"Bravo"}}`, run.StepDone, 9, 10.5, `{"high":"10:40"}`, ""),
			layoutStep(layoutMulti, 2, `{"id":"regional_wind","tool":"regional_forecast","args":{"region":"North Sound","day":"Thursday"}}`, run.StepDone, 22, 24, `{"gust_kt":18}`, ""),
			layoutStep(layoutMulti, 2, `{"id":"inventory","tool":"`+longTool+`","args":{"warehouse":"W2"}}`, run.StepDone, 22, 27, `{"items":["filter"]}`, ""),
			layoutStep(layoutMulti, 2, `{"id":"decide","task":"Decide whether the boat can sail: wind ${regional_wind}, tide ${tide}.","tier":"fast","depends_on":["regional_wind"]}`, run.StepDone, 24, 33, "The boat can sail.", ""),
			layoutStep(layoutMulti, 2, `{"id":"summarize","task":"Summarise the manifest from ${inventory.items} and the maintenance notes ${`+longStep+`.notes}.","tier":"standard","depends_on":["decide","inventory"]}`, run.StepDone, 33, 44, "14 filters, 6 drums.", ""),
		},
		Attempts: []Attempt{
			{ID: 1, StepID: "wind", N: 1, Rung: "first", Status: "failed", ErrorClass: "tool", Error: "station BRAVO-AWS has no forecast", StartedAt: *at(9)},
			{ID: 2, StepID: "wind", N: 2, Rung: "replan_local", Status: "ok", StartedAt: *at(10)},
		},
		ModelCalls: []ModelCall{
			layoutCall(0.3, "", "workflow_classify", "granite4:tiny-h", 142, 5, 400, ""),
			layoutCall(0.8, "", "plan", "gemma3:12b", 2756, 151, 4200, "plan is not valid JSON: unexpected end of input"),
			layoutCall(5.1, "", "plan_repair", "gemma3:12b", 2911, 160, 3700, ""),
			layoutCall(10.6, "", "replan", "gemma3:12b", 2911, 139, 11000, ""),
			layoutCall(24.1, "decide", "execute", "granite4:tiny-h", 224, 44, 8700, ""),
			layoutCall(33.1, "summarize", "execute", "qwen3:8b", 612, 88, 10500, ""),
			layoutCall(44.2, "", "synthesize", "granite4:tiny-h", 234, 52, 3600, ""),
		},
		ToolCalls: []ToolCall{}, Approvals: []Approval{},
	}
	planFail := &RunDetail{
		Run: &run.Run{ID: layoutPlanFail, CreatedAt: *at(900), UpdatedAt: *at(941), StartedAt: at(900), FinishedAt: at(941), Status: run.Failed,
			Source: "api", Request: "Notify the regional logistics coordinator by satellite SMS when the generator at Station Bravo drops below 20% fuel, and order a refill.",
			Planner: "auto", Route: "local", ErrorCount: 1,
			RouteReasons: []string{"no workflow matched by keyword or by the router model",
				"complexity 0.82 is above escalate_score 0.70 (words=24 asks=2 conditionals=1 unknown_entities=4): remote planner",
				"remote planner not used (fallback is disabled): planning locally",
				"local planner failed; not escalating: fallback.enabled is false", "fingerprint 0e4c1d9a55b2a7f3"},
			Error: `plan: local planner: no valid plan after 3 attempts: step "notify_the_regional_logistics_coordinator": unknown tool "send_sms_via_satellite_uplink"`},
		Steps: []*run.Step{}, Attempts: []Attempt{}, ToolCalls: []ToolCall{}, Approvals: []Approval{},
		ModelCalls: []ModelCall{
			layoutCall(900.2, "", "workflow_classify", "granite4:tiny-h", 150, 5, 380, ""),
			layoutCall(900.7, "", "plan", "gemma3:12b", 2801, 240, 12900, `unknown tool "send_sms_via_satellite_uplink"`),
			layoutCall(913.7, "", "plan_repair", "gemma3:12b", 3120, 250, 13400, `unknown tool "send_sms_via_satellite_uplink"`),
			layoutCall(927.2, "", "plan_repair", "gemma3:12b", 3390, 1024, 13600, "reply cut at 1024 tokens (done_reason length)"),
		},
	}
	template := &RunDetail{
		Run: &run.Run{ID: layoutTemplate, CreatedAt: *at(1200), UpdatedAt: *at(1203), StartedAt: at(1200.1), FinishedAt: at(1203), Status: run.Done,
			Source: "api", Request: "Check low stock in warehouse W2 and draft a reorder.", Planner: "auto", Route: "template",
			RouteReasons: []string{"workflow low_stock_reorder matched keywords low stock", "workflow low_stock_reorder has a plan template: no planner call"},
			Answer:       "Draft PO: 3 lines, $690."},
		Plan: json.RawMessage(`{"goal":"reorder","steps":[{"id":"low_stock","tool":"list_low_stock","args":{"warehouse":"W2"}},{"id":"draft_po","task":"Draft a PO for ${low_stock.items}","depends_on":["low_stock"]}],"answer":"Report the PO."}`),
		Steps: []*run.Step{
			layoutStep(layoutTemplate, 1, `{"id":"low_stock","tool":"list_low_stock","args":{"warehouse":"W2"}}`, run.StepDone, 1200.3, 1200.5, "[]", ""),
			layoutStep(layoutTemplate, 1, `{"id":"draft_po","task":"Draft a PO for ${low_stock.items}","depends_on":["low_stock"]}`, run.StepDone, 1200.5, 1202, "PO", ""),
		},
		PlanVersion: 1, PlanSource: "template", Attempts: []Attempt{}, ToolCalls: []ToolCall{}, Approvals: []Approval{},
		ModelCalls: []ModelCall{layoutCall(1200.1, "", "workflow_params", "granite4:tiny-h", 159, 5, 200, "")},
	}
	started := time.Now().UTC().Add(-4 * time.Second)
	planning := &RunDetail{
		Run: &run.Run{ID: layoutPlanning, CreatedAt: started, UpdatedAt: started, StartedAt: &started, Status: run.Planning, Source: "dashboard",
			Request: "Compare the fuel use of the three generators over the last month and say which one needs service first.", Planner: "auto"},
		Steps: []*run.Step{}, Attempts: []Attempt{}, ToolCalls: []ToolCall{}, Approvals: []Approval{},
		ModelCalls: []ModelCall{{CreatedAt: started, Purpose: "workflow_classify", Model: "granite4:tiny-h", Location: "local", PromptTokens: 140, OutputTokens: 5, TotalMS: 300, WallMS: 300, Attempt: 1}},
	}
	return layoutRuns{details: map[string]*RunDetail{layoutMulti: multi, layoutPlanFail: planFail, layoutTemplate: template, layoutPlanning: planning}}
}

func (l layoutRuns) ListRuns(_ context.Context, q RunQuery) ([]*run.Run, error) {
	var out []*run.Run
	for _, d := range l.details {
		if len(q.Statuses) == 0 || slices.Contains(q.Statuses, d.Run.Status) {
			cp := *d.Run
			out = append(out, &cp)
		}
	}
	slices.SortFunc(out, func(a, b *run.Run) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

func (l layoutRuns) RunDetail(_ context.Context, id string) (*RunDetail, error) {
	d, ok := l.details[id]
	if !ok {
		return nil, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	return d, nil
}

func (layoutRuns) PendingApprovals(context.Context) ([]Approval, error) { return []Approval{}, nil }

// layoutStatus is a demo daemon's status: scripted examples and a
// simulated GPU with a long name.
func layoutStatus(context.Context) any {
	raw := `{"demo": true, "runs": {"done": 2, "failed": 1, "planning": 1},
	  "demo_examples": [
	    {"name": "cities", "request": "Which US cities are similar to Austin, TX by climate and population? Compare San Antonio, Dallas, Phoenix and Denver."},
	    {"name": "order", "request": "Process order A-1042: validate it, check inventory, calculate shipping, and confirm it with the supplier."},
	    {"name": "low_stock", "request": "Check low stock in warehouse W2 and draft a reorder."}],
	  "hardware": {"time": "` + time.Now().UTC().Format(time.RFC3339Nano) + `", "gpu_source": "sim",
	    "gpus": [{"source":"sim","index":0,"name":"Simulated NVIDIA RTX 4000 SFF Ada Generation","simulated":true,"memory_total_bytes":20000000000,
	              "memory_used_bytes":9000000000,"utilization_percent":55,"temperature_c":61,"power_draw_w":70}],
	    "host": {"memory_total_bytes":64000000000,"memory_used_bytes":30000000000,"memory_available_bytes":34000000000,
	             "memory_used_percent":46.9,"cpu_percent":23.5,"load":{"load1":1.2,"load5":0.9,"load15":0.7}}}}`
	return json.RawMessage(raw)
}

// layoutCheck lists what a person would see cut off: text clipped by or
// spilling out of its box, SVG text outside its node or drawing, anything
// wider than the viewport, and text smaller than minFont px. A box that
// ellipsizes its text passes only when a title holds the whole text.
const layoutCheck = `((minFont) => {
  const out = [];
  const vw = window.innerWidth;
  const page = document.documentElement.scrollWidth;
  if (page > vw) out.push("page is " + page + "px wide in a " + vw + "px viewport");
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.getAttribute("class") ? "." + el.getAttribute("class").trim().split(/\s+/).join(".") : "") +
    (el.closest("[data-step]") ? " in [data-step=" + el.closest("[data-step]").dataset.step + "]" : "");
  const shown = (el) => {
    if (!el.getClientRects().length) return false;
    const cs = getComputedStyle(el);
    return cs.visibility !== "hidden" && Number(cs.opacity) > 0;
  };
  const ownText = (el) => [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  // The part of the viewport el's clipping ancestors let through, across.
  const window_ = (el) => {
    let l = 0, r = vw;
    for (let a = el.parentElement; a; a = a.parentElement) {
      if (getComputedStyle(a).overflowX === "visible") continue;
      const b = a.getBoundingClientRect();
      l = Math.max(l, b.left + a.clientLeft);
      r = Math.min(r, b.left + a.clientLeft + a.clientWidth);
    }
    return [l, r];
  };
  const ellipsized = (el) => {
    for (let a = el; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).textOverflow === "ellipsis" && a.scrollWidth > a.clientWidth + 1) {
        const t = a.closest("[title]");
        return !!t && t.title.includes(a.textContent.trim().replace(/…$/, ""));
      }
    }
    return false;
  };
  for (const el of document.querySelectorAll("body *")) {
    const svgText = el instanceof SVGTextElement;
    if (!svgText && !(el instanceof HTMLElement && ownText(el))) continue;
    if (el.closest("script,style,noscript") || !shown(el)) continue;
    const text = JSON.stringify(el.textContent.trim().slice(0, 48));
    const cs = getComputedStyle(el);
    let font = parseFloat(cs.fontSize);
    if (svgText) {
      const m = el.getScreenCTM();
      if (m) font *= Math.hypot(m.a, m.b);
    }
    if (font + 0.05 < minFont) out.push(name(el) + " " + text + ": text is " + font.toFixed(1) + "px, under " + minFont + "px");
    if (!svgText && ellipsized(el)) continue;
    const r = el.getBoundingClientRect();
    const [l, rr] = window_(el);
    if (r.width > 0 && (r.left < l - 1 || r.right > rr + 1)) {
      out.push(name(el) + " " + text + ": spans " + Math.round(r.left) + ".." + Math.round(r.right) + "px, visible " + Math.round(l) + ".." + Math.round(rr) + "px");
    }
    if (svgText) {
      // Its box is a rect beside it that holds the point it is anchored at.
      const t = el.getBBox();
      const ax = el.x.baseVal.length ? el.x.baseVal[0].value : t.x, ay = el.y.baseVal.length ? el.y.baseVal[0].value : t.y;
      const box = [...el.parentNode.children].find((c) => {
        if (!(c instanceof SVGRectElement)) return false;
        const b = c.getBBox();
        return ax >= b.x && ax <= b.x + b.width && ay >= b.y && ay <= b.y + b.height;
      });
      if (box) {
        const b = box.getBBox();
        if (t.x < b.x - 1 || t.x + t.width > b.x + b.width + 1 || t.y < b.y - 1 || t.y + t.height > b.y + b.height + 1) {
          out.push(name(el) + " " + text + ": text " + Math.round(t.width) + "px wide overflows its " + Math.round(b.width) + "px box");
        }
      } else {
        const s = el.ownerSVGElement.getBoundingClientRect();
        if (r.left < s.left - 1 || r.right > s.right + 1 || r.top < s.top - 1 || r.bottom > s.bottom + 1) {
          out.push(name(el) + " " + text + ": outside its drawing");
        }
      }
      continue;
    }
    if (cs.display === "inline") continue;
    const scrollsX = cs.overflowX === "auto" || cs.overflowX === "scroll";
    const scrollsY = cs.overflowY === "auto" || cs.overflowY === "scroll";
    if (!scrollsX && el.scrollWidth > el.clientWidth + 1) out.push(name(el) + " " + text + ": " + el.scrollWidth + "px of text in " + el.clientWidth + "px");
    if (!scrollsY && el.scrollHeight > el.clientHeight + 1) out.push(name(el) + " " + text + ": " + el.scrollHeight + "px tall text in " + el.clientHeight + "px");
  }
  return out;
})`

// TestDashboardLayoutFits loads every page a person reads on a laptop and
// on a phone and fails on any label cut off, spilling out of its box or too
// small to read, with screenshots of each.
func TestDashboardLayoutFitsInABrowser(t *testing.T) {
	ctx, jsErr := browser(t)
	env := newTestEnv(t, statusOption(layoutStatus), func(_ *Config, d *Deps) { d.Runs, d.Templates = newLayoutRuns(), newFakeTemplates() })
	base := env.url + "/"
	act(t, ctx, chromedp.EmulateViewport(1366, 768), chromedp.Navigate(base))
	waitFor(t, ctx, "login form", "#login-token")
	act(t, ctx, chromedp.SendKeys(chromedp.CSS("#login-token"), env.token), chromedp.Click(chromedp.CSS("#login-submit")))
	waitFor(t, ctx, "navigation after login", "#nav a[data-nav=runs]")

	pages := []struct{ name, hash, ready string }{
		{"overview", "#/overview", `.gauge[data-name="vram0"]`},
		{"runs", "#/runs", `[data-run="` + layoutMulti + `"]`},
		{"run-multistep", "#/run/" + layoutMulti, `#dag [data-step="summarize"]`},
		{"run-planning-failed", "#/run/" + layoutPlanFail, `#run-answer, #run-status`},
		{"submit", "#/submit", "#submit-request"},
		{"templates", "#/templates", `tr[data-template="tpl-b"]`},
		{"template", "#/template/tpl-a", "#template-phrasings"},
	}
	viewports := []struct {
		name    string
		w, h    int64
		minFont float64
	}{{"desktop", 1366, 768, 0}, {"phone", 390, 844, 11}}
	for _, vp := range viewports {
		for _, p := range pages {
			t.Run(vp.name+"/"+p.name, func(t *testing.T) {
				act(t, ctx, chromedp.EmulateViewport(vp.w, vp.h), chromedp.Navigate(base+p.hash), chromedp.Reload())
				waitFor(t, ctx, p.name, p.ready)
				time.Sleep(400 * time.Millisecond) // let charts and graphs size themselves
				problems := value(t, ctx, chromedp.Evaluate[[]string](fmt.Sprintf("%s(%g)", layoutCheck, vp.minFont)))
				screenshot(t, ctx, "layout-"+vp.name+"-"+p.name)
				for _, pr := range problems {
					t.Error(pr)
				}
			})
		}
	}

	t.Run("what the run page says", func(t *testing.T) {
		act(t, ctx, chromedp.EmulateViewport(1366, 768), chromedp.Navigate(base+"#/run/"+layoutMulti), chromedp.Reload())
		waitFor(t, ctx, "the plan graph", `#dag g.node[data-step="summarize"]`)
		// Every step of the final plan, and the step carried from v1 that
		// decide and summarize cite, with the edges they cite.
		for _, id := range []string{"regional_wind", "inventory", "decide", "summarize", "tide", longStep} {
			n := value(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#dag g.node[data-step="`+id+`"]').length`))
			if n != 1 {
				t.Errorf("graph has %d nodes for %s, want 1", n, id)
			}
		}
		for _, e := range [][2]string{{"regional_wind", "decide"}, {"tide", "decide"}, {"decide", "summarize"}, {"inventory", "summarize"}, {longStep, "summarize"}} {
			n := value(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#dag path.edge[data-from="`+e[0]+`"][data-to="`+e[1]+`"]').length`))
			if n != 1 {
				t.Errorf("graph has %d edges %s -> %s, want 1", n, e[0], e[1])
			}
		}
		// The whole long names are there for a person who hovers.
		titles := value(t, ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("#dag title")].map((t) => t.textContent).join("\n")`))
		for _, want := range []string{longStep, longTool} {
			if !strings.Contains(titles, want) {
				t.Errorf("no tooltip in the graph names %s: %s", want, titles)
			}
		}
		text := value(t, ctx, chromedp.Text(chromedp.CSS("#view")))
		for _, want := range []string{"Planning", "plan repair", "replan", "gemma3:12b"} {
			if !strings.Contains(text, want) {
				t.Errorf("run page lacks %q", want)
			}
		}
		rows := value(t, ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("#gantt [data-row]")].map((r) => r.dataset.row).join(",")`))
		if !strings.HasPrefix(rows, "planning,") || !strings.Contains(rows, "summarize") {
			t.Errorf("timeline rows %q: want the planning phase first, then the steps", rows)
		}
	})

	t.Run("a run whose planning failed", func(t *testing.T) {
		act(t, ctx, chromedp.Navigate(base+"#/run/"+layoutPlanFail), chromedp.Reload())
		waitFor(t, ctx, "the planning record", `details[data-phase="planning"]`)
		text := value(t, ctx, chromedp.Text(chromedp.CSS("#view")))
		for _, want := range []string{"41.0 s", "plan repair", "not escalating", "send_sms_via_satellite_uplink"} {
			if !strings.Contains(text, want) {
				t.Errorf("failed-planning page lacks %q", want)
			}
		}
		if strings.Contains(text, "No plan yet") {
			t.Error(`a run whose planning failed says "No plan yet."`)
		}
		calls := value(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('details[data-phase="planning"] tbody tr').length`))
		if calls != 4 {
			t.Errorf("planning record lists %d model calls, want 4", calls)
		}
	})

	t.Run("workflow of a routed run", func(t *testing.T) {
		act(t, ctx, chromedp.Navigate(base+"#/run/"+layoutTemplate), chromedp.Reload())
		waitFor(t, ctx, "the run's facts", `#fact-workflow`)
		wf := value(t, ctx, chromedp.Text(chromedp.CSS("#fact-workflow")))
		if !strings.Contains(wf, "low_stock_reorder") {
			t.Errorf("Workflow reads %q, want low_stock_reorder", wf)
		}
	})

	t.Run("planning live", func(t *testing.T) {
		act(t, ctx, chromedp.Navigate(base+"#/run/"+layoutPlanning), chromedp.Reload())
		waitFor(t, ctx, "the planning record", `details[data-phase="planning"]`)
		time.Sleep(300 * time.Millisecond) // the websocket is subscribed
		env.bus.Publish(events.ModelCall, layoutPlanning, ModelCallData{Model: "gemma3:12b", Location: "local", Purpose: "plan",
			PromptTokens: 2700, OutputTokens: 180, TotalMS: 5200})
		waitFor(t, ctx, "the planner call, live", `#planning-live[data-calls="2"]`)
		text := value(t, ctx, chromedp.Text(chromedp.CSS("#view")))
		if strings.Contains(text, "No plan yet") || !strings.Contains(text, "3,025") {
			t.Errorf("while planning the page reads: %s", text)
		}
	})

	t.Run("demo examples and the simulated GPU", func(t *testing.T) {
		act(t, ctx, chromedp.Navigate(base+"#/submit"), chromedp.Reload())
		waitFor(t, ctx, "example chips", `#submit-form button.chip[data-example="order"]`)
		waitFor(t, ctx, "example chips in the banner", `#demo-banner button.chip[data-example="cities"]`)
		act(t, ctx, chromedp.Click(chromedp.CSS(`#submit-form button.chip[data-example="order"]`)))
		got := value(t, ctx, chromedp.Value(chromedp.CSS("#submit-request")))
		if !strings.HasPrefix(got, "Process order A-1042") {
			t.Errorf("the chip filled the request box with %q", got)
		}
		act(t, ctx, chromedp.Navigate(base+"#/overview"))
		waitFor(t, ctx, "simulated badge", `.gpu-name .badge.simulated`)
	})

	if errs := jsErr.get(); len(errs) > 0 {
		t.Errorf("JavaScript errors: %s", strings.Join(errs, "\n"))
	}
}
