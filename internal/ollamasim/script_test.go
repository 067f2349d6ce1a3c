package ollamasim

import (
	"regexp"
	"testing"

	"github.com/ollama/ollama/api"
)

func TestRulesScript(t *testing.T) {
	rules := NewRules(
		Rule{Model: "qwen3:8b", Contains: "plan", Format: Present, Replies: []Reply{{Content: `{"v":1}`}, {Content: `{"v":2}`}}},
		Rule{Match: regexp.MustCompile(`(?i)weather`), Tools: Present, ByHistory: true, Replies: []Reply{
			{ToolCalls: []ToolCallReply{{Name: "get_weather", Arguments: map[string]any{"city": "Austin, TX", "unit": "celsius"}}}},
			{Content: "It is hot in Austin."},
		}},
		Rule{Contains: "generated args", Replies: []Reply{{ToolCalls: []ToolCallReply{{Name: "get_weather"}}}}},
	)
	_, c := startSim(t, Config{Script: rules, Seed: 2})
	format := []byte(`{"type":"object"}`)

	t.Run("sequence per rule", func(t *testing.T) {
		var got []string
		for range 3 {
			r := mustChat(t, c, &api.ChatRequest{Model: "qwen3:8b", Messages: userMsg("make a plan"), Format: format})
			got = append(got, r.Message.Content)
		}
		if got[0] != `{"v":1}` || got[1] != `{"v":2}` || got[2] != `{"v":2}` {
			t.Fatalf("replies %v; the last reply should repeat", got)
		}
	})
	t.Run("model filter falls back to default", func(t *testing.T) {
		r := mustChat(t, c, &api.ChatRequest{Model: "llama3.2:3b", Messages: userMsg("make a plan"), Format: format})
		if r.Message.Content != "{}" {
			t.Fatalf("unmatched request should get the default schema instance, got %q", r.Message.Content)
		}
	})
	t.Run("by history", func(t *testing.T) {
		tools := api.Tools{weatherTool()}
		first := mustChat(t, c, &api.ChatRequest{Model: "granite4:micro", Messages: userMsg("Weather in Austin?"), Tools: tools})
		if len(first.Message.ToolCalls) != 1 {
			t.Fatalf("turn 1: %+v", first.Message)
		}
		city, _ := first.Message.ToolCalls[0].Function.Arguments.Get("city")
		if city != "Austin, TX" {
			t.Fatalf("scripted argument city=%v", city)
		}
		history := append(userMsg("Weather in Austin?"), first.Message, api.Message{Role: "tool", Content: "31C"})
		second := mustChat(t, c, &api.ChatRequest{Model: "granite4:micro", Messages: history, Tools: tools})
		if second.Message.Content != "It is hot in Austin." {
			t.Fatalf("turn 2: %+v", second.Message)
		}
	})
	t.Run("nil arguments are generated from the schema", func(t *testing.T) {
		r := mustChat(t, c, &api.ChatRequest{Model: "qwen3:8b", Messages: userMsg("generated args"), Tools: api.Tools{weatherTool()}})
		if len(r.Message.ToolCalls) != 1 {
			t.Fatalf("%+v", r.Message)
		}
		if err := validateJSON(compileSchema(t, weatherArgsSchema), r.Message.ToolCalls[0].Function.Arguments.String()); err != nil {
			t.Fatalf("generated args invalid: %v", err)
		}
	})
	t.Run("presence filter", func(t *testing.T) {
		r := mustChat(t, c, &api.ChatRequest{Model: "qwen3:8b", Messages: userMsg("weather without tools")})
		if len(r.Message.ToolCalls) != 0 || r.Message.Content == "It is hot in Austin." {
			t.Fatalf("rule requiring tools matched a request without tools: %+v", r.Message)
		}
	})
}
