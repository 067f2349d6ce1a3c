package llm

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/ollama/ollama/types/model"

	"github.com/agentd/agentd/internal/config"
)

func TestSupportsTools(t *testing.T) {
	tests := []struct {
		name string
		caps []model.Capability
		want bool
	}{
		{"tools", []model.Capability{model.CapabilityCompletion, model.CapabilityTools}, true},
		{"no tools", []model.Capability{model.CapabilityCompletion}, false},
		{"embedding only", []model.Capability{model.CapabilityEmbedding}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.caps["m"] = tt.caps
			c := newClient(t, single(f), config.ModelsConfig{})
			for i := range 2 {
				got, err := c.SupportsTools(context.Background(), "m")
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Errorf("call %d: SupportsTools = %v, want %v", i+1, got, tt.want)
				}
			}
			if n := f.count("/api/show"); n != 1 {
				t.Errorf("/api/show called %d times, want 1 (cached)", n)
			}
		})
	}
}

func TestSupportsToolsErrors(t *testing.T) {
	f := newFake(t)
	c := newClient(t, single(f), config.ModelsConfig{})
	_, err := c.SupportsTools(context.Background(), "missing:1b")
	if !errors.Is(err, ErrModelNotFound) {
		t.Fatalf("err = %v, want model not found", err)
	}
	var e *Error
	errors.As(err, &e)
	if want := "model missing:1b is not pulled on endpoint local — run `ollama pull missing:1b`"; e.Message != want {
		t.Errorf("message = %q, want %q", e.Message, want)
	}
	// Failures are not cached: once pulled, the model is found.
	f.mu.Lock()
	f.caps["missing:1b"] = []model.Capability{model.CapabilityTools}
	f.mu.Unlock()
	if ok, err := c.SupportsTools(context.Background(), "missing:1b"); err != nil || !ok {
		t.Errorf("after pulling: %v, %v", ok, err)
	}
}

func TestNoToolSupportFromChatUpdatesTheCache(t *testing.T) {
	tests := []struct {
		name     string
		askFirst bool // SupportsTools before the chat fills the cache from /api/show
		shows    int
	}{
		{"cache empty", false, 0},
		{"cache said tools", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.caps["m"] = []model.Capability{model.CapabilityCompletion, model.CapabilityTools}
			f.chat = func(w http.ResponseWriter, r *http.Request, n int) {
				writeError(w, http.StatusBadRequest, "registry.ollama.ai/library/m:latest does not support tools")
			}
			c := newClient(t, single(f), config.ModelsConfig{})
			if tt.askFirst {
				if ok, _ := c.SupportsTools(context.Background(), "m"); !ok {
					t.Fatal("show said tools")
				}
			}
			_, err := c.Chat(context.Background(), Request{Model: "m", Messages: userMsg("x")})
			if !errors.Is(err, ErrNoToolSupport) {
				t.Fatalf("err = %v", err)
			}
			ok, err := c.SupportsTools(context.Background(), "m")
			if err != nil || ok {
				t.Errorf("SupportsTools after refusal = %v, %v; want false", ok, err)
			}
			if f.count("/api/show") != tt.shows {
				t.Errorf("/api/show called %d times, want %d", f.count("/api/show"), tt.shows)
			}
		})
	}
}
