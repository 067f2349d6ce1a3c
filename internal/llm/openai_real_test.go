package llm

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/ollamatest"
)

// Conformance of the OpenAI-compatible backend against a real server:
// Ollama serves /v1/chat/completions beside its own API.

func realOpenAIClient(t *testing.T, url string) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg := config.OllamaConfig{
		Endpoints: []config.EndpointConfig{{Name: "real-v1", URL: url + "/v1", Kind: config.KindOpenAI,
			Models: []string{ollamatest.Plain}}},
		RequestTimeout: config.Duration(5 * time.Minute),
		ConnectTimeout: config.Duration(2 * time.Second),
		MaxRetries:     3,
		RetryBackoff:   config.Duration(10 * time.Millisecond),
	}
	c, err := New(cfg, config.ModelsConfig{}, nil, WithRecorder(rec))
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

func TestRealOpenAIChat(t *testing.T) {
	srv := ollamatest.Shared(t)
	c, rec := realOpenAIClient(t, srv.URL)

	// A plain reply, with its usage. The tiny model's noise may run to the
	// limit; either way the counts are the server's.
	resp, err := c.Chat(t.Context(), Request{Model: ollamatest.Plain, Messages: userMsg("hello"), NumPredict: 16})
	if err != nil && !badOutput(err) {
		t.Fatalf("chat: %v", err)
	}
	if err == nil && resp.DoneReason != "stop" {
		t.Errorf("done reason = %q", resp.DoneReason)
	}
	us := rec.all()
	if len(us) != 1 || us[0].PromptTokens == 0 || us[0].OutputTokens == 0 || us[0].OutputTokens > 16 || us[0].Endpoint != "real-v1" {
		t.Errorf("usage = %+v, want the server's prompt and output counts", us)
	}

	// max_tokens cuts the reply: finish_reason "length" is truncated.
	_, err = c.Chat(t.Context(), Request{Model: ollamatest.Plain, Messages: userMsg("x"), NumPredict: 8,
		Options: map[string]any{"temperature": 0.8, "seed": 3}})
	var e *Error
	if !errors.As(err, &e) || e.Class != ClassTruncated {
		t.Fatalf("err = %v, want truncated", err)
	}
	if e.Partial == nil || e.Partial.Usage.OutputTokens != 8 || e.Partial.DoneReason != "length" {
		t.Errorf("partial = %+v, want 8 output tokens cut at length", e.Partial)
	}

	// response_format json_schema is accepted and constrains the reply.
	schema := json.RawMessage(`{"type":"object","properties":{"answer":{"type":"string","maxLength":20}},"required":["answer"]}`)
	resp, err = c.Chat(t.Context(), Request{Model: ollamatest.Plain, Messages: userMsg("answer in JSON"), Format: schema, NumPredict: 64})
	switch {
	case badOutput(err):
	case err != nil:
		t.Fatalf("schema request: %v", err)
	default:
		var v struct {
			Answer *string `json:"answer"`
		}
		if jerr := json.Unmarshal([]byte(resp.Message.Content), &v); jerr != nil || v.Answer == nil {
			t.Errorf("reply %q does not follow the schema: %v", resp.Message.Content, jerr)
		}
	}

	// A model the server lacks is model_not_found, not retried.
	_, err = c.Chat(t.Context(), Request{Model: "no-such-model:1b", Messages: userMsg("x")})
	if !errors.As(err, &e) || e.Class != ClassModelNotFound || e.Attempts != 1 {
		t.Errorf("unknown model: %v, want model_not_found after one attempt", err)
	}

	if p := c.CheckServedModels(t.Context()); len(p) != 0 {
		t.Errorf("served models: %q", p)
	}
}
