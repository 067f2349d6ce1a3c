package exec

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

func TestCapTextAndStateBudget(t *testing.T) {
	s := strings.Repeat("é", 100) // 200 bytes
	got := capText(s, 51)
	if !strings.HasSuffix(got, "…[cut 168 bytes]") || len(got) > 51 || !utf8.ValidString(got) {
		t.Errorf("capText = %q", got)
	}
	v := runStateView{goal: "g", completed: []stateEntry{
		{id: "old", order: 0, text: strings.Repeat("o", 5000)},
		{id: "new", order: 1, text: strings.Repeat("n", 300)},
	}, pending: []string{"p"}, errors: 1}
	out := v.render(1200)
	if len(out) > 1200 {
		t.Errorf("render %d chars over budget 1200", len(out))
	}
	if !strings.Contains(out, strings.Repeat("n", 300)) || !strings.Contains(out, "[cut") {
		t.Errorf("the newest result should survive whole and the oldest be cut:\n%s", out)
	}
	if !strings.Contains(out, "Pending steps: p") || !strings.Contains(out, "Errors so far: 1") {
		t.Errorf("state lacks pending/errors:\n%s", out)
	}
}

// Tool output is capped at tool_output_cap, and the executor prompt stays
// within prompt_token_budget however large the earlier results are.
func TestOutputCapAndPromptBudget(t *testing.T) {
	h := newHarness(t)
	h.cfg.Executor.ToolOutputCap = 1000
	h.cfg.Executor.PromptTokenBudget = 500 // 2000 characters
	h.tools.add(&fakeTool{name: "big", idempotent: true, fn: func(context.Context, map[string]any) (ToolResult, error) {
		return ToolResult{Output: strings.Repeat("x", 50_000)}, nil
	}})
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) { return ChatResponse{Content: "ok [a]"}, nil }
	h.planner.plan = onePlan(plan.Step{ID: "a", Tool: "big"}, plan.Step{ID: "b", Tool: "big", Args: map[string]any{"n": 2}},
		plan.Step{ID: "c", Task: "summarise", DependsOn: []string{"a", "b"}})
	h.start()
	r := h.wait(h.submit("big").ID)
	if r.Status != run.Done {
		t.Fatalf("status %s (%s)", r.Status, r.Error)
	}
	out := h.steps(r.ID)["a"].Output
	if len(out) > 1000 || !strings.Contains(out, "[cut 490") {
		t.Errorf("output %d bytes, tail %q", len(out), out[len(out)-30:])
	}
	req := h.chat.requests("execute")[0]
	total := 0
	for _, m := range req.Messages {
		total += len(m.Content)
	}
	if total > 2000 {
		t.Errorf("prompt is %d characters, budget 2000", total)
	}
}
