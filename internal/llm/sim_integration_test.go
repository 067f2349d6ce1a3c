package llm

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/ollamasim"
)

// startSim serves the Ollama simulator on 127.0.0.1 and returns its URL.
func startSim(t *testing.T) string {
	t.Helper()
	s := ollamasim.New(ollamasim.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	u, err := s.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return u
}

// TestAgainstSimulator runs the client against the Ollama simulator: the
// same wire format and wording, from a second, independent implementation.
func TestAgainstSimulator(t *testing.T) {
	a, b := startSim(t), startSim(t)
	models := config.ModelsConfig{Options: map[string]config.ModelOptions{"qwen3:8b": {NumCtx: 8192}}}
	c := newClient(t, []endpointURL{{"a", a}, {"b", b}}, models)
	ctx := context.Background()

	// Load qwen3:8b on b only; the client must then send it to b.
	direct := newClient(t, []endpointURL{{"b", b}}, models)
	if _, err := direct.Chat(ctx, Request{Model: "qwen3:8b", Messages: userMsg("warm up")}); err != nil {
		t.Fatalf("warm-up on b: %v", err)
	}
	resp, err := c.Chat(ctx, Request{Model: "qwen3:8b", Messages: userMsg("say hi"), Format: json.RawMessage(`"json"`)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.Endpoint != "b" || resp.Usage.PromptTokens == 0 || resp.Usage.OutputTokens == 0 || resp.DoneReason == "" {
		t.Errorf("usage = %+v", resp.Usage)
	}
	if !json.Valid([]byte(resp.Message.Content)) {
		t.Errorf("format json gave %q", resp.Message.Content)
	}

	for model, want := range map[string]bool{"qwen3:8b": true, "gemma3:12b": false} {
		got, err := c.SupportsTools(ctx, model)
		if err != nil || got != want {
			t.Errorf("SupportsTools(%s) = %v, %v; want %v", model, got, err, want)
		}
	}

	tools := api.Tools{{Type: "function", Function: api.ToolFunction{Name: "read_file", Description: "read a file"}}}
	_, err = c.Chat(ctx, Request{Model: "gemma3:12b", Messages: userMsg("x"), Tools: tools})
	if !errors.Is(err, ErrNoToolSupport) {
		t.Errorf("tools to gemma3:12b: %v, want no tool support", err)
	}

	_, err = c.Chat(ctx, Request{Model: "notpulled:1b", Messages: userMsg("x")})
	if !errors.Is(err, ErrModelNotFound) {
		t.Errorf("missing model: %v, want model not found", err)
	}

	vecs, _, err := c.Embed(ctx, "nomic-embed-text", []string{"one", "two"})
	if err != nil || len(vecs) != 2 || len(vecs[0]) != 768 {
		t.Errorf("embed: %d vectors, %v", len(vecs), err)
	}
}
