package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/daemon"

	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/ollama/ollama/api"
)

func TestDoctorAgainstSimulatedOllama(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A GPU too small for the planner: once loaded it spills to CPU.
	sim := ollamasim.New(ollamasim.Config{Seed: 1, VRAM: 6_000_000_000, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	url, err := sim.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client, _ := daemon.NewOllamaClient(url, 5*time.Second)
	if err := client.Generate(ctx, &api.GenerateRequest{Model: "gemma3:12b"}, func(api.GenerateResponse) error { return nil }); err != nil {
		t.Fatalf("load planner in sim: %v", err)
	}
	cfg := writeConfig(t, fmt.Sprintf(`
[storage]
state_dir = %q
[vram]
probe = "none"
[server]
listen = %q
[models]
standard = "mistral-nemo:12b"
[[ollama.endpoints]]
name = "gpu1"
url = %q
parallel_slots = 1
max_queue = 4
`, t.TempDir(), freePort(t), url))
	out, code := run(t, nil, "doctor", "--config", cfg)
	if code != 1 {
		t.Errorf("doctor exit = %d, want 1 (a model is missing)\n%s", code, out)
	}
	for _, want := range []string{
		"ok    ollama     gpu1: " + url,
		"FAIL  models     gpu1: missing mistral-nemo:12b — run: ollama pull mistral-nemo:12b",
		"warn  loaded     gpu1: gemma3:12b is",
		"on CPU",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
}
