package localplanner

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/config"
)

func testWorkflows() []config.WorkflowConfig {
	return []config.WorkflowConfig{
		{
			Name: "city_heat", Description: "Compare a city's July heat with similar cities.",
			Keywords: []string{"heat wave", "hot as"},
			Params: map[string]any{"type": "object", "additionalProperties": false, "required": []any{"city"},
				"properties": map[string]any{
					"city":  map[string]any{"type": "string", "minLength": 1},
					"limit": map[string]any{"type": "integer", "minimum": 1, "default": int64(5)},
				}},
			Steps: []config.WorkflowStep{
				{ID: "weather", Tool: "get_weather", Args: map[string]any{"city": "{{city}}", "units": "c"}},
				{ID: "similar", Tool: "search_cities", Args: map[string]any{"query": "July mean near ${weather.july_mean_c} C, like {{ city }}", "limit": "{{limit}}"}, DependsOn: []string{"weather"}},
				{ID: "pick", Task: "Pick the {{limit}} hottest of ${similar}", Tools: []string{"calc"}, DependsOn: []string{"similar"}},
			},
			Answer: "Compare {{city}} with the cities of ${pick}.",
		},
		{Name: "incident_notes", Description: "Free-form incident notes.", Keywords: []string{"incident"}, Mode: ModeScratchpad, Sensitive: true},
		{Name: "sum", Description: "Add two numbers.", Keywords: []string{"add up", "sum"},
			Params: map[string]any{"type": "object", "required": []any{"expr"}, "properties": map[string]any{"expr": map[string]any{"type": "string"}}},
			Steps:  []config.WorkflowStep{{ID: "total", Tool: "calc", Args: map[string]any{"expression": "{{expr}}"}}}, Planner: "local"},
	}
}

func newTestTemplates(t *testing.T, m ChatModel) *Templates {
	t.Helper()
	tpl, err := NewTemplates(testWorkflows(), m, weatherTools(), testPlannerConfig(), testModels(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestTemplatesMatch(t *testing.T) {
	tpl := newTestTemplates(t, &scriptedModel{})
	tests := []struct {
		text, want string
		kws        []string
	}{
		{"Is Reno as HOT AS Austin?", "city_heat", []string{"hot as"}},
		{"a heat\twave in Austin, is it hot as Reno", "city_heat", []string{"heat wave", "hot as"}},
		{"log this Incident please", "incident_notes", []string{"incident"}},
		{"incidents in the shop", "", nil},     // whole words only
		{"checksum of the file", "", nil},      // "sum" inside a word
		{"sum: 2 + 3", "sum", []string{"sum"}}, // punctuation is a boundary
		{"the weather today", "", nil},
	}
	for _, tt := range tests {
		name, kws, ok := tpl.Match(tt.text)
		if name != tt.want || ok != (tt.want != "") || !reflect.DeepEqual(kws, tt.kws) {
			t.Errorf("Match(%q) = %q %v %v; want %q %v", tt.text, name, kws, ok, tt.want, tt.kws)
		}
	}
}

func TestTemplatesPlan(t *testing.T) {
	m := &scriptedModel{replies: []ChatResponse{reply(`{"city": "Austin, TX"}`)}}
	tpl := newTestTemplates(t, m)
	res, err := tpl.Plan(context.Background(), Request{Text: "heat wave: is Austin hot?", RunID: "r"}, "city_heat")
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != SourceTemplate || res.Attempts != 0 || res.AuxCalls != 1 || res.Workflow != "city_heat" {
		t.Fatalf("result = %+v", res)
	}
	if c := m.calls[0]; c.Purpose != PurposeExtract || c.Model != "granite4:tiny-h" || !strings.Contains(string(c.Format), `"city"`) {
		t.Errorf("extraction call = %+v", c)
	}
	s := res.Plan.Steps
	if s[0].Args["city"] != "Austin, TX" {
		t.Errorf("city = %#v", s[0].Args["city"])
	}
	if s[1].Args["limit"] != int64(5) && s[1].Args["limit"] != 5.0 {
		t.Errorf("a whole placeholder keeps its type (default 5): %#v", s[1].Args["limit"])
	}
	if s[1].Args["query"] != "July mean near ${weather.july_mean_c} C, like Austin, TX" {
		t.Errorf("query = %q", s[1].Args["query"])
	}
	if s[2].Task != "Pick the 5 hottest of ${similar}" || s[2].Tier != "fast" {
		t.Errorf("task = %q tier %q", s[2].Task, s[2].Tier)
	}
	if res.Plan.Answer != "Compare Austin, TX with the cities of ${pick}." || res.Plan.Goal != "heat wave: is Austin hot?" {
		t.Errorf("answer %q goal %q", res.Plan.Answer, res.Plan.Goal)
	}
}

func TestTemplatesParamsRepaired(t *testing.T) {
	m := &scriptedModel{replies: []ChatResponse{reply(`{"town": "Austin"}`), reply(`{"city": "Austin", "limit": 3}`)}}
	tpl := newTestTemplates(t, m)
	res, err := tpl.Plan(context.Background(), Request{Text: "heat wave in Austin, top 3"}, "city_heat")
	if err != nil {
		t.Fatal(err)
	}
	if res.AuxCalls != 2 || res.Plan.Steps[1].Args["limit"] != 3.0 {
		t.Fatalf("calls %d limit %#v", res.AuxCalls, res.Plan.Steps[1].Args["limit"])
	}
	if last := m.calls[1].Messages; !strings.Contains(last[len(last)-1].Content, "not valid") {
		t.Errorf("the problem must be fed back: %q", last[len(last)-1].Content)
	}
}

func TestTemplatesPlanFails(t *testing.T) {
	tests := []struct {
		name     string
		workflow string
		replies  []ChatResponse
		want     string
		mutate   func(wfs []config.WorkflowConfig)
	}{
		{"params never valid", "city_heat", []ChatResponse{reply(`{}`), reply(`{"city": ""}`), reply(`nothing`)}, "parameters not valid after 3 calls", nil},
		{"instantiated plan invalid", "sum", []ChatResponse{reply(`{"expr": "1+1"}`)}, `tool "calculator" does not exist`,
			func(wfs []config.WorkflowConfig) { wfs[2].Steps[0].Tool = "calculator" }},
		{"unknown workflow", "nope", nil, `no workflow named "nope"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wfs := testWorkflows()
			if tt.mutate != nil {
				tt.mutate(wfs)
			}
			tpl, err := NewTemplates(wfs, &scriptedModel{replies: tt.replies}, weatherTools(), testPlannerConfig(), testModels(), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = tpl.Plan(context.Background(), Request{Text: "x"}, tt.workflow)
			if !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrTemplate containing %q", err, tt.want)
			}
		})
	}
}

func TestNewTemplatesRejectsUndeclaredPlaceholder(t *testing.T) {
	wfs := testWorkflows()
	wfs[2].Steps[0].Args["expression"] = "{{expr}} + {{other}}"
	_, err := NewTemplates(wfs, &scriptedModel{}, weatherTools(), testPlannerConfig(), testModels(), nil)
	if err == nil || !strings.Contains(err.Error(), "{{other}}") || !strings.Contains(err.Error(), "workflows[2]") {
		t.Fatalf("err = %v", err)
	}
	wfs = testWorkflows()
	wfs[0].Params = map[string]any{"type": 12}
	if _, err := NewTemplates(wfs, &scriptedModel{}, weatherTools(), testPlannerConfig(), testModels(), nil); err == nil {
		t.Fatal("an invalid params schema must be rejected")
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		reply string
		want  string
		err   bool
	}{
		{`{"workflow": "sum"}`, "sum", false},
		{`{"workflow": "none"}`, NoWorkflow, false},
		{`{"workflow": "made_up"}`, NoWorkflow, false},
		{`garbage`, NoWorkflow, true},
	}
	for _, tt := range tests {
		m := &scriptedModel{replies: []ChatResponse{reply(tt.reply)}}
		got, u, err := newTestTemplates(t, m).Classify(context.Background(), Request{Text: "what is 2 plus 2"})
		if got != tt.want || (err != nil) != tt.err || u.Calls != 1 {
			t.Errorf("Classify with reply %s = %q, %v, %v", tt.reply, got, u, err)
		}
		if f := string(m.calls[0].Format); !strings.Contains(f, `"enum":["city_heat","incident_notes","sum","none"]`) {
			t.Errorf("format = %s", f)
		}
	}
}

func TestInstantiateMissingParam(t *testing.T) {
	wc := testWorkflows()[0]
	p, err := Instantiate(wc, map[string]any{"city": "Oslo"}, "r")
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("a missing parameter inside text is an error: %v %+v", err, p)
	}
	wc.Steps = wc.Steps[:1]
	wc.Answer = ""
	p, err = Instantiate(wc, map[string]any{}, "r")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Steps[0].Args["city"]; ok || p.Steps[0].Args["units"] != "c" {
		t.Fatalf("a missing whole placeholder leaves the argument out: %#v", p.Steps[0].Args)
	}
}

// Params the caller gave are checked and used as they are: no model call
// re-extracts them; params that do not fit the schema are refused.
func TestTemplatesUseGivenParams(t *testing.T) {
	m := &scriptedModel{}
	tpl := newTestTemplates(t, m)
	res, err := tpl.Plan(context.Background(), Request{Text: "heat", Params: map[string]any{"city": "Lagos"}}, "city_heat")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.calls) != 0 || res.AuxCalls != 0 {
		t.Errorf("%d model calls, want none: the params were given", len(m.calls))
	}
	if got := res.Plan.Steps[0].Args["city"]; got != "Lagos" {
		t.Errorf("city = %#v, want the given Lagos", got)
	}
	if _, err := tpl.Plan(context.Background(), Request{Text: "heat", Params: map[string]any{"city": 7}}, "city_heat"); err == nil {
		t.Error("params that do not fit the schema were used")
	}
}

func TestInstantiateFillsTheAnswerPattern(t *testing.T) {
	wc := config.WorkflowConfig{Name: "pct", AnswerPattern: "{{pct}}% of {{base}} is ${calc.result}.",
		Steps: []config.WorkflowStep{{ID: "calc", Tool: "calc", Args: map[string]any{"expression": "{{base}} * {{pct}} / 100"}}}}
	p, err := Instantiate(wc, map[string]any{"pct": 17.0, "base": 2340.0}, "What is 17% of 2340?")
	if err != nil {
		t.Fatal(err)
	}
	if p.AnswerPattern != "17% of 2340 is ${calc.result}." {
		t.Fatalf("pattern %q", p.AnswerPattern)
	}
}
