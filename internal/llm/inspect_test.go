package llm

import (
	"context"
	"errors"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/config"
)

func TestPerEndpointCalls(t *testing.T) {
	a, b := newFake(t), newFake(t)
	a.tags = pulledModels("qwen3:8b", "gemma3:12b")
	b.ps = []api.ProcessModelResponse{loaded("granite4:tiny-h", 2<<30)}
	c := newClient(t, []endpointURL{{"a", a.URL()}, {"b", b.URL()}}, config.ModelsConfig{})
	ctx := context.Background()

	list, err := c.List(ctx, "a")
	if err != nil || len(list.Models) != 2 || list.Models[1].Name != "gemma3:12b" {
		t.Errorf("List(a) = %+v, %v", list, err)
	}
	ps, err := c.PS(ctx, "b")
	if err != nil || len(ps.Models) != 1 || ps.Models[0].SizeVRAM != 2<<30 {
		t.Errorf("PS(b) = %+v, %v", ps, err)
	}
	// PS always asks: residency policy needs the present state.
	if _, err := c.PS(ctx, "b"); err != nil || b.count("/api/ps") != 2 {
		t.Errorf("second PS: %v, %d requests", err, b.count("/api/ps"))
	}
	v, err := c.Version(ctx, "a")
	if err != nil || v != "0.17.4" {
		t.Errorf("Version(a) = %q, %v", v, err)
	}
	if _, err := c.Version(ctx, "nope"); err == nil || err.Error() != `no ollama endpoint named "nope" — configured: a, b` {
		t.Errorf("unknown endpoint: %v", err)
	}
}

func TestPerEndpointUnreachable(t *testing.T) {
	url := deadURL(t)
	c := newClient(t, []endpointURL{{"gpu2", url}}, config.ModelsConfig{})
	_, err := c.PS(context.Background(), "gpu2")
	var e *Error
	if !errors.As(err, &e) || e.Class != ClassUnreachable || e.Op != "ps" {
		t.Fatalf("err = %v", err)
	}
	if want := "ollama not reachable at " + url + " — is `ollama serve` running?"; e.Message != want {
		t.Errorf("message = %q, want %q", e.Message, want)
	}
	if c.Endpoints()[0].Healthy {
		t.Error("endpoint still healthy after an unreachable PS")
	}
}
