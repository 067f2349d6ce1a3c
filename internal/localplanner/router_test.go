package localplanner

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestExtractFeatures(t *testing.T) {
	known := KnownWords(weatherTools().List())
	tests := []struct {
		text string
		want Features
	}{
		{"What is the weather in Austin?", Features{Words: 6, Asks: 1, UnknownEntities: 1}},
		{"Get the weather", Features{Words: 3, Asks: 1}},
		{"Weather first. Calc next, and then search cities? Also sum it?", Features{Words: 11, Asks: 5}},
		{"If it rains in Oslo use Bergen, otherwise use Tromsø unless it is 2024.", Features{Words: 14, Asks: 1, Conditionals: 3, UnknownEntities: 4}},
		{"Do these:\n1. weather\n2. cities\n- calc", Features{Words: 8, Asks: 3}},
		{"", Features{}},
	}
	for _, tt := range tests {
		if got := ExtractFeatures(tt.text, known); got != tt.want {
			t.Errorf("ExtractFeatures(%q) = %+v, want %+v", tt.text, got, tt.want)
		}
	}
}

func TestScore(t *testing.T) {
	simple := Features{Words: 8, Asks: 1}.Score()
	hard := Features{Words: 140, Asks: 6, Conditionals: 4, UnknownEntities: 12}.Score()
	if simple != 0 || hard != 1 {
		t.Fatalf("scores %v %v, want 0 and 1", simple, hard)
	}
	if s := (Features{Words: 1000, Asks: 1}).Score(); s > 0.2 {
		t.Errorf("length alone must not escalate: %v", s)
	}
}

func TestFingerprint(t *testing.T) {
	a := Fingerprint("What is the weather in Austin, TX?")
	b := Fingerprint("austin tx weather: what is it")
	c := Fingerprint("What is the weather in Boston?")
	if a != b || a == c || len(a) != 32 {
		t.Fatalf("fingerprints %s %s %s", a, b, c)
	}
}

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

func (g *allowGate) AllowRemote(context.Context, Request) (bool, string) {
	g.asked++
	return true, "budget ok, link online"
}

const hardRequest = "Compare Reno, Boise, Fresno and Tucson: if any July mean is above 30 C, list cities like it, otherwise find the coolest one, " +
	"and then calculate the difference to Austin? Also check whether Denver fits, unless it is in the 2019 list."

func TestRoute(t *testing.T) {
	tests := []struct {
		name      string
		req       Request
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
		{name: "keyword template", req: Request{Text: "Is Reno as hot as Austin?"}, gate: &allowGate{},
			route: RouteTemplate, planner: RouteLocal, workflow: "city_heat", reasons: []string{"matched keywords hot as", "no planner call"}},
		{name: "classified template", req: Request{Text: "what do 2 and 3 make"}, classify: `{"workflow":"sum"}`,
			route: RouteTemplate, planner: RouteLocal, workflow: "sum", reasons: []string{"classified the request as workflow sum", "chosen by workflow sum"}},
		{name: "scratchpad and sensitive", req: Request{Text: "incident at pump 3", Planner: "remote"}, gate: &allowGate{},
			route: RouteScratchpad, planner: RouteLocal, workflow: "incident_notes", reasons: []string{"workflow incident_notes is sensitive", "the request is sensitive", "scratchpad"}},
		{name: "simple local", req: Request{Text: "weather in Oslo"}, classify: `{"workflow":"none"}`, gate: &allowGate{},
			route: RouteLocal, planner: RouteLocal, reasons: []string{"no workflow matched", "below escalate_score"}},
		{name: "complex remote", req: Request{Text: hardRequest}, classify: `{"workflow":"none"}`, gate: &allowGate{},
			route: RouteRemote, planner: RouteRemote, reasons: []string{"reaches escalate_score", "remote planner allowed: budget ok"}, gateAsked: true},
		{name: "complex but remote disabled", req: Request{Text: hardRequest}, classify: `{"workflow":"none"}`,
			route: RouteLocal, planner: RouteLocal, reasons: []string{"reaches escalate_score", "remote fallback disabled"}},
		{name: "complex but sensitive", req: Request{Text: hardRequest, Sensitive: true}, classify: `{"workflow":"none"}`, gate: &allowGate{},
			route: RouteLocal, planner: RouteLocal, reasons: []string{"request is marked sensitive", "the request is sensitive"}},
		{name: "history escalates", req: Request{Text: "weather in Oslo"}, classify: `{"workflow":"none"}`, history: &fakeHistory{n: 3}, gate: &allowGate{},
			route: RouteRemote, planner: RouteRemote, reasons: []string{"failed on the local planner 3 times", "reaches escalate_score"}, gateAsked: true},
		{name: "history unavailable", req: Request{Text: "weather in Oslo"}, classify: `{"workflow":"none"}`, history: &fakeHistory{err: errors.New("db locked")},
			route: RouteLocal, planner: RouteLocal, reasons: []string{"history unavailable: db locked"}},
		{name: "request forces local", req: Request{Text: hardRequest, Planner: "local"}, classify: `{"workflow":"none"}`, gate: &allowGate{},
			route: RouteLocal, planner: RouteLocal, reasons: []string{"local planner chosen by the request"}},
		{name: "request forces remote", req: Request{Text: "weather in Oslo", Planner: "remote"}, classify: `{"workflow":"none"}`, gate: &allowGate{},
			route: RouteRemote, planner: RouteRemote, reasons: []string{"remote planner chosen by the request"}, gateAsked: true},
		{name: "config mode remote", mode: "remote", req: Request{Text: "weather in Oslo"}, classify: `{"workflow":"none"}`,
			route: RouteLocal, planner: RouteLocal, reasons: []string{"remote planner chosen by config", "remote fallback disabled"}},
		{name: "bad override", req: Request{Text: "weather in Oslo", Planner: "cloud"}, classify: `{"workflow":"none"}`,
			route: RouteLocal, planner: RouteLocal, reasons: []string{`override "cloud" ignored`}},
		{name: "classifier fails", req: Request{Text: "weather in Oslo"}, classify: `???`,
			route: RouteLocal, planner: RouteLocal, reasons: []string{"workflow classification failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &scriptedModel{}
			if tt.classify != "" {
				m.replies = []ChatResponse{reply(tt.classify)}
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
			if tt.history != nil && tt.history.seen != Fingerprint(tt.req.Text) {
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
	d, err := r.Route(context.Background(), Request{Text: "weather in Oslo"})
	if err != nil || d.Route != RouteLocal {
		t.Fatalf("decision %+v, %v", d, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tpl := newTestTemplates(t, &scriptedModel{errs: []error{context.Canceled}})
	if _, err := NewRouter(testPlannerConfig(), weatherTools(), tpl, nil, nil, nil).Route(ctx, Request{Text: "weather"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestNoRemote(t *testing.T) {
	ok, why := NoRemote{}.AllowRemote(context.Background(), Request{})
	if ok || why != "remote fallback disabled" {
		t.Fatal(ok, why)
	}
}
