package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/plancache"
	"github.com/agentd/agentd/internal/run"
)

// fakeTemplates is a TemplateAdmin holding templates in memory, recording
// what was done to them; the endpoints' own test uses the real cache.
type fakeTemplates struct {
	mu   sync.Mutex
	list []*plancache.Template
	acts []string
}

var _ TemplateAdmin = (*fakeTemplates)(nil)

var tplT0 = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

// newFakeTemplates holds an active stock-check template, used and failed
// once, and a pending calculation template.
func newFakeTemplates() *fakeTemplates {
	stock := &plancache.Template{ID: "tpl-a", Name: "learned_get_stock", State: plancache.Active, Source: "local",
		Workflow: config.WorkflowConfig{Name: "learned_get_stock", Answer: "Say how many units of {{sku}} the {{warehouse}} warehouse has.",
			AnswerPattern: "{{sku}} in {{warehouse}}: ${stock.units} units [stock]",
			Steps: []config.WorkflowStep{
				{ID: "stock", Tool: "get_stock", Args: map[string]any{"sku": "{{sku}}", "warehouse": "{{warehouse}}"}},
				{ID: "advise", Task: "Say whether {{sku}} needs a reorder given ${stock}", DependsOn: []string{"stock"}},
			}},
		Params: []plancache.Param{{Name: "sku", Kind: plancache.KindCode, MinWords: 1, MaxWords: 1, Example: "W-100"},
			{Name: "warehouse", Kind: plancache.KindWord, MinWords: 1, MaxWords: 1, Example: "east"}},
		Phrasings: []string{"Stock check for SKU {{sku}} in the {{warehouse}} warehouse", "How many {{sku}} are in the {{warehouse}} warehouse"},
		Learned:   2, Uses: 5, Successes: 4, Failures: 1, LastError: "run r_ex9 ended failed: get_stock: warehouse \"attic\" does not exist",
		Examples: []plancache.Example{
			{RunID: "r_ex1", Request: "Stock check for SKU W-100 in the east warehouse", Params: map[string]any{"sku": "W-100", "warehouse": "east"}, At: tplT0},
			{RunID: "r_ex2", Request: "Stock check for SKU W-200 in the north warehouse", Params: map[string]any{"sku": "W-200", "warehouse": "north"}, At: tplT0.Add(time.Hour)},
		},
		CreatedAt: tplT0, UpdatedAt: tplT0.Add(time.Hour), LastUsedAt: tplT0.Add(time.Hour)}
	calc := &plancache.Template{ID: "tpl-b", Name: "learned_calc", State: plancache.Pending, Source: "remote",
		Workflow: config.WorkflowConfig{Name: "learned_calc", Answer: "Give the result.",
			Steps: []config.WorkflowStep{{ID: "calculate", Tool: "calc", Args: map[string]any{"expression": "{{b}} * {{a}} / 100"}}}},
		Params:    []plancache.Param{{Name: "a", Kind: plancache.KindNumber, MinWords: 1, MaxWords: 1, Example: "17"}, {Name: "b", Kind: plancache.KindNumber, MinWords: 1, MaxWords: 1, Example: "2,340"}},
		Phrasings: []string{"What is {{a}}% of {{b}}?"}, Learned: 1,
		Examples:  []plancache.Example{{RunID: "r_ex3", Request: "What is 17% of 2,340?", Params: map[string]any{"a": 17, "b": 2340}, At: tplT0}},
		CreatedAt: tplT0, UpdatedAt: tplT0}
	return &fakeTemplates{list: []*plancache.Template{stock, calc}}
}

func (f *fakeTemplates) find(id string) (*plancache.Template, error) {
	for _, t := range f.list {
		if t.ID == id {
			return t, nil
		}
	}
	return nil, fmt.Errorf("template %s: %w", id, plancache.ErrNotFound)
}

// change applies fn to a template and answers a copy, as the cache does.
func (f *fakeTemplates) change(id, act string, fn func(t *plancache.Template)) (*plancache.Template, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.find(id)
	if err != nil {
		return nil, err
	}
	fn(t)
	f.acts = append(f.acts, id+" "+act)
	c := *t
	return &c, nil
}

func (f *fakeTemplates) done() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.acts...)
}

func (f *fakeTemplates) List() []*plancache.Template {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*plancache.Template, len(f.list))
	for i, t := range f.list {
		c := *t
		out[i] = &c
	}
	return out
}

func (f *fakeTemplates) Get(id string) (*plancache.Template, error) {
	return f.change(id, "get", func(*plancache.Template) {})
}

func (f *fakeTemplates) Approve(_ context.Context, id, by string) (*plancache.Template, error) {
	return f.change(id, "approve by "+by, func(t *plancache.Template) { t.State, t.ApprovedBy = plancache.Active, by })
}

func (f *fakeTemplates) Disable(_ context.Context, id string) (*plancache.Template, error) {
	return f.change(id, "disable", func(t *plancache.Template) { t.State = plancache.Disabled })
}

func (f *fakeTemplates) Pin(_ context.Context, id string, pinned bool) (*plancache.Template, error) {
	return f.change(id, fmt.Sprint("pin ", pinned), func(t *plancache.Template) { t.Pinned = pinned })
}

func (f *fakeTemplates) Delete(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, t := range f.list {
		if t.ID == id {
			f.list = append(f.list[:i], f.list[i+1:]...)
			f.acts = append(f.acts, id+" delete")
			return nil
		}
	}
	return fmt.Errorf("template %s: %w", id, plancache.ErrNotFound)
}

func (f *fakeTemplates) Update(_ context.Context, id string, ed plancache.Edit) (*plancache.Template, error) {
	return f.change(id, "edit", func(t *plancache.Template) {
		if ed.Name != nil {
			t.Name = *ed.Name
		}
	})
}

func (f *fakeTemplates) Workflows(ids ...string) ([]config.WorkflowConfig, error) {
	var out []config.WorkflowConfig
	for _, t := range f.List() {
		out = append(out, t.Workflow)
	}
	return out, nil
}

// cachedRun is a run the stock-check template planned.
const cachedRun = "r_cached"

// oneRun is a RunReader holding one run detail.
type oneRun struct{ d *RunDetail }

func (o oneRun) ListRuns(context.Context, RunQuery) ([]*run.Run, error) {
	return []*run.Run{o.d.Run}, nil
}
func (o oneRun) PendingApprovals(context.Context) ([]Approval, error) { return []Approval{}, nil }
func (o oneRun) RunDetail(_ context.Context, id string) (*RunDetail, error) {
	if id != o.d.Run.ID {
		return nil, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	return o.d, nil
}

func cachedRunDetail() *RunDetail {
	spec := `{"id":"stock","tool":"get_stock","args":{"sku":"W-200","warehouse":"north"}}`
	plan := json.RawMessage(`{"goal":"stock","steps":[` + spec + `],"answer":"Say how many units of W-200 the north warehouse has."}`)
	r := &run.Run{ID: cachedRun, Status: run.Done, Source: "api", Request: "Stock check for SKU W-200 in the north warehouse", Planner: "auto",
		Route: "cache", RouteReasons: []string{"matched learned template learned_get_stock"}, CreatedAt: layoutT0, StartedAt: at(0), FinishedAt: at(0.8),
		Answer: "W-200 in north: 41 units [stock]",
		Template: &run.TemplateUse{ID: "tpl-a", Name: "learned_get_stock", Phrasing: "Stock check for SKU {{sku}} in the {{warehouse}} warehouse",
			Params: map[string]any{"sku": "W-200", "warehouse": "north"}, Learned: true, AnswerPattern: true}}
	return &RunDetail{Run: r, Plan: plan, PlanVersion: 1, PlanSource: "cache",
		Plans:    []db.PlanRecord{{Version: 1, CreatedAt: *at(0.01), Source: "cache", Attempts: 1, Errors: []string{}, Plan: plan}},
		Steps:    []*run.Step{layoutStep(cachedRun, 1, spec, run.StepDone, 0.02, 0.7, `{"units": 41}`, "")},
		Attempts: []Attempt{}, ModelCalls: []ModelCall{}, ToolCalls: []ToolCall{}, Approvals: []Approval{}}
}

// The Templates page lists the learned templates; approving a pending one
// calls the API and its badge turns active; a template's page shows its
// phrasings, parameters, steps, answer pattern, last error and examples;
// a run planned from a template names it, with its values, and links to
// it; delete asks for confirmation and removes it.
func TestDashboardTemplates(t *testing.T) {
	ctx, jsErr := browser(t)
	tpls := newFakeTemplates()
	env := newTestEnv(t, statusOption(browserStatus), func(_ *Config, d *Deps) {
		d.Templates, d.Runs = tpls, oneRun{cachedRunDetail()}
	})
	act(t, ctx, chromedp.EmulateViewport(1366, 768), chromedp.Navigate(env.url+"/"))
	waitFor(t, ctx, "login form", "#login-token")
	act(t, ctx, chromedp.SendKeys(chromedp.CSS("#login-token"), env.token), chromedp.Click(chromedp.CSS("#login-submit")))
	waitFor(t, ctx, "navigation after login", "#nav a[data-nav=templates]")

	act(t, ctx, chromedp.Click(chromedp.CSS("#nav a[data-nav=templates]")))
	waitFor(t, ctx, "the pending template", `tr[data-template="tpl-b"] .badge.st-pending`)
	waitFor(t, ctx, "the active template", `tr[data-template="tpl-a"] .badge.st-active`)
	list := value(t, ctx, chromedp.Text(chromedp.CSS("#templates")))
	for _, want := range []string{"learned_get_stock", "learned_calc", "Stock check for SKU <sku> in the <warehouse> warehouse", "What is <a>% of <b>?", "86%", "remote", "+1 more"} {
		if !strings.Contains(list, want) {
			t.Errorf("the list lacks %q:\n%s", want, list)
		}
	}
	screenshot(t, ctx, "desktop-templates")

	act(t, ctx, chromedp.Click(chromedp.CSS(`button[data-act="approve"][data-template="tpl-b"]`)))
	waitFor(t, ctx, "the approved template's badge", `tr[data-template="tpl-b"] .badge.st-active`)
	if acts := tpls.done(); !strings.Contains(strings.Join(acts, ";"), "tpl-b approve by dashboard") {
		t.Errorf("the cache saw %v, want tpl-b approved by dashboard", acts)
	}

	act(t, ctx, chromedp.Click(chromedp.CSS(`tr[data-template="tpl-a"] .tpl-name a`)))
	waitFor(t, ctx, "the template's phrasings", "#template-phrasings")
	page := value(t, ctx, chromedp.Text(chromedp.CSS("#template")))
	for _, want := range []string{"How many <sku> are in the <warehouse> warehouse", "<warehouse>", "east", "get_stock", `{"sku":"{{sku}}","warehouse":"{{warehouse}}"}`,
		"Say whether {{sku}} needs a reorder", "${stock.units} units", `warehouse "attic" does not exist`, "sku=W-200, warehouse=north", "4 done, 1 failed"} {
		if !strings.Contains(page, want) {
			t.Errorf("the template page lacks %q:\n%s", want, page)
		}
	}
	if n := value(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#template a[href="#/run/r_ex1"]').length`)); n != 1 {
		t.Errorf("%d links to the example's run r_ex1, want 1", n)
	}
	act(t, ctx, chromedp.Click(chromedp.CSS(`button[data-act="pin"][data-template="tpl-a"]`)))
	waitFor(t, ctx, "the pinned badge", `#template-state .badge.pinned`)
	screenshot(t, ctx, "desktop-template")

	act(t, ctx, chromedp.Navigate(env.url+"/#/run/"+cachedRun))
	waitFor(t, ctx, "the run's template line", "#run-template")
	line := value(t, ctx, chromedp.Text(chromedp.CSS("#run-template")))
	if want := "Planned from learned template learned_get_stock (tpl-a) — params: sku=W-200, warehouse=north"; !strings.HasPrefix(line, want) {
		t.Errorf("the run page reads %q, want it to start %q", line, want)
	}
	screenshot(t, ctx, "desktop-run-from-template")
	act(t, ctx, chromedp.Click(chromedp.CSS(`#run-template a`)))
	waitFor(t, ctx, "the template the run links to", "#template-phrasings")

	// Delete asks first; say yes, as a person would, and the list no
	// longer holds it (the DELETE passes the dashboard's write checks).
	act(t, ctx, chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click(chromedp.CSS(`button[data-act="delete"][data-template="tpl-a"]`)))
	waitFor(t, ctx, "the list after the delete", `tr[data-template="tpl-b"]`)
	if n := value(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('tr[data-template="tpl-a"]').length`)); n != 0 {
		t.Errorf("the deleted template is still listed")
	}
	if acts := tpls.done(); !strings.Contains(strings.Join(acts, ";"), "tpl-a delete") {
		t.Errorf("the cache saw %v, want tpl-a deleted", acts)
	}

	if errs := jsErr.get(); len(errs) > 0 {
		t.Errorf("JavaScript errors: %v", errs)
	}
}
