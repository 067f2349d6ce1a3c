package localplanner

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/plan"
)

func testPlannerConfig() config.PlannerConfig {
	return config.PlannerConfig{Mode: "auto", MaxSteps: 12, RepairAttempts: 2, Timeout: config.Duration(time.Minute),
		PromptTokenBudget: 3000, Complexity: config.ComplexityConfig{EscalateScore: 0.7}, ClassifyWorkflows: "always"}
}

func testModels() config.ModelsConfig {
	return config.ModelsConfig{Router: "granite4:tiny-h", Planner: "gemma3:12b", Fast: "granite4:tiny-h",
		Options: map[string]config.ModelOptions{"gemma3:12b": {NumPredict: 512}}}
}

const goodPlan = `{"goal":"hot cities","steps":[
 {"id":"austin_weather","tool":"get_weather","args":{"city":"Austin, TX"}},
 {"id":"hot_cities","task":"List cities within 2 C of ${austin_weather.july_mean_c}","tools":["search_cities"],"tier":"fast","depends_on":["austin_weather"]}],
 "answer":"List the cities."}`

func TestPlanFirstTry(t *testing.T) {
	m := &scriptedModel{replies: []ChatResponse{reply("Here you go:\n```json\n" + goodPlan + "\n```")}}
	p := New(m, weatherTools(), testPlannerConfig(), testModels(), nil)
	res, err := p.Plan(context.Background(), Request{Text: "Which cities are as hot as Austin?", RunID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 1 || res.Source != SourceLocal || len(res.Plan.Steps) != 2 || res.Errors != nil {
		t.Fatalf("result = %+v", res)
	}
	call := m.calls[0]
	if call.Model != "gemma3:12b" || call.NumPredict != 512 || call.Purpose != PurposePlan || call.RunID != "r1" {
		t.Errorf("call = %+v", call)
	}
	var schema map[string]any
	if err := json.Unmarshal(call.Format, &schema); err != nil || schema["type"] != "object" {
		t.Errorf("format is not the plan schema: %s", call.Format)
	}
	if res.PromptTokens == 0 || res.OutputTokens == 0 {
		t.Error("usage not recorded")
	}
}

func TestPlanRepairsWithErrors(t *testing.T) {
	bad := strings.Replace(goodPlan, `"depends_on":["austin_weather"]`, `"depends_on":[]`, 1)
	bad = strings.Replace(bad, "search_cities", "find_cities", 1)
	m := &scriptedModel{replies: []ChatResponse{reply(bad), reply(goodPlan)}}
	p := New(m, weatherTools(), testPlannerConfig(), testModels(), nil)
	res, err := p.Plan(context.Background(), Request{Text: "Which cities are as hot as Austin?"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 || len(res.Errors) != 2 {
		t.Fatalf("attempts %d errors %q", res.Attempts, res.Errors)
	}
	repair := m.calls[1]
	if repair.Purpose != PurposeRepair {
		t.Errorf("purpose = %s", repair.Purpose)
	}
	n := len(repair.Messages)
	if repair.Messages[n-2].Role != RoleAssistant || repair.Messages[n-2].Content != bad {
		t.Error("the failed reply must be shown back to the model")
	}
	golden(t, "repair_message.golden", repair.Messages[n-1].Content+"\n")
}

func TestPlanTruncationDoublesNumPredict(t *testing.T) {
	m := &scriptedModel{replies: []ChatResponse{
		{Content: goodPlan[:40], DoneReason: DoneLength},
		{Content: goodPlan[:80], DoneReason: DoneLength},
		reply(goodPlan),
	}}
	p := New(m, weatherTools(), testPlannerConfig(), testModels(), nil)
	res, err := p.Plan(context.Background(), Request{Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	got := []int{m.calls[0].NumPredict, m.calls[1].NumPredict, m.calls[2].NumPredict}
	if got[0] != 512 || got[1] != 1024 || got[2] != 2048 || res.Attempts != 3 {
		t.Fatalf("num_predict %v attempts %d", got, res.Attempts)
	}
	if len(m.calls[2].Messages) != len(m.calls[0].Messages) {
		t.Error("a truncated reply is asked again, not repaired")
	}
}

func TestPlanGivesUp(t *testing.T) {
	m := &scriptedModel{replies: []ChatResponse{reply("no"), reply(`{"goal":"g","steps":[],"answer":""}`), reply(`{"steps":[{"id":"a","tool":"nope","args":{}}]}`)}}
	p := New(m, weatherTools(), testPlannerConfig(), testModels(), nil)
	_, err := p.Plan(context.Background(), Request{Text: "x"})
	var pe *PlanError
	if !errors.Is(err, ErrNoValidPlan) || !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a PlanError wrapping ErrNoValidPlan", err)
	}
	if pe.Attempts != 3 || len(pe.Errors) != 3 || pe.Result == nil || pe.Result.Attempts != 3 {
		t.Fatalf("plan error = %+v", pe)
	}
	if !strings.Contains(err.Error(), `tool \"nope\" does not exist`) && !strings.Contains(err.Error(), `tool "nope" does not exist`) {
		t.Errorf("error should name the last problem: %v", err)
	}
}

func TestPlanModelError(t *testing.T) {
	boom := errors.New("ollama not reachable")
	m := &scriptedModel{errs: []error{boom}}
	p := New(m, weatherTools(), testPlannerConfig(), testModels(), nil)
	_, err := p.Plan(context.Background(), Request{Text: "x"})
	if !errors.Is(err, ErrNoValidPlan) || !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

func TestPlanCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := New(&scriptedModel{}, weatherTools(), testPlannerConfig(), testModels(), nil)
	if _, err := p.Plan(ctx, Request{Text: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestPlanDefaults(t *testing.T) {
	m := &scriptedModel{replies: []ChatResponse{reply(`{"goal":"g","steps":[{"id":"a","task":"think"}],"answer":"a"}`)}}
	cfg := testPlannerConfig()
	cfg.RepairAttempts = 0
	p := New(m, weatherTools(), cfg, config.ModelsConfig{Planner: "p"}, nil)
	res, err := p.Plan(context.Background(), Request{Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if m.calls[0].NumPredict != DefaultNumPredict || res.Plan.Steps[0].Tier != plan.TierFast {
		t.Fatalf("num_predict %d tier %q", m.calls[0].NumPredict, res.Plan.Steps[0].Tier)
	}
}

func TestReplan(t *testing.T) {
	prior := mustParse(t, goodPlan)
	completed := map[string]json.RawMessage{"austin_weather": json.RawMessage(`{"july_mean_c":29.5}`)}
	newPlan := `{"goal":"hot cities","steps":[
	 {"id":"candidates","tool":"search_cities","args":{"query":"July mean near ${austin_weather.july_mean_c} C","limit":10},"depends_on":["austin_weather"]},
	 {"id":"pick","task":"Pick the cities from ${candidates}","tools":[],"tier":"fast","depends_on":["candidates"]}],"answer":"List them."}`
	reuse := `{"goal":"g","steps":[{"id":"austin_weather","tool":"get_weather","args":{"city":"Austin"}}],"answer":"a"}`
	m := &scriptedModel{replies: []ChatResponse{reply(reuse), reply(newPlan)}}
	p := New(m, weatherTools(), testPlannerConfig(), testModels(), nil)
	failed, _ := prior.Step("hot_cities")
	res, err := p.Replan(context.Background(), Request{Text: "Which cities are as hot as Austin in July?"}, prior, completed, failed, errors.New("search_cities: no results"))
	if err != nil {
		t.Fatal(err)
	}
	if m.calls[0].Purpose != PurposeReplan || res.Attempts != 2 {
		t.Fatalf("purpose %s attempts %d errors %v", m.calls[0].Purpose, res.Attempts, res.Errors)
	}
	if deps := res.Plan.Steps[0].DependsOn; len(deps) != 0 {
		t.Errorf("dependencies on completed steps must be dropped, got %v", deps)
	}
	if !strings.Contains(res.Errors[0], "already ran") {
		t.Errorf("reusing a completed id must be rejected: %v", res.Errors)
	}
	msgs := m.calls[0].Messages
	golden(t, "replan_message.golden", msgs[len(msgs)-1].Content+"\n")
	order, err := res.Plan.TopoOrder()
	if err != nil || strings.Join(order, ",") != "candidates,pick" {
		t.Fatalf("order %v, %v", order, err)
	}
}

func mustParse(t *testing.T, s string) *plan.Plan {
	t.Helper()
	p, err := ParsePlan(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// constantModel always gives the same reply.
type constantModel struct{ content string }

func (m constantModel) Chat(context.Context, ChatRequest) (ChatResponse, error) {
	return ChatResponse{Content: m.content, DoneReason: "stop"}, nil
}

func TestPlanConcurrent(t *testing.T) {
	p := New(constantModel{goodPlan}, weatherTools(), testPlannerConfig(), testModels(), nil)
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		go func() {
			_, err := p.Plan(context.Background(), Request{Text: "Which cities are as hot as Austin?"})
			errs <- err
		}()
	}
	for i := 0; i < 16; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func validatePlan(p *plan.Plan, c Catalog) []plan.Error { return plan.Validate(p, c, 12) }

// A planner reply the server broke off is asked again with other sampling
// (a regeneration), counted as one of the planner's calls.
func TestPlannerAsksAgainAfterBrokenOffReply(t *testing.T) {
	m := &scriptedModel{replies: []ChatResponse{
		{Content: `{"goal": "x", "steps": [{"id": "a", "id": "a", "id"`, DoneReason: DoneAborted},
		reply(goodPlan)}}
	p := New(m, weatherTools(), testPlannerConfig(), testModels(), nil)
	res, err := p.Plan(context.Background(), Request{Text: "Which cities are as hot as Austin?"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.calls) != 2 || m.calls[0].Regeneration != 0 || m.calls[1].Regeneration != 1 {
		t.Fatalf("calls %+v: want a second call with other sampling", m.calls)
	}
	if res.Attempts != 2 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "broke off") {
		t.Errorf("attempts %d errors %q", res.Attempts, res.Errors)
	}
}

type blockingModel struct{}

func (blockingModel) Chat(ctx context.Context, _ ChatRequest) (ChatResponse, error) {
	<-ctx.Done()
	return ChatResponse{}, ctx.Err()
}

// Planning that runs past planner.timeout says which limit stopped it.
func TestPlanTimeoutNamesTheSetting(t *testing.T) {
	cfg := testPlannerConfig()
	cfg.Timeout = config.Duration(20 * time.Millisecond)
	p := New(blockingModel{}, weatherTools(), cfg, testModels(), nil)
	_, err := p.Plan(context.Background(), Request{Text: "x"})
	if err == nil || !strings.Contains(err.Error(), "planner.timeout (20ms)") {
		t.Fatalf("err = %v, want it to name planner.timeout", err)
	}
}
