package ollamasim

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
)

func TestChatStreamingAndNonStreaming(t *testing.T) {
	_, c := startSim(t, Config{Seed: 1})
	tests := []struct {
		name   string
		stream *bool
		chunks func(n int) bool
	}{
		{"stream omitted defaults to streaming", nil, func(n int) bool { return n > 2 }},
		{"stream true", boolPtr(true), func(n int) bool { return n > 2 }},
		{"stream false", boolPtr(false), func(n int) bool { return n == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &api.ChatRequest{Model: "llama3.2:3b", Messages: userMsg("Summarise the weather report"), Stream: tt.stream}
			var chunks []api.ChatResponse
			if err := c.Chat(t.Context(), req, func(r api.ChatResponse) error {
				chunks = append(chunks, r)
				return nil
			}); err != nil {
				t.Fatalf("chat: %v", err)
			}
			if !tt.chunks(len(chunks)) {
				t.Fatalf("got %d chunks", len(chunks))
			}
			var content strings.Builder
			for i, ch := range chunks {
				content.WriteString(ch.Message.Content)
				if ch.Done != (i == len(chunks)-1) {
					t.Errorf("chunk %d done=%v", i, ch.Done)
				}
				if ch.Message.Role != "assistant" || ch.Model != "llama3.2:3b" {
					t.Errorf("chunk %d role=%q model=%q", i, ch.Message.Role, ch.Model)
				}
			}
			final := chunks[len(chunks)-1]
			if final.DoneReason != "stop" {
				t.Errorf("done_reason = %q, want stop", final.DoneReason)
			}
			if !strings.Contains(content.String(), "Summarise the weather report") {
				t.Errorf("content %q does not echo the prompt", content.String())
			}
			m := final.Metrics
			if m.PromptEvalCount == 0 || m.EvalCount == 0 || m.EvalDuration == 0 || m.PromptEvalDuration == 0 || m.TotalDuration < m.EvalDuration+m.PromptEvalDuration {
				t.Errorf("metrics incomplete: %+v", m)
			}
			if got := countTokens(content.String()); got != m.EvalCount {
				t.Errorf("eval_count %d, content has %d tokens", m.EvalCount, got)
			}
		})
	}
}

func TestChatFormat(t *testing.T) {
	_, c := startSim(t, Config{Seed: 7})
	schemas := []struct {
		name   string
		schema string
	}{
		{"object with enum and array", `{"type":"object","required":["goal","steps","priority"],
			"properties":{"goal":{"type":"string","minLength":3},"priority":{"enum":["high","low"]},
			"steps":{"type":"array","minItems":2,"items":{"type":"object","required":["id","tool"],
			"properties":{"id":{"type":"string"},"tool":{"type":"string","enum":["get_weather","search"]},"n":{"type":"integer"}}}}}}`},
		{"defs and ref", `{"$defs":{"step":{"type":"object","required":["id","depends_on"],"properties":{"id":{"type":"string"},
			"depends_on":{"type":"array","items":{"type":"string"}}}}},"type":"object","required":["steps"],
			"properties":{"steps":{"type":"array","minItems":1,"items":{"$ref":"#/$defs/step"}}}}`},
		{"anyOf oneOf const", `{"type":"object","required":["a","b","c"],"properties":{"a":{"anyOf":[{"type":"integer","minimum":5},{"type":"string"}]},
			"b":{"oneOf":[{"const":"fixed"},{"type":"number"}]},"c":{"type":["null","boolean"]}}}`},
	}
	for _, tt := range schemas {
		t.Run(tt.name, func(t *testing.T) {
			r := mustChat(t, c, &api.ChatRequest{Model: "qwen3:8b", Messages: userMsg("plan it"), Format: json.RawMessage(tt.schema)})
			if err := validateJSON(compileSchema(t, tt.schema), r.Message.Content); err != nil {
				t.Fatalf("content %s does not validate: %v", r.Message.Content, err)
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		r := mustChat(t, c, &api.ChatRequest{Model: "qwen3:8b", Messages: userMsg("hi"), Format: json.RawMessage(`"json"`)})
		var v map[string]any
		if err := json.Unmarshal([]byte(r.Message.Content), &v); err != nil {
			t.Fatalf("content %q is not JSON: %v", r.Message.Content, err)
		}
	})
}

func TestChatToolCalls(t *testing.T) {
	_, c := startSim(t, Config{Seed: 3})
	tools := api.Tools{weatherTool()}
	first := mustChat(t, c, &api.ChatRequest{Model: "qwen3:8b", Messages: userMsg("weather in Austin?"), Tools: tools})
	if len(first.Message.ToolCalls) != 1 {
		t.Fatalf("first turn: want 1 tool call, got %+v", first.Message)
	}
	tc := first.Message.ToolCalls[0]
	if tc.Function.Name != "get_weather" || !strings.HasPrefix(tc.ID, "call_") || len(tc.ID) != 13 {
		t.Fatalf("tool call = %+v", tc)
	}
	if err := validateJSON(compileSchema(t, weatherArgsSchema), tc.Function.Arguments.String()); err != nil {
		t.Fatalf("arguments %s invalid: %v", tc.Function.Arguments.String(), err)
	}

	history := append(userMsg("weather in Austin?"),
		api.Message{Role: "assistant", ToolCalls: first.Message.ToolCalls},
		api.Message{Role: "tool", ToolName: "get_weather", Content: `{"temp_c": 31}`})
	second := mustChat(t, c, &api.ChatRequest{Model: "qwen3:8b", Messages: history, Tools: tools})
	if len(second.Message.ToolCalls) != 0 || !strings.Contains(second.Message.Content, "temp_c") {
		t.Fatalf("second turn should answer in text citing the tool result, got %+v", second.Message)
	}

	t.Run("streamed tool call", func(t *testing.T) {
		var calls []api.ToolCall
		err := c.Chat(t.Context(), &api.ChatRequest{Model: "llama3.1:8b", Messages: userMsg("x"), Tools: tools}, func(r api.ChatResponse) error {
			calls = append(calls, r.Message.ToolCalls...)
			return nil
		})
		if err != nil || len(calls) != 1 || calls[0].Function.Name != "get_weather" {
			t.Fatalf("err=%v calls=%+v", err, calls)
		}
	})
}

func TestChatThinking(t *testing.T) {
	_, c := startSim(t, Config{Seed: 3})
	r := mustChat(t, c, &api.ChatRequest{Model: "qwen3:1.7b", Messages: userMsg("why?")})
	if r.Message.Thinking == "" {
		t.Error("thinking-capable model should think by default, as Ollama enables it")
	}
	r = mustChat(t, c, &api.ChatRequest{Model: "qwen3:1.7b", Messages: userMsg("why?"), Think: &api.ThinkValue{Value: false}})
	if r.Message.Thinking != "" {
		t.Errorf("think=false still produced thinking %q", r.Message.Thinking)
	}
}

func TestErrorWording(t *testing.T) {
	_, c := startSim(t, Config{})
	tests := []struct {
		name string
		call func() error
		code int
		msg  string
	}{
		{"chat missing model", func() error {
			_, err := chatOnce(t, t.Context(), c, &api.ChatRequest{Model: "nope:1b", Messages: userMsg("x")})
			return err
		}, 404, "model 'nope:1b' not found"},
		{"generate missing model", func() error {
			return c.Generate(t.Context(), &api.GenerateRequest{Model: "nope", Prompt: "x"}, func(api.GenerateResponse) error { return nil })
		}, 404, "model 'nope' not found"},
		{"embed missing model", func() error {
			_, err := c.Embed(t.Context(), &api.EmbedRequest{Model: "nope", Input: "x"})
			return err
		}, 404, `model "nope" not found, try pulling it first`},
		{"show missing model", func() error {
			_, err := c.Show(t.Context(), &api.ShowRequest{Model: "nope"})
			return err
		}, 404, "model 'nope' not found"},
		{"tools on a model without tools", func() error {
			_, err := chatOnce(t, t.Context(), c, &api.ChatRequest{Model: "gemma3:4b", Messages: userMsg("x"), Tools: api.Tools{weatherTool()}})
			return err
		}, 400, "registry.ollama.ai/library/gemma3:4b does not support tools"},
		{"chat with an embedding model", func() error {
			_, err := chatOnce(t, t.Context(), c, &api.ChatRequest{Model: "nomic-embed-text", Messages: userMsg("x")})
			return err
		}, 400, `"nomic-embed-text" does not support chat`},
		{"generate with an embedding model", func() error {
			return c.Generate(t.Context(), &api.GenerateRequest{Model: "nomic-embed-text", Prompt: "x"}, func(api.GenerateResponse) error { return nil })
		}, 400, `"nomic-embed-text" does not support generate`},
		{"think on a model without thinking", func() error {
			_, err := chatOnce(t, t.Context(), c, &api.ChatRequest{Model: "llama3.2:3b", Messages: userMsg("x"), Think: &api.ThinkValue{Value: true}})
			return err
		}, 400, `"llama3.2:3b" does not support thinking`},
		{"empty model", func() error {
			_, err := chatOnce(t, t.Context(), c, &api.ChatRequest{Messages: userMsg("x")})
			return err
		}, 400, "model is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			se := statusError(t, tt.call())
			if se.StatusCode != tt.code || se.ErrorMessage != tt.msg {
				t.Fatalf("got %d %q, want %d %q", se.StatusCode, se.ErrorMessage, tt.code, tt.msg)
			}
		})
	}
}

func TestNumPredictTruncates(t *testing.T) {
	_, c := startSim(t, Config{})
	r := mustChat(t, c, &api.ChatRequest{Model: "llama3.2:3b", Messages: userMsg("write a lot"), Options: map[string]any{"num_predict": 5}})
	if r.DoneReason != "length" || r.EvalCount > 5 || len([]rune(r.Message.Content)) > 20 {
		t.Fatalf("done_reason=%q eval_count=%d content=%q", r.DoneReason, r.EvalCount, r.Message.Content)
	}
}

func TestReportedLatencyFollowsModel(t *testing.T) {
	models := []Model{{Name: "slow:1b", Size: 2 * gb, Family: "llama", ContextLength: 8192, Capabilities: []string{CapCompletion}, PrefillTPS: 100, DecodeTPS: 10}}
	_, c := startSim(t, Config{Models: models, LoadBytesPerSecond: 1 * gb})
	start := time.Now()
	r1 := mustChat(t, c, &api.ChatRequest{Model: "slow:1b", Messages: userMsg("hello there")})
	r2 := mustChat(t, c, &api.ChatRequest{Model: "slow:1b", Messages: userMsg("hello there")})
	if wall := time.Since(start); wall > 2*time.Second {
		t.Fatalf("TimeScale 0 should not sleep, took %v", wall)
	}
	near := func(got, want time.Duration) bool {
		d := got - want
		return d > -time.Millisecond && d < time.Millisecond
	}
	// A loaded model's load_duration is the wait for the scheduler: small,
	// but never 0 (Ollama always reports it).
	if !near(r1.LoadDuration, 2*time.Second) || r2.LoadDuration <= 0 || r2.LoadDuration > 100*time.Millisecond {
		t.Errorf("load durations %v, %v; want 2s (2 GB at 1 GB/s) then about 0 (already loaded)", r1.LoadDuration, r2.LoadDuration)
	}
	if want := time.Duration(float64(r1.EvalCount) / 10 * float64(time.Second)); !near(r1.EvalDuration, want) {
		t.Errorf("eval_duration %v, want %v for %d tokens at 10 tok/s", r1.EvalDuration, want, r1.EvalCount)
	}
	if want := time.Duration(float64(r1.PromptEvalCount) / 100 * float64(time.Second)); !near(r1.PromptEvalDuration, want) {
		t.Errorf("prompt_eval_duration %v, want %v", r1.PromptEvalDuration, want)
	}
	if r1.TotalDuration != r1.LoadDuration+r1.PromptEvalDuration+r1.EvalDuration {
		t.Errorf("total %v is not load+prefill+decode", r1.TotalDuration)
	}
}

func TestDeterminism(t *testing.T) {
	run := func(seed uint64) (string, string) {
		_, c := startSim(t, Config{Seed: seed})
		a := mustChat(t, c, &api.ChatRequest{Model: "llama3.2:3b", Messages: userMsg("tell me something")})
		b := mustChat(t, c, &api.ChatRequest{Model: "qwen3:8b", Messages: userMsg("x"), Tools: api.Tools{weatherTool()}})
		return a.Message.Content, b.Message.ToolCalls[0].ID
	}
	c1, id1 := run(42)
	c2, id2 := run(42)
	c3, id3 := run(43)
	if c1 != c2 || id1 != id2 {
		t.Fatalf("same seed differs:\n%q %s\n%q %s", c1, id1, c2, id2)
	}
	if c1 == c3 && id1 == id3 {
		t.Fatalf("different seeds gave identical output %q", c1)
	}
}
