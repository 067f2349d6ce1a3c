package scenarios

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/tools"
	"github.com/ollama/ollama/api"
)

func registry(t *testing.T) *tools.Registry {
	t.Helper()
	r, err := NewRegistry(config.Default().Tools, tools.Deps{}, Tools(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// Every scenario plan is valid against the fixture catalog, and its
// workflow template instantiates.
func TestPlansAreValid(t *testing.T) {
	cat := Catalog{R: registry(t)}
	for _, sc := range All() {
		p, err := sc.PlanFor()
		if err != nil {
			t.Fatalf("%s: %v", sc.Name, err)
		}
		if errs := plan.Validate(p, cat, 12); len(errs) > 0 {
			t.Errorf("%s: plan invalid: %v", sc.Name, plan.Errors(errs))
		}
		if sc.Replan != nil && len(sc.Replan.Steps) > 0 {
			if errs := plan.ValidateRemaining(sc.Replan, cat, 12, []string{"tide"}); len(errs) > 0 {
				t.Errorf("%s: replan invalid: %v", sc.Name, plan.Errors(errs))
			}
		}
		for id, task := range sc.Tasks {
			st, ok := p.Step(id)
			if !ok && sc.Replan != nil {
				st, ok = sc.Replan.Step(id)
			}
			if !ok || !strings.Contains(st.Task, task.Marker) {
				t.Errorf("%s: task script %s does not match a step's task", sc.Name, id)
			}
		}
	}
}

// The order's numbers flow through the fixtures as the expectations say.
func TestOrderFixturesChain(t *testing.T) {
	r := registry(t)
	ctx := context.Background()
	call := func(name, args string) string {
		res, err := r.Call(ctx, name, []byte(args))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return string(res.Output)
	}
	inv := call("check_inventory", `{"items":[{"sku":"VAX-FRIDGE-SDD","qty":1},{"sku":"TEMP-LOGGER","qty":4}]}`)
	ship := call("calculate_shipping", `{"weight_kg":53.4,"destination":"Tromsø, NO"}`)
	conf := call("confirm_order", `{"order_id":"A-1042","shipping_usd":200.54,"goods_usd":5150}`)
	for _, c := range []struct{ out, want string }{{inv, `"total_weight_kg":53.4`}, {inv, `"goods_usd":5150`}, {ship, `"cost_usd":200.54`}, {conf, "5350.54"}} {
		if !strings.Contains(c.out, c.want) {
			t.Errorf("%s lacks %s", c.out, c.want)
		}
	}
	if _, err := r.Call(ctx, "station_forecast", []byte(`{"station":"BRAVO-AWS"}`)); err == nil || !strings.Contains(err.Error(), "offline") {
		t.Errorf("station_forecast error = %v, want the offline sensor", err)
	}
	if spec, _ := r.Spec("confirm_order"); spec.Approval != tools.ApprovalRequired || spec.Idempotent {
		t.Errorf("confirm_order spec = %+v: want approval required, not idempotent", spec)
	}
}

func TestScoreByIDAndByTool(t *testing.T) {
	sc, _ := Find(NameTemplate)
	steps := []StepOutput{{ID: "low_stock", Tool: "list_low_stock", Output: `GLV-NIT-M ORS-SACHET`},
		{ID: "lead_times", Tool: "supplier_lead_times", Output: `{"ORS-SACHET":9}`}, {ID: "draft_po", Output: "total 640.00"}}
	s := sc.Score(steps, "W2: total 640.00, 9 days", false)
	if s.StepsOK != 3 || s.FactsOK != 3 {
		t.Errorf("score = %+v", s)
	}
	// By tool: sp ids, and the task step's facts come from the answer.
	steps = []StepOutput{{ID: "sp1", Tool: "list_low_stock", Output: `GLV-NIT-M ORS-SACHET`}, {ID: "sp2", Tool: "supplier_lead_times", Output: `{}`}}
	s = sc.Score(steps, "W2 total 640.00", true)
	if s.StepsOK != 2 || s.StepsTotal != 3 || s.FactsOK != 2 || len(s.Missing) != 2 {
		t.Errorf("by-tool score = %+v", s)
	}
}

func TestCriticalPath(t *testing.T) {
	p := &plan.Plan{Steps: []plan.Step{{ID: "a"}, {ID: "b"}, {ID: "c", DependsOn: []string{"a", "b"}}, {ID: "d", DependsOn: []string{"a"}}}}
	d, chain := CriticalPath(p, map[string]time.Duration{"a": 1, "b": 5, "c": 2, "d": 3})
	if d != 7 || strings.Join(chain, ",") != "b,c" {
		t.Errorf("critical path = %d %v, want 7 [b c]", d, chain)
	}
}

// The script answers each role: planner, classifier, executor task with a
// native tool call then an answer, the baseline's forced tool call, and
// the ReAct loop turn by turn.
func TestScriptRoles(t *testing.T) {
	s := Script()
	sc, _ := Find(NameTemplate)
	city, _ := Find(NameCities)
	ask := func(system string, msgs ...api.Message) ollamasim.Reply {
		t.Helper()
		all := append([]api.Message{{Role: "system", Content: system}}, msgs...)
		r, ok := s.Respond(&api.ChatRequest{Messages: all, Tools: api.Tools{{Type: "function"}}})
		if !ok {
			t.Fatalf("no reply for %q", system)
		}
		return r
	}
	if r := ask("You are the planner of agentd. ...", api.Message{Role: "user", Content: city.Request}); !strings.Contains(r.Content, `"compare"`) {
		t.Errorf("planner reply = %q", r.Content)
	}
	if r := ask("Decide whether the user's request is one of these known workflows.", api.Message{Role: "user", Content: city.Request}); r.Content != `{"workflow":"none"}` {
		t.Errorf("classify = %q", r.Content)
	}
	task := api.Message{Role: "user", Content: "Run state:\n...\nTask: Draft a purchase order for the low-stock items of warehouse W2"}
	if r := ask("You carry out one step", task); len(r.ToolCalls) != 1 || r.ToolCalls[0].Name != "calc" {
		t.Errorf("first task turn = %+v, want a calc call", r)
	}
	if r := ask("You carry out one step", task, api.Message{Role: "assistant"}, api.Message{Role: "tool", Content: "640"}); !strings.Contains(r.Content, "640.00") {
		t.Errorf("second task turn = %+v", r)
	}
	if r := ask("You carry out one step", api.Message{Role: "user", Content: `Step x: Call the tool get_climate with these arguments: {"city":"Denver, CO"}`}); len(r.ToolCalls) != 1 || r.ToolCalls[0].Arguments["city"] != "Denver, CO" {
		t.Errorf("forced tool call = %+v", r)
	}
	turns := []string{}
	msgs := []api.Message{{Role: "user", Content: sc.Request}}
	for range len(sc.React) + 1 {
		r := ask("You answer the user's request by working step by step.", msgs...)
		turns = append(turns, r.Content)
		msgs = append(msgs, api.Message{Role: "assistant", Content: r.Content}, api.Message{Role: "user", Content: "Result"})
	}
	if !strings.Contains(turns[0], `"tool":"list_low_stock"`) || !strings.Contains(turns[len(turns)-1], `"action":"final"`) {
		t.Errorf("react turns = %v", turns)
	}
}
