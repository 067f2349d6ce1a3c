package planning

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/plan"
)

// Fixtures for the router: three tools, three workflows, and a model that
// answers from a script.

type testCatalog struct{ tools []plan.ToolInfo }

func (c testCatalog) Has(name string) bool {
	for _, t := range c.tools {
		if t.Name == name {
			return true
		}
	}
	return false
}

func (c testCatalog) ValidateArgs(name string, _ map[string]any) error {
	if !c.Has(name) {
		return fmt.Errorf("unknown tool %q", name)
	}
	return nil
}

func (c testCatalog) List() []plan.ToolInfo { return c.tools }

func weatherTools() testCatalog {
	obj := func(props ...string) map[string]any {
		p := map[string]any{}
		for _, n := range props {
			p[n] = map[string]any{"type": "string"}
		}
		return map[string]any{"type": "object", "properties": p}
	}
	return testCatalog{tools: []plan.ToolInfo{
		{Name: "get_weather", Description: "Current weather and July mean temperature for a city.", ArgsSchema: obj("city", "units")},
		{Name: "search_cities", Description: "Find cities matching a query.", ArgsSchema: obj("query", "limit")},
		{Name: "calc", Description: "Evaluate an arithmetic expression.", ArgsSchema: obj("expression")},
	}}
}

func testPlannerConfig() config.PlannerConfig {
	return config.PlannerConfig{Mode: "auto", MaxSteps: 12, RepairAttempts: 2, Timeout: config.Duration(time.Minute),
		PromptTokenBudget: 3000, Complexity: config.ComplexityConfig{EscalateScore: 0.7}, ClassifyWorkflows: "always"}
}

func testWorkflows() []config.WorkflowConfig {
	return []config.WorkflowConfig{
		{Name: "city_heat", Description: "Compare a city's July heat with similar cities.", Keywords: []string{"heat wave", "hot as"},
			Params: map[string]any{"type": "object", "required": []any{"city"}, "properties": map[string]any{"city": map[string]any{"type": "string"}}},
			Steps:  []config.WorkflowStep{{ID: "weather", Tool: "get_weather", Args: map[string]any{"city": "{{city}}"}}}},
		{Name: "incident_notes", Description: "Free-form incident notes.", Keywords: []string{"incident"}, Mode: localplanner.ModeScratchpad, Sensitive: true},
		{Name: "sum", Description: "Add two numbers.", Keywords: []string{"add up", "sum"},
			Params: map[string]any{"type": "object", "required": []any{"expr"}, "properties": map[string]any{"expr": map[string]any{"type": "string"}}},
			Steps:  []config.WorkflowStep{{ID: "total", Tool: "calc", Args: map[string]any{"expression": "{{expr}}"}}}, Planner: "local"},
	}
}

func newTestTemplates(t *testing.T, m localplanner.ChatModel) *localplanner.Templates {
	t.Helper()
	tpl, err := localplanner.NewTemplates(testWorkflows(), m, weatherTools(), testPlannerConfig(),
		config.ModelsConfig{Router: "granite4:tiny-h", Planner: "gemma3:12b", Fast: "granite4:tiny-h"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// scriptedModel answers one scripted reply (or error) per call.
type scriptedModel struct {
	mu      sync.Mutex
	replies []localplanner.ChatResponse
	errs    []error
	calls   int
}

func (m *scriptedModel) Chat(_ context.Context, _ localplanner.ChatRequest) (localplanner.ChatResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.calls
	m.calls++
	if i < len(m.errs) && m.errs[i] != nil {
		return localplanner.ChatResponse{}, m.errs[i]
	}
	if i >= len(m.replies) {
		return localplanner.ChatResponse{}, errors.New("scripted model: no reply scripted for this call")
	}
	r := m.replies[i]
	r.DoneReason = "stop"
	return r, nil
}

func reply(s string) localplanner.ChatResponse { return localplanner.ChatResponse{Content: s} }

type fakeHistory struct {
	n    int
	err  error
	seen string
}

func (h *fakeHistory) LocalFailures(_ context.Context, fp string) (int, error) {
	h.seen = fp
	return h.n, h.err
}

type allowGate struct{ asked int }

func (g *allowGate) AllowRemote(context.Context, localplanner.Request) (bool, string) {
	g.asked++
	return true, "budget ok, link online"
}

const hardRequest = "Compare Reno, Boise, Fresno and Tucson: if any July mean is above 30 C, list cities like it, otherwise find the coolest one, " +
	"and then calculate the difference to Austin? Also check whether Denver fits, unless it is in the 2019 list."

func TestRoute(t *testing.T) {
	tests := []struct {
		name      string
		req       localplanner.Request
		mode      string
		history   *fakeHistory
		gate      RemoteGate
		classify  string // router model reply when no keyword matches
		route     Route
		planner   Route
		workflow  string
		reasons   []string
		gateAsked bool
	}{
		{name: "keyword template", req: localplanner.Request{Text: "Is Reno as hot as Austin?"}, gate: &allowGate{},
			route: RouteTemplate, planner: RouteLocal, workflow: "city_heat", reasons: []string{"matched keywords hot as", "no planner call"}},
		{name: "classified template", req: localplanner.Request{Text: "what do 2 and 3 make"}, classify: `{"workflow":"sum"}`,
			route: RouteTemplate, planner: RouteLocal, workflow: "sum", reasons: []string{"classified the request as workflow sum", "chosen by workflow sum"}},
		{name: "scratchpad and sensitive", req: localplanner.Request{Text: "incident at pump 3", Planner: "remote"}, gate: &allowGate{},
			route: RouteScratchpad, planner: RouteLocal, workflow: "incident_notes", reasons: []string{"workflow incident_notes is sensitive", "the request is sensitive", "scratchpad"}},
		{name: "simple local", req: localplanner.Request{Text: "weather in Oslo"}, classify: `{"workflow":"none"}`, gate: &allowGate{},
			route: RouteLocal, planner: RouteLocal, reasons: []string{"no workflow matched", "below escalate_score"}},
		{name: "complex remote", req: localplanner.Request{Text: hardRequest}, classify: `{"workflow":"none"}`, gate: &allowGate{},
			route: RouteRemote, planner: RouteRemote, reasons: []string{"reaches escalate_score", "remote planner allowed: budget ok"}, gateAsked: true},
		{name: "complex but remote disabled", req: localplanner.Request{Text: hardRequest}, classify: `{"workflow":"none"}`,
			route: RouteLocal, planner: RouteLocal, reasons: []string{"reaches escalate_score", "remote fallback disabled"}},
		{name: "complex but sensitive", req: localplanner.Request{Text: hardRequest, Sensitive: true}, classify: `{"workflow":"none"}`, gate: &allowGate{},
			route: RouteLocal, planner: RouteLocal, reasons: []string{"request is marked sensitive", "the request is sensitive"}},
		{name: "history escalates", req: localplanner.Request{Text: "weather in Oslo"}, classify: `{"workflow":"none"}`, history: &fakeHistory{n: 3}, gate: &allowGate{},
			route: RouteRemote, planner: RouteRemote, reasons: []string{"failed on the local planner 3 times", "reaches escalate_score"}, gateAsked: true},
		{name: "history unavailable", req: localplanner.Request{Text: "weather in Oslo"}, classify: `{"workflow":"none"}`, history: &fakeHistory{err: errors.New("db locked")},
			route: RouteLocal, planner: RouteLocal, reasons: []string{"history unavailable: db locked"}},
		{name: "request forces local", req: localplanner.Request{Text: hardRequest, Planner: "local"}, classify: `{"workflow":"none"}`, gate: &allowGate{},
			route: RouteLocal, planner: RouteLocal, reasons: []string{"local planner chosen by the request"}},
		{name: "request forces remote", req: localplanner.Request{Text: "weather in Oslo", Planner: "remote"}, classify: `{"workflow":"none"}`, gate: &allowGate{},
			route: RouteRemote, planner: RouteRemote, reasons: []string{"remote planner chosen by the request"}, gateAsked: true},
		{name: "config mode remote", mode: "remote", req: localplanner.Request{Text: "weather in Oslo"}, classify: `{"workflow":"none"}`,
			route: RouteLocal, planner: RouteLocal, reasons: []string{"remote planner chosen by config", "remote fallback disabled"}},
		{name: "bad override", req: localplanner.Request{Text: "weather in Oslo", Planner: "cloud"}, classify: `{"workflow":"none"}`,
			route: RouteLocal, planner: RouteLocal, reasons: []string{`override "cloud" ignored`}},
		{name: "classifier fails", req: localplanner.Request{Text: "weather in Oslo"}, classify: `???`,
			route: RouteLocal, planner: RouteLocal, reasons: []string{"workflow classification failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &scriptedModel{}
			if tt.classify != "" {
				m.replies = []localplanner.ChatResponse{reply(tt.classify)}
			}
			cfg := testPlannerConfig()
			if tt.mode != "" {
				cfg.Mode = tt.mode
			}
			var h History
			if tt.history != nil {
				h = tt.history
			}
			r := NewRouter(cfg, weatherTools(), newTestTemplates(t, m), h, tt.gate, nil)
			d, err := r.Route(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if d.Route != tt.route || d.Planner != tt.planner || d.Workflow != tt.workflow {
				t.Fatalf("decision %s/%s/%q, want %s/%s/%q; reasons:\n%s", d.Route, d.Planner, d.Workflow, tt.route, tt.planner, tt.workflow, strings.Join(d.Reasons, "\n"))
			}
			all := strings.Join(d.Reasons, "\n")
			for _, want := range tt.reasons {
				if !strings.Contains(all, want) {
					t.Errorf("reasons lack %q:\n%s", want, all)
				}
			}
			if g, ok := tt.gate.(*allowGate); ok && (g.asked > 0) != tt.gateAsked {
				t.Errorf("gate asked %d times, want asked=%v", g.asked, tt.gateAsked)
			}
			if tt.history != nil && tt.history.seen != localplanner.Fingerprint(tt.req.Text) {
				t.Error("history must be asked with the request's fingerprint")
			}
			if (tt.classify != "") != (d.Usage.Calls == 1) {
				t.Errorf("classification calls = %d", d.Usage.Calls)
			}
		})
	}
}

func TestRouteWithoutTemplates(t *testing.T) {
	r := NewRouter(testPlannerConfig(), weatherTools(), nil, nil, nil, nil)
	d, err := r.Route(context.Background(), localplanner.Request{Text: "weather in Oslo"})
	if err != nil || d.Route != RouteLocal {
		t.Fatalf("decision %+v, %v", d, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tpl := newTestTemplates(t, &scriptedModel{errs: []error{context.Canceled}})
	if _, err := NewRouter(testPlannerConfig(), weatherTools(), tpl, nil, nil, nil).Route(ctx, localplanner.Request{Text: "weather"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestNoRemote(t *testing.T) {
	ok, why := NoRemote{}.AllowRemote(context.Background(), localplanner.Request{})
	if ok || why != "remote fallback disabled" {
		t.Fatal(ok, why)
	}
}

func TestClassificationOnlyWhenRelated(t *testing.T) {
	tests := []struct {
		mode, text string
		calls      int
	}{
		{"related", "weather in Oslo", 0},    // shares no word with any workflow
		{"related", "incident at pump 3", 0}, // matched by keyword, no call either
		{"related", "two numbers please", 1}, // shares "numbers" with the sum workflow
		{"always", "weather in Oslo", 1},
		{"never", "two numbers please", 0},
	}
	for _, tt := range tests {
		m := &scriptedModel{replies: []localplanner.ChatResponse{reply(`{"workflow":"none"}`)}}
		cfg := testPlannerConfig()
		cfg.ClassifyWorkflows = tt.mode
		d, err := NewRouter(cfg, weatherTools(), newTestTemplates(t, m), nil, nil, nil).Route(context.Background(), localplanner.Request{Text: tt.text})
		if err != nil {
			t.Fatal(err)
		}
		if d.Usage.Calls != tt.calls {
			t.Errorf("%s %q: %d classification calls, want %d (%v)", tt.mode, tt.text, d.Usage.Calls, tt.calls, d.Reasons)
		}
	}
}
