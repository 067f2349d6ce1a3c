package daemon

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/ollamatest"
	"github.com/agentd/agentd/internal/vram"
	"github.com/ollama/ollama/api"
)

// startOnOllama builds and runs a daemon whose one endpoint is the real
// Ollama srv and whose every model role is the tiny model.
func startOnOllama(t *testing.T, ctx context.Context, srv *ollamatest.Server, edit func(*config.Config)) *Daemon {
	t.Helper()
	cfg := config.Default()
	cfg.Storage.StateDir = t.TempDir()
	cfg.VRAM.Probe = "none"
	cfg.Ollama.Endpoints = []config.EndpointConfig{{Name: "local", URL: srv.URL, ParallelSlots: 1, MaxQueue: 16}}
	m := &cfg.Models
	m.Planner, m.Standard, m.Fast, m.Router, m.Summarizer, m.Validator = ollamatest.Plain, ollamatest.Plain,
		ollamatest.Plain, ollamatest.Plain, ollamatest.Plain, ollamatest.Plain
	if edit != nil {
		edit(cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(ctx, cfg, Options{Listener: ln}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	return d
}

// residentModels lists the models a status reports resident, as name@endpoint.
func residentModels(t *testing.T, st any) []string {
	t.Helper()
	s, ok := st.(Status)
	if !ok {
		t.Fatalf("status is %T", st)
	}
	snap, ok := s.Residency.(vram.ResidencySnapshot)
	if !ok {
		t.Fatalf("status residency is %T", s.Residency)
	}
	return loaded(snap)
}

func loaded(snap vram.ResidencySnapshot) []string {
	var out []string
	for _, m := range snap.Models {
		if m.Resident {
			out = append(out, m.Name+"@"+m.Endpoint)
		}
	}
	return out
}

// TestStatusForgetsResidencyWhenOllamaDies: once the status call finds an
// endpoint unreachable, no model is reported resident there, without
// waiting for the residency manager's next poll.
func TestStatusForgetsResidencyWhenOllamaDies(t *testing.T) {
	srv := ollamatest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := startOnOllama(t, ctx, srv, nil)

	client, err := NewOllamaClient(srv.URL, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	load := func() {
		t.Helper()
		stream := false
		if err := client.Chat(ctx, &api.ChatRequest{Model: ollamatest.Plain, Stream: &stream,
			Messages: []api.Message{{Role: "user", Content: "hello"}}, Options: map[string]any{"num_predict": 4}},
			func(api.ChatResponse) error { return nil }); err != nil {
			t.Fatalf("chat to load the model: %v", err)
		}
	}
	load()
	d.Residency.Refresh(ctx)
	st := d.status(ctx)
	if got := residentModels(t, st); len(got) != 1 || got[0] != ollamatest.Plain+"@local" {
		t.Fatalf("resident after a chat = %v, want [%s@local]", got, ollamatest.Plain)
	}

	srv.Kill()
	st = d.status(ctx)
	if o := st.(Status).Ollama; len(o) != 1 || o[0].Reachable {
		t.Fatalf("ollama status after kill = %+v, want local unreachable", o)
	}
	if got := residentModels(t, st); len(got) != 0 {
		t.Errorf("status still reports %v resident on a dead endpoint", got)
	}
	snap := st.(Status).Residency.(vram.ResidencySnapshot)
	if len(snap.Errors) == 0 {
		t.Errorf("residency snapshot gives no error for the dead endpoint: %+v", snap)
	}

	// The residency poll on its own (what /api/v1/residency reads) forgets
	// the dead endpoint's models too, instead of keeping its last reading.
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	load()
	d.Residency.Refresh(ctx)
	if got := loaded(d.Residency.Snapshot()); len(got) != 1 {
		t.Fatalf("resident after a restart and a chat = %v, want the tiny model", got)
	}
	srv.Kill()
	d.Residency.Refresh(ctx)
	if got := loaded(d.Residency.Snapshot()); len(got) != 0 {
		t.Errorf("the residency poll still reports %v resident on a dead endpoint", got)
	}
}
