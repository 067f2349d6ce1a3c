package exec

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

// A task step goes to its tier's model with only its listed tools, and
// loops tool call → result → model until an answer.
func TestTaskStepNativeToolLoop(t *testing.T) {
	h := newHarness(t)
	search := h.tools.add(&fakeTool{name: "search_cities", idempotent: true,
		schema: `{"type":"object","required":["near"],"properties":{"near":{"type":"number"}}}`})
	h.tools.add(&fakeTool{name: "unlisted", idempotent: true})
	h.tools.add(&fakeTool{name: "weather", idempotent: true, fn: nil})
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
		if req.Purpose != "execute" {
			return ChatResponse{Content: "Dallas [hot_cities]"}, nil
		}
		last := req.Messages[len(req.Messages)-1]
		if last.Role == "tool" {
			return ChatResponse{Content: "Dallas, Houston", PromptTokens: 50, OutputTokens: 5, CostUSD: 0.001}, nil
		}
		return ChatResponse{ToolCalls: []ToolCall{{Name: "search_cities", Arguments: map[string]any{"near": 36.0}}},
			PromptTokens: 40, OutputTokens: 10}, nil
	}
	h.planner.plan = onePlan(
		plan.Step{ID: "austin_weather", Tool: "weather", Args: map[string]any{"city": "Austin"}},
		plan.Step{ID: "hot_cities", Task: "List cities near ${austin_weather}", Tools: []string{"search_cities"},
			Tier: plan.TierStandard, DependsOn: []string{"austin_weather"}})
	h.start()
	r := h.wait(h.submit("hot cities").ID)
	if r.Status != run.Done || h.steps(r.ID)["hot_cities"].Output != "Dallas, Houston" {
		t.Fatalf("status %s (%s) %+v", r.Status, r.Error, h.steps(r.ID)["hot_cities"])
	}
	reqs := h.chat.requests("execute")
	if len(reqs) != 2 || reqs[0].Model != "model-standard" || len(reqs[0].Tools) != 1 || reqs[0].Tools[0].Name != "search_cities" {
		t.Fatalf("requests %+v", reqs)
	}
	if !strings.Contains(reqs[0].Messages[1].Content, `weather:{"city":"Austin"}`) ||
		!strings.Contains(reqs[0].Messages[1].Content, "[austin_weather]") {
		t.Errorf("prompt lacks the bound task or the run state:\n%s", reqs[0].Messages[1].Content)
	}
	if search.calls.Load() != 1 || r.CostUSD < 0.001 {
		t.Errorf("search calls %d cost %v", search.calls.Load(), r.CostUSD)
	}
	if h.count(`SELECT count(*) FROM tool_calls WHERE run_id = ? AND step_id = 'hot_cities' AND status = 'ok'`, r.ID) != 1 {
		t.Error("tool call row missing")
	}
	if h.events.count(events.ModelCall) != 3 {
		t.Errorf("model.call events %d", h.events.count(events.ModelCall))
	}
}

// A model without tool support gets schema-constrained tool selection.
func TestTaskStepSchemaToolSelection(t *testing.T) {
	for _, how := range []string{"known", "refused"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t)
			if how == "known" {
				h.noTools["model-fast"] = true
			}
			lookup := h.tools.add(&fakeTool{name: "lookup", idempotent: true})
			h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
				if req.Purpose != "execute" {
					return ChatResponse{Content: "ok [t]"}, nil
				}
				if len(req.Tools) > 0 {
					return ChatResponse{}, errNoTools
				}
				var f map[string]any
				if err := json.Unmarshal(req.Format, &f); err != nil || f["anyOf"] == nil {
					t.Errorf("format %s", req.Format)
				}
				if req.Messages[len(req.Messages)-1].Role == "tool" {
					return ChatResponse{Content: `{"answer":"found it"}`}, nil
				}
				return ChatResponse{Content: `{"tool":"lookup","args":{"k":"v"}}`}, nil
			}
			h.planner.plan = onePlan(plan.Step{ID: "t", Task: "look it up", Tools: []string{"lookup"}})
			h.start()
			r := h.wait(h.submit("x").ID)
			if r.Status != run.Done || h.steps(r.ID)["t"].Output != "found it" || lookup.calls.Load() != 1 {
				t.Errorf("status %s (%s) output %q calls %d", r.Status, r.Error, h.steps(r.ID)["t"].Output, lookup.calls.Load())
			}
		})
	}
}

// Bad arguments from the model are regenerated with the error in context.
func TestTaskStepBadArgsRegenerate(t *testing.T) {
	h := newHarness(t)
	h.tools.add(&fakeTool{name: "lookup", idempotent: true,
		schema: `{"type":"object","required":["k"],"properties":{"k":{"type":"string"}}}`})
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
		last := req.Messages[len(req.Messages)-1]
		switch {
		case req.Purpose != "execute":
			return ChatResponse{Content: "ok [t]"}, nil
		case last.Role == "tool":
			return ChatResponse{Content: "done"}, nil
		case strings.Contains(last.Content, "rejected"):
			return ChatResponse{ToolCalls: []ToolCall{{Name: "lookup", Arguments: map[string]any{"k": "v"}}}}, nil
		}
		return ChatResponse{ToolCalls: []ToolCall{{Name: "lookup", Arguments: map[string]any{"k": 5.0}}}}, nil
	}
	h.planner.plan = onePlan(plan.Step{ID: "t", Task: "look", Tools: []string{"lookup"}})
	h.start()
	r := h.wait(h.submit("x").ID)
	if r.Status != run.Done {
		t.Fatalf("status %s (%s)", r.Status, r.Error)
	}
	if got := rungs(h.attempts(r.ID), "t"); got != "first:failed:bad_args regenerate:ok: " {
		t.Errorf("rungs %q", got)
	}
}

// Without an answer in max turns the step fails as a logic failure.
func TestTaskStepTurnLimit(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxTurns = 3
	h.cfg.Executor.MaxRepeatCalls = 100
	h.cfg.Executor.MaxReplans = 0
	h.tools.add(&fakeTool{name: "lookup", idempotent: true})
	n := 0
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
		if req.Purpose != "execute" {
			return ChatResponse{Content: "x"}, nil
		}
		n++
		return ChatResponse{ToolCalls: []ToolCall{{Name: "lookup", Arguments: map[string]any{"n": float64(n)}}}}, nil
	}
	h.planner.plan = onePlan(plan.Step{ID: "t", Task: "look", Tools: []string{"lookup"}})
	h.start()
	r := h.wait(h.submit("x").ID)
	as := h.attempts(r.ID)
	if len(as) == 0 || as[0].class != ClassTurns {
		t.Errorf("attempts %+v", as)
	}
}

// With native tools and an output schema, the schema is not forced while
// tools are offered (it would forbid tool calls); an answer that fails it is
// regenerated under the schema, without tools.
func TestTaskStepToolsWithOutputSchema(t *testing.T) {
	h := newHarness(t)
	h.tools.add(&fakeTool{name: "lookup", idempotent: true})
	schema := `{"type":"object","required":["n"],"properties":{"n":{"type":"integer"}}}`
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
		if req.Purpose != "execute" {
			return ChatResponse{Content: "ok [t]"}, nil
		}
		last := req.Messages[len(req.Messages)-1]
		switch {
		case len(req.Tools) > 0 && len(req.Format) > 0:
			t.Error("tools and format together")
		case len(req.Format) > 0:
			return ChatResponse{Content: `{"n":4}`}, nil
		case last.Role == "tool":
			return ChatResponse{Content: "four"}, nil
		}
		return ChatResponse{ToolCalls: []ToolCall{{Name: "lookup", Arguments: map[string]any{}}}}, nil
	}
	h.planner.plan = onePlan(plan.Step{ID: "t", Task: "count", Tools: []string{"lookup"}, Output: json.RawMessage(schema)})
	h.start()
	r := h.wait(h.submit("x").ID)
	if r.Status != run.Done || h.steps(r.ID)["t"].Output != `{"n":4}` {
		t.Fatalf("status %s (%s) output %q", r.Status, r.Error, h.steps(r.ID)["t"].Output)
	}
	if got := rungs(h.attempts(r.ID), "t"); got != "first:failed:bad_output regenerate:ok: " {
		t.Errorf("rungs %q", got)
	}
}
