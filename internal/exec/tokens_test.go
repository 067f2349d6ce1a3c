package exec

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

func TestPromptCharsFollowsTheModelsRatio(t *testing.T) {
	e := &Engine{}
	e.cfg.Executor.PromptTokenBudget = 1000
	if got := e.promptChars("m"); got != 1000*charsPerToken {
		t.Errorf("without a measured ratio: %d bytes, want %d", got, 1000*charsPerToken)
	}
	e.d.BytesPerToken = func(model string) float64 {
		return map[string]float64{"bytes": 1, "bpe": 4.6}[model]
	}
	for model, want := range map[string]int{"bytes": 1000, "bpe": 4600, "unmeasured": 1000 * charsPerToken} {
		if got := e.promptChars(model); got != want {
			t.Errorf("%s: %d bytes, want %d", model, got, want)
		}
	}
}

// With a model that counts a token a byte, the task and summarizer
// prompts hold a quarter of the text the default ratio would let in.
func TestPromptBudgetAtTheModelsRatio(t *testing.T) {
	h := newHarness(t)
	h.cfg.Executor.ToolOutputCap = 3000
	h.cfg.Executor.PromptTokenBudget = 1000
	h.tools.add(&fakeTool{name: "big", idempotent: true, fn: func(context.Context, map[string]any) (ToolResult, error) {
		return ToolResult{Output: strings.Repeat("x", 50_000)}, nil
	}})
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) { return ChatResponse{Content: "ok [a]"}, nil }
	h.planner.plan = onePlan(plan.Step{ID: "a", Tool: "big"}, plan.Step{ID: "b", Tool: "big", Args: map[string]any{"n": 2}},
		plan.Step{ID: "c", Task: "summarise", DependsOn: []string{"a", "b"}})
	var mu sync.Mutex
	asked := map[string]bool{}
	d := h.deps()
	d.BytesPerToken = func(model string) float64 {
		mu.Lock()
		defer mu.Unlock()
		asked[model] = true
		return 1
	}
	h.eng = New(h.cfg, d)
	h.start2()
	r := h.wait(h.submit("big").ID)
	if r.Status != run.Done {
		t.Fatalf("status %s (%s)", r.Status, r.Error)
	}
	for _, purpose := range []string{"execute", "synthesize"} {
		reqs := h.chat.requests(purpose)
		if len(reqs) == 0 {
			t.Fatalf("no %s call", purpose)
		}
		total := 0
		for _, m := range reqs[0].Messages {
			total += len(m.Content)
		}
		if total > 1000 || total < 500 {
			t.Errorf("%s prompt is %d bytes, want within the budget of 1000 (a token a byte) and not far below", purpose, total)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, m := range []string{fixedModels{}.Model(plan.TierFast), fixedModels{}.Model(RoleSummarizer)} {
		if !asked[m] {
			t.Errorf("the ratio of %s was not asked for (asked: %v)", m, asked)
		}
	}
}
