package exec

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

// Independent steps run at the same time, up to max_concurrent_steps and no
// more: the fake tool holds every call until the limit is reached.
func TestIndependentStepsRunInParallel(t *testing.T) {
	h := newHarness(t)
	h.cfg.Executor.MaxConcurrentSteps = 3
	reached := make(chan struct{})
	var tool *fakeTool
	tool = h.tools.add(&fakeTool{name: "slow", idempotent: true, fn: func(ctx context.Context, args map[string]any) (ToolResult, error) {
		tool.mu.Lock()
		if tool.inflight == 3 {
			select {
			case <-reached:
			default:
				close(reached)
			}
		}
		tool.mu.Unlock()
		select {
		case <-reached:
		case <-time.After(5 * time.Second):
			t.Error("steps did not overlap: the third concurrent call never came")
		}
		return ToolResult{Output: "ok"}, nil
	}})
	_ = tool
	var steps []plan.Step
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		steps = append(steps, plan.Step{ID: id, Tool: "slow", Args: map[string]any{"id": id}})
	}
	steps = append(steps, plan.Step{ID: "z", Tool: "slow", Args: map[string]any{"after": "${a}"}, DependsOn: []string{"a", "e"}})
	h.planner.plan = staticPlan(&plan.Plan{Goal: "g", Steps: steps, Answer: "list"})
	h.start()
	r := h.wait(h.submit("fan out").ID)
	if r.Status != run.Done {
		t.Fatalf("status %s (%s)", r.Status, r.Error)
	}
	if got := tool.maxInflight(); got != 3 {
		t.Errorf("max concurrent steps = %d, want 3", got)
	}
	if tool.calls.Load() != 6 {
		t.Errorf("calls = %d, want 6", tool.calls.Load())
	}
	if h.events.count(events.PlanCreated) != 1 || h.events.count(events.StepStatus) < 12 {
		t.Errorf("events: plan.created %d, step.status %d", h.events.count(events.PlanCreated), h.events.count(events.StepStatus))
	}
}

// Tool step arguments are bound from earlier results, with types kept
// for whole references, and the tool step makes no model call.
func TestReferenceBindingEndToEnd(t *testing.T) {
	h := newHarness(t)
	h.tools.add(&fakeTool{name: "weather", idempotent: true, fn: func(context.Context, map[string]any) (ToolResult, error) {
		return ToolResult{Output: `{"city":{"name":"Austin"},"july":[35.1,36.4]}`}, nil
	}})
	sink := h.tools.add(&fakeTool{name: "sink", idempotent: true,
		schema: `{"type":"object","required":["city","t"],"properties":{"city":{"type":"string"},"t":{"type":"number"}}}`})
	h.planner.plan = staticPlan(&plan.Plan{Goal: "g", Steps: []plan.Step{
		{ID: "austin_weather", Tool: "weather", Args: map[string]any{"city": "Austin, TX"}},
		{ID: "use", Tool: "sink", DependsOn: []string{"austin_weather"}, Args: map[string]any{
			"city": "${austin_weather.city.name}", "t": "${austin_weather.july.1}", "note": "mean ${austin_weather.july.0} C"}},
	}, Answer: "say it"})
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
		return ChatResponse{Content: "It is hot [austin_weather]."}, nil
	}
	h.start()
	r := h.wait(h.submit("weather").ID)
	if r.Status != run.Done {
		t.Fatalf("status %s (%s)", r.Status, r.Error)
	}
	got := sink.args[0]
	if got["city"] != "Austin" || got["t"] != 36.4 || got["note"] != "mean 35.1 C" {
		t.Errorf("bound args = %#v", got)
	}
	if n := len(h.chat.requests("execute")); n != 0 {
		t.Errorf("tool steps made %d model calls", n)
	}
	if r.Answer != "It is hot [austin_weather]." {
		t.Errorf("answer %q", r.Answer)
	}
	st := h.steps(r.ID)["use"]
	var args map[string]any
	_ = json.Unmarshal(st.Args, &args)
	if args["city"] != "Austin" {
		t.Errorf("stored args %s", st.Args)
	}
}

// A plan the executor cannot run (unknown tool, cycle) fails the run with
// the reason, before any step runs.
func TestInvalidPlanFailsRun(t *testing.T) {
	for name, p := range map[string]*plan.Plan{
		"unknown tool": {Steps: []plan.Step{{ID: "a", Tool: "nope"}}},
		"cycle": {Steps: []plan.Step{{ID: "a", Tool: "t", DependsOn: []string{"b"}},
			{ID: "b", Tool: "t", DependsOn: []string{"a"}}}},
		"duplicate": {Steps: []plan.Step{{ID: "a", Tool: "t"}, {ID: "a", Tool: "t"}}},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			tool := h.tools.add(&fakeTool{name: "t", idempotent: true})
			h.planner.plan = staticPlan(p)
			h.start()
			r := h.wait(h.submit("x").ID)
			if r.Status != run.Failed || r.Error == "" || tool.calls.Load() != 0 {
				t.Errorf("status %s error %q calls %d", r.Status, r.Error, tool.calls.Load())
			}
		})
	}
}
