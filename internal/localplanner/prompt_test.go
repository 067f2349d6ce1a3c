package localplanner

import (
	"fmt"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/config"
)

var testExamples = []config.PlanExample{{
	Request: "What is 15% of the July mean temperature in Austin?",
	Plan: `{"goal": "15% of Austin's July mean",
	  "steps": [{"id": "austin", "tool": "get_weather", "args": {"city": "Austin, TX"}},
	            {"id": "share", "tool": "calc", "args": {"expression": "${austin.july_mean_c} * 0.15"}, "depends_on": ["austin"]}],
	  "answer": "Give the result of share in degrees C."}`,
}}

func TestBuildPromptGolden(t *testing.T) {
	tests := []struct {
		name    string
		in      PromptInput
		shown   int
		dropped int
	}{
		{"small_catalog", PromptInput{Request: "Which cities are about as hot as Austin in July?", Tools: weatherTools().List(), MaxSteps: 12, TokenBudget: 3000}, 3, 0},
		{"with_examples", PromptInput{Request: "Is Reno warmer than Boise?", Tools: weatherTools().List(), Examples: testExamples, MaxSteps: 8, TokenBudget: 3000}, 3, 0},
		{"large_catalog_trimmed", PromptInput{Request: "Count the pump sensor tickets and archive the stale pump records", Tools: bigCatalog(60).List(), Examples: testExamples, MaxSteps: 12, TokenBudget: 900}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := BuildPrompt(tt.in)
			if tt.in.TokenBudget > 0 && p.Tokens > tt.in.TokenBudget {
				t.Errorf("prompt is %d tokens, over the budget of %d", p.Tokens, tt.in.TokenBudget)
			}
			if tt.shown > 0 && (len(p.Tools) != tt.shown || p.Dropped != tt.dropped) {
				t.Errorf("shown %d dropped %d, want %d and %d", len(p.Tools), p.Dropped, tt.shown, tt.dropped)
			}
			header := fmt.Sprintf("tools shown: %d, dropped: %d, examples: %d, estimated tokens: %d\n", len(p.Tools), p.Dropped, p.Examples, p.Tokens)
			golden(t, "prompt_"+tt.name+".golden", header+renderMessages(p.Messages))
		})
	}
}

func TestBuildPromptTrimsByRelevance(t *testing.T) {
	p := BuildPrompt(PromptInput{Request: "Count the pump sensor tickets", Tools: bigCatalog(60).List(), TokenBudget: 700})
	if p.Dropped == 0 || len(p.Tools) == 0 {
		t.Fatalf("shown %d dropped %d: the budget must trim the catalog", len(p.Tools), p.Dropped)
	}
	for _, tool := range p.Tools {
		if !strings.Contains(tool.Name, "pump") && !strings.Contains(tool.Name, "sensor") && !strings.Contains(tool.Name, "ticket") && !strings.HasPrefix(tool.Name, "count") {
			t.Errorf("tool %s shown although it shares no word with the request", tool.Name)
		}
	}
	if !strings.HasPrefix(p.Tools[0].Name, "count_") {
		t.Errorf("first tool %s, want a count_ tool (it matches most words)", p.Tools[0].Name)
	}
	// The plan schema built for this prompt only admits shown tools.
	raw, err := PlanSchema(p.Tools, 12)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "get_weather") {
		t.Error("schema admits a tool the prompt did not show")
	}
}

func TestBuildPromptStablePrefix(t *testing.T) {
	// While the catalog fits, the system prompt must not depend on the
	// request, so the model server can reuse its cached prefix.
	a := BuildPrompt(PromptInput{Request: "weather in Oslo", Tools: weatherTools().List(), TokenBudget: 3000})
	b := BuildPrompt(PromptInput{Request: "calculate 2+2", Tools: weatherTools().List(), TokenBudget: 3000})
	if a.Messages[0].Content != b.Messages[0].Content {
		t.Error("system prompt varies with the request although the catalog fits")
	}
}

func TestBuildPromptKeepsOneTool(t *testing.T) {
	p := BuildPrompt(PromptInput{Request: "weather", Tools: weatherTools().List(), Examples: testExamples, TokenBudget: 10})
	if len(p.Tools) != 1 || p.Tools[0].Name != "get_weather" || p.Examples != 0 {
		t.Fatalf("tools %v examples %d: want get_weather alone and no examples", p.Tools, p.Examples)
	}
}

func TestToolLine(t *testing.T) {
	tools := weatherTools().List()
	want := map[string]string{
		"get_weather":   `get_weather(city: string, units?: "c"|"f"): Current weather and July mean temperature for a city.`,
		"search_cities": `search_cities(query: string, limit?: integer): Find cities matching a query.`,
		"calc":          `calc(expression: string): Evaluate an arithmetic expression.`,
	}
	for _, tool := range tools {
		if got := ToolLine(tool); got != want[tool.Name] {
			t.Errorf("ToolLine(%s) = %s\nwant %s", tool.Name, got, want[tool.Name])
		}
	}
}
