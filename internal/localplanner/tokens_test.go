package localplanner

import (
	"context"
	"strings"
	"sync"
	"testing"
)

// byteTokens counts a token a byte, as a byte-level vocabulary does, and
// records the models it was asked about.
type byteTokens struct {
	mu     sync.Mutex
	models map[string]bool
}

func (b *byteTokens) Estimate(model, text string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.models == nil {
		b.models = map[string]bool{}
	}
	b.models[model] = true
	return len(text)
}

// TestBuildPromptUsesTheModelsEstimate: under a tokenizer that counts four
// times the default estimate, the same budget shows fewer tools, and the
// prompt fits the budget as that tokenizer counts it.
func TestBuildPromptUsesTheModelsEstimate(t *testing.T) {
	in := PromptInput{Request: "Count the pump sensor tickets", Tools: bigCatalog(60).List(), TokenBudget: 3000}
	def := BuildPrompt(in)
	in.Tokens = func(s string) int { return len(s) }
	bytes := BuildPrompt(in)
	if len(bytes.Tools) >= len(def.Tools) || bytes.Dropped <= def.Dropped {
		t.Fatalf("a token a byte shows %d tools (dropped %d), the default %d (dropped %d): the estimate was not used",
			len(bytes.Tools), bytes.Dropped, len(def.Tools), def.Dropped)
	}
	n := 0
	for _, m := range bytes.Messages {
		n += len(m.Content) + 4
	}
	if bytes.Tokens != n || n > in.TokenBudget {
		t.Errorf("prompt is %d tokens (reported %d) against a budget of %d", n, bytes.Tokens, in.TokenBudget)
	}
}

func TestPlannerSizesPromptsWithTokens(t *testing.T) {
	est := &byteTokens{}
	cfg := testPlannerConfig()
	cfg.PromptTokenBudget = 2000
	m := &scriptedModel{replies: []ChatResponse{reply(goodPlan)}}
	catalog := bigCatalog(40) // with the weather tools
	p := New(m, catalog, cfg, testModels(), nil, WithTokens(est))
	res, err := p.Plan(context.Background(), Request{Text: "Which cities are as hot as Austin? Use get_weather and search_cities.", RunID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if !est.models["gemma3:12b"] || len(est.models) != 1 {
		t.Errorf("estimates asked for %v, want the planner model gemma3:12b only", est.models)
	}
	n := 0
	for _, msg := range m.calls[0].Messages {
		n += len(msg.Content)
	}
	if n > cfg.PromptTokenBudget || res.ToolsDropped == 0 {
		t.Errorf("prompt of %d bytes (a token each) against a budget of %d, %d tools dropped", n, cfg.PromptTokenBudget, res.ToolsDropped)
	}
	if !strings.Contains(m.calls[0].Messages[0].Content, "get_weather") {
		t.Error("the tool the request names was dropped")
	}
}
