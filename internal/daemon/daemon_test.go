package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/agentd/agentd/internal/run"
)

// sumSimulator is a simulator whose planner plans "17*3" on calc and whose
// summarizer reports 51: one planned tool step and its answer, the
// smallest whole run.
func sumSimulator() ollamasim.Config {
	planJSON := `{"goal":"compute","steps":[{"id":"sum","tool":"calc","args":{"expression":"17*3"}}],"answer":"Report the result of ${sum}"}`
	return ollamasim.Config{Seed: 1, Script: ollamasim.NewRules(
		ollamasim.Rule{Model: "gemma3:12b", Format: ollamasim.Present, Replies: []ollamasim.Reply{{Content: planJSON}}},
		ollamasim.Rule{Contains: "Report the result", Replies: []ollamasim.Reply{{Content: "The result is 51 [sum]."}}},
	)}
}

// TestEndToEndOnSimulator runs the whole composed daemon against the Ollama
// simulator: route, plan (scripted planner output), a tool step with no
// model call, synthesis, persistence and events.
func TestEndToEndOnSimulator(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := startOnSimulator(t, ctx, sumSimulator(), Options{})
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	r, err := d.Engine.Submit(ctx, exec.SubmitRequest{Request: "What is 17 times 3?", Source: "api"})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	final, err := d.Engine.Wait(wctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != run.Done || !strings.Contains(final.Answer, "51") {
		t.Fatalf("run ended %s with answer %q (error %q)", final.Status, final.Answer, final.Error)
	}
	steps, _ := d.Store.RunSteps(ctx, r.ID)
	if len(steps) != 1 || steps[0].Status != run.StepDone || !strings.Contains(steps[0].Output, "51") {
		t.Fatalf("steps = %+v", steps)
	}
	calls, _ := d.Store.RunModelCalls(ctx, r.ID)
	purposes := map[string]int{}
	for _, c := range calls {
		purposes[c.Purpose]++
	}
	if purposes["plan"] != 1 || purposes["execute"] != 0 {
		t.Errorf("model calls by purpose = %v: want one planner call and none for the tool step", purposes)
	}
	// When the run ends, what it would have cost on the remote model is
	// recorded from its calls' tokens at the price table.
	price := config.Default().Fallback.Prices[config.Default().Fallback.Model]
	var want float64
	for _, c := range calls {
		want += price.Cost(c.PromptTokens, c.OutputTokens)
	}
	// The run detail the dashboard reads lists every plan version.
	detail, err := runsAPI{d.Store}.RunDetail(ctx, r.ID)
	if err != nil || len(detail.Plans) != 1 || detail.Plans[0].Version != 1 || detail.Plans[0].CreatedAt.IsZero() {
		t.Errorf("run detail plans = %+v, %v; want version 1 with its time", detail.Plans, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := d.Store.GetRun(ctx, r.ID)
		if want > 0 && got.RemoteOnlyUSD == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote-only cost = %v, want %v", got.RemoteOnlyUSD, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not stop")
	}
}

// startOnSimulator builds a daemon (not yet running) whose one Ollama
// endpoint is a simulator started with simCfg, on a private state
// directory and a free loopback port.
func startOnSimulator(t *testing.T, ctx context.Context, simCfg ollamasim.Config, opts Options) *Daemon {
	t.Helper()
	return startOnSimulatorOpts(t, ctx, simCfg, opts, nil)
}

// startOnSimulatorWith is startOnSimulator with the config edited first.
func startOnSimulatorWith(t testing.TB, ctx context.Context, simCfg ollamasim.Config, edit func(*config.Config)) *Daemon {
	t.Helper()
	return startOnSimulatorOpts(t, ctx, simCfg, Options{}, edit)
}

func startOnSimulatorOpts(t testing.TB, ctx context.Context, simCfg ollamasim.Config, opts Options, edit func(*config.Config)) *Daemon {
	t.Helper()
	simCfg.Logger = slog.New(slog.DiscardHandler)
	url, err := ollamasim.New(simCfg).Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Storage.StateDir = t.TempDir()
	cfg.VRAM.Probe = "none"
	cfg.Ollama.Endpoints = []config.EndpointConfig{{Name: "sim", URL: url, ParallelSlots: 4, MaxQueue: 64}}
	if edit != nil {
		edit(cfg)
	}
	return newDaemon(t, ctx, cfg, opts)
}

// newDaemon builds a daemon from cfg on a free loopback port (again on the
// same state directory, for restart tests).
func newDaemon(t testing.TB, ctx context.Context, cfg *config.Config, opts Options) *Daemon {
	t.Helper()
	var err error
	if opts.Listener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	opts.GPUCapacity = 24 << 30
	d, err := New(ctx, cfg, opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return d
}
