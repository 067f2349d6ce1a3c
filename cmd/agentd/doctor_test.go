package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/agentd/agentd/internal/ollamatest"
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
		"FAIL  models     gpu1: standard-tier model mistral-nemo:12b (models.standard) is missing — run: ollama pull mistral-nemo:12b",
		"warn  loaded     gpu1: gemma3:12b is",
		"on CPU",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
}

// TestDoctorChecksOnlyNeededModels runs doctor against a real Ollama that
// has only the tiny model: a model no configured feature calls is never
// reported, and a missing one that a feature needs fails, naming the
// feature and the pull command.
func TestDoctorChecksOnlyNeededModels(t *testing.T) {
	srv := ollamatest.Start(t)
	docs := t.TempDir()
	models := `
[models]
planner = %q
standard = "tiny"
fast = "tiny"
summarizer = "tiny"
router = "router-not-pulled"
validator = "validator-not-pulled"
embedding = "nomic-embed-text"
`
	workflow := `
[[workflows]]
name = "triage"
description = "triage an alert"
keywords = ["triage"]
mode = "scratchpad"
`
	for _, tc := range []struct {
		name     string
		planner  string // empty: tiny
		extra    string
		code     int
		want     []string
		unwanted []string
	}{
		{
			name:     "tiny models, no docs folders, no workflows",
			code:     0,
			want:     []string{"ok    models     local: planner, standard-tier, fast-tier and summarizer model tiny (models.planner; models.standard; models.fast; models.summarizer) is pulled"},
			unwanted: []string{"FAIL", "nomic-embed-text", "router-not-pulled", "validator-not-pulled"},
		},
		{
			name:     "docs folders need the embedding model",
			extra:    fmt.Sprintf("[tools.docs]\nfolders = [%q]\n", docs),
			code:     1,
			want:     []string{"FAIL  models     local: embedding model nomic-embed-text (models.embedding, needed by [tools.docs] folders) is missing — run: ollama pull nomic-embed-text"},
			unwanted: []string{"router-not-pulled", "validator-not-pulled"},
		},
		{
			name:     "workflows need the router model",
			extra:    workflow,
			code:     1,
			want:     []string{"FAIL  models     local: router model router-not-pulled (models.router, needed by [[workflows]] to classify requests) is missing — run: ollama pull router-not-pulled"},
			unwanted: []string{"nomic-embed-text", "validator-not-pulled"},
		},
		{
			name:    "a missing planner fails",
			planner: "qwen3:8b",
			code:    1,
			want: []string{"FAIL  models     local: planner model qwen3:8b (models.planner) is missing — run: ollama pull qwen3:8b",
				"ok    models     local: standard-tier, fast-tier and summarizer model tiny"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			planner := cmp.Or(tc.planner, ollamatest.Plain)
			cfg := writeConfig(t, fmt.Sprintf(`
[storage]
state_dir = %q
[vram]
probe = "none"
[server]
listen = %q
[[ollama.endpoints]]
name = "local"
url = %q
parallel_slots = 1
max_queue = 4
%s
%s`, t.TempDir(), freePort(t), srv.URL, fmt.Sprintf(models, planner), tc.extra))
			out, code := run(t, nil, "doctor", "--config", cfg)
			if code != tc.code {
				t.Errorf("doctor exit = %d, want %d\n%s", code, tc.code, out)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("doctor output lacks %q:\n%s", want, out)
				}
			}
			for _, bad := range tc.unwanted {
				if strings.Contains(out, bad) {
					t.Errorf("doctor output mentions %q, which no configured feature needs:\n%s", bad, out)
				}
			}
		})
	}
}

// With no Ollama answering (a closed port on 127.0.0.1), doctor fails the
// check and says the two ways on, naming the configured models.
func TestDoctorWithoutOllama(t *testing.T) {
	closed := freePort(t)
	cfg := writeConfig(t, fmt.Sprintf(`
[storage]
state_dir = %q
[vram]
probe = "none"
[server]
listen = %q
[models]
planner = "gemma3:12b"
[[ollama.endpoints]]
name = "local"
url = "http://%s"
`, t.TempDir(), freePort(t), closed))
	out, code := run(t, nil, "doctor", "--config", cfg)
	if code != 1 {
		t.Errorf("doctor exit = %d, want 1\n%s", code, out)
	}
	for _, want := range []string{
		"FAIL  ollama     local: not reachable at http://" + closed + " — is `ollama serve` running?",
		"hint  ollama     no Ollama answers, so runs would wait for one. Two ways on:",
		"hint  ollama     - install Ollama (https://ollama.com/download), start it (`ollama serve`) and pull the configured models: ollama pull gemma3:12b; ",
		"; ollama pull granite4:tiny-h",
		"hint  ollama     - or try agentd without any model, on its built-in Ollama simulator: `agentd demo` (`make demo` in the source tree)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
}
