package ollamasim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ollama/ollama/openai"
)

// postOpenAI sends body to /v1/chat/completions and returns the status,
// content type and body.
func postOpenAI(t *testing.T, s *Server, body string) (int, string, string) {
	t.Helper()
	resp, err := http.Post(s.URL()+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func TestOpenAIChatCompletion(t *testing.T) {
	s, _ := startSim(t, Config{Seed: 2})
	code, ctype, body := postOpenAI(t, s, `{"model":"llama3.2:3b","messages":[{"role":"user","content":"hi"}]}`)
	var cc openai.ChatCompletion
	if err := json.Unmarshal([]byte(body), &cc); err != nil || code != 200 || ctype != "application/json" {
		t.Fatalf("%d %s %s: %v", code, ctype, body, err)
	}
	if cc.Object != "chat.completion" || !strings.HasPrefix(cc.Id, "chatcmpl-") || len(cc.Choices) != 1 ||
		cc.Choices[0].FinishReason == nil || *cc.Choices[0].FinishReason != "stop" || cc.Usage.CompletionTokens == 0 {
		t.Fatalf("completion %s", body)
	}

	t.Run("streamed with usage", func(t *testing.T) {
		code, ctype, body := postOpenAI(t, s, `{"model":"llama3.2:3b","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`)
		if code != 200 || ctype != "text/event-stream" {
			t.Fatalf("%d %s", code, ctype)
		}
		events := strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n")
		if events[len(events)-1] != "data: [DONE]" {
			t.Fatalf("last event %q", events[len(events)-1])
		}
		var usage openai.ChatCompletionChunk
		if err := json.Unmarshal([]byte(strings.TrimPrefix(events[len(events)-2], "data: ")), &usage); err != nil || usage.Usage == nil || len(usage.Choices) != 0 {
			t.Fatalf("usage event %q: %v", events[len(events)-2], err)
		}
		var final openai.ChatCompletionChunk
		if err := json.Unmarshal([]byte(strings.TrimPrefix(events[len(events)-3], "data: ")), &final); err != nil ||
			final.Choices[0].FinishReason == nil || *final.Choices[0].FinishReason != "stop" {
			t.Fatalf("final chunk %q: %v", events[len(events)-3], err)
		}
	})

	t.Run("tool calls", func(t *testing.T) {
		_, _, body := postOpenAI(t, s, `{"model":"qwen3:8b","messages":[{"role":"user","content":"weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","required":["city"],"properties":{"city":{"type":"string"}}}}}]}`)
		var cc openai.ChatCompletion
		if err := json.Unmarshal([]byte(body), &cc); err != nil || len(cc.Choices[0].Message.ToolCalls) != 1 || *cc.Choices[0].FinishReason != "tool_calls" {
			t.Fatalf("%s: %v", body, err)
		}
		var args map[string]any
		if err := json.Unmarshal([]byte(cc.Choices[0].Message.ToolCalls[0].Function.Arguments), &args); err != nil || args["city"] == nil {
			t.Fatalf("arguments %q: %v", cc.Choices[0].Message.ToolCalls[0].Function.Arguments, err)
		}
	})

	errorsTests := []struct {
		name, body, ctype, typ, msg string
		code                        int
	}{
		{"unknown model", `{"model":"nope","messages":[{"role":"user","content":"hi"}]}`, "application/json", "api_error", "model 'nope' not found", 404},
		{"tools unsupported", `{"model":"gemma3:4b","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}`,
			"application/json", "api_error", "registry.ollama.ai/library/gemma3:4b does not support tools", 400},
		{"empty messages", `{"model":"llama3.2:3b","messages":[]}`, "application/json; charset=utf-8", "invalid_request_error", "[] is too short - 'messages'", 400},
		{"empty body", ``, "application/json; charset=utf-8", "invalid_request_error", "EOF", 400},
		{"invalid schema", `{"model":"llama3.2:3b","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"schema":{"not":{}}}}}`,
			"application/json", "api_error", "invalid JSON schema in format", 500},
	}
	for _, tt := range errorsTests {
		t.Run(tt.name, func(t *testing.T) {
			code, ctype, body := postOpenAI(t, s, tt.body)
			var e openai.ErrorResponse
			if err := json.Unmarshal([]byte(body), &e); err != nil || code != tt.code || ctype != tt.ctype || e.Error.Type != tt.typ || e.Error.Message != tt.msg {
				t.Fatalf("got %d %s %s (%v)", code, ctype, body, err)
			}
		})
	}
}

func TestOpenAIRepeatAbort(t *testing.T) {
	script := NewRules(Rule{Contains: "loop", Replies: []Reply{{Content: "[", RepeatAbort: true}}})
	s, _ := startSim(t, Config{Script: script})
	_, _, body := postOpenAI(t, s, `{"model":"llama3.2:3b","messages":[{"role":"user","content":"loop"}],"stream":true}`)
	if strings.Contains(body, "[DONE]") || strings.Contains(body, `"finish_reason":"`) || strings.Count(body, "data: ") != repeatLimit {
		t.Fatalf("an aborted stream has %d events, no finish_reason and no [DONE]:\n%s", repeatLimit, body)
	}
	_, _, body = postOpenAI(t, s, `{"model":"llama3.2:3b","messages":[{"role":"user","content":"loop"}]}`)
	var cc openai.ChatCompletion
	if err := json.Unmarshal([]byte(body), &cc); err != nil || cc.Choices[0].FinishReason != nil || cc.Usage.TotalTokens != 0 ||
		cc.Choices[0].Message.Content != strings.Repeat("[", repeatLimit) {
		t.Fatalf("aborted completion %s: %v", body, err)
	}
}
