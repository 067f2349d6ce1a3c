package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/ollamasim"
	agentrun "github.com/agentd/agentd/internal/run"
	"github.com/agentd/agentd/internal/scenarios"
	"github.com/agentd/agentd/internal/tools"
)

// benchEnv is a model backend (the simulator or a real Ollama) with the
// config every mode starts from.
type benchEnv struct {
	base    *config.Config
	url     string
	backend string
	scale   float64 // real seconds per reported second
	sim     *ollamasim.Server
	log     *slog.Logger
	cancel  context.CancelFunc
}

func newBenchEnv(ctx context.Context, base *config.Config, ollamaURL string, timeScale float64, script ollamasim.Script, log *slog.Logger) (*benchEnv, error) {
	env := &benchEnv{base: base, log: log, scale: 1, url: ollamaURL, backend: "Ollama at " + ollamaURL}
	if ollamaURL == "" {
		sctx, cancel := context.WithCancel(ctx)
		env.cancel = cancel
		env.sim = ollamasim.New(ollamasim.Config{Seed: 1, TimeScale: timeScale, NumParallel: 4, MaxQueue: 512, Script: script, Logger: log})
		u, err := env.sim.Start(sctx)
		if err != nil {
			cancel()
			return nil, err
		}
		env.url, env.scale = u, timeScale
		env.backend = fmt.Sprintf("Ollama simulator (latency model on, TimeScale %g; times below are simulated)", timeScale)
	}
	return env, nil
}

func (e *benchEnv) close() {
	if e.sim != nil {
		_ = e.sim.Close()
	}
	if e.cancel != nil {
		e.cancel()
	}
}

// simulated converts a real duration to the reported one.
func (e *benchEnv) simulated(d time.Duration) time.Duration {
	return time.Duration(float64(d) / e.scale)
}

// config is the base config pointed at the backend, with a private state
// directory and the scenario workflows.
func (e *benchEnv) config(stateDir string) *config.Config {
	b, _ := json.Marshal(e.base)
	cfg := config.Default()
	_ = json.Unmarshal(b, cfg)
	cfg.Storage.StateDir, cfg.Storage.Database, cfg.Server.TokenFile = stateDir, "", ""
	cfg.VRAM.Probe = "none"
	cfg.Ollama.Endpoints = []config.EndpointConfig{{Name: "bench", URL: e.url, ParallelSlots: 4, MaxQueue: 512}}
	cfg.Workflows = append(slices.Clone(cfg.Workflows), scenarios.Workflows()...)
	// Independent tool steps are I/O-bound: let a run's ten lookups go at once.
	cfg.Executor.MaxConcurrentSteps = max(cfg.Executor.MaxConcurrentSteps, 10)
	cfg.Fallback.Enabled = false
	return cfg
}

// coldPrompts empties the simulator's prompt caches before a run, so no
// run prefills less because the run before it (another mode's, on the
// same scenario) sent the same prompt. Within a run, the cache works as
// on a real server.
func (e *benchEnv) coldPrompts() {
	if e.sim != nil {
		e.sim.ForgetPrompts()
	}
}

// warm loads every model once, so no mode pays the loads the others skip.
func (e *benchEnv) warm(ctx context.Context, m config.ModelsConfig) error {
	return Warm(ctx, e.url, m.Planner, m.Fast, m.Standard, m.Summarizer, m.Router)
}

// Warm loads each named model (once, empty names skipped) on the server at
// base and keeps it an hour, so no benchmark side pays a load another
// skips.
func Warm(ctx context.Context, base string, models ...string) error {
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	c := api.NewClient(u, http.DefaultClient)
	seen := map[string]bool{}
	for _, name := range models {
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		stream := false
		err := c.Chat(ctx, &api.ChatRequest{Model: name, Stream: &stream, KeepAlive: &api.Duration{Duration: time.Hour}},
			func(api.ChatResponse) error { return nil })
		if err != nil {
			return fmt.Errorf("load %s: %w", name, err)
		}
	}
	return nil
}

// --- an in-process daemon for benchmarks ----------------------------------

type benchDaemon struct {
	d      *daemon.Daemon
	cancel context.CancelFunc
	done   chan error

	mu    sync.Mutex
	waits map[string]time.Duration // run/step -> approval wait
}

func startBenchDaemon(ctx context.Context, cfg *config.Config, fx scenarios.Options, log *slog.Logger) (*benchDaemon, error) {
	return startBenchDaemonTools(ctx, cfg, scenarios.Registry(fx), log)
}

// startBenchDaemonTools starts a bench daemon with the given tool registry
// (the plan cache bench runs the workload's tools, not the scenarios').
func startBenchDaemonTools(ctx context.Context, cfg *config.Config, registry func(config.ToolsConfig, tools.Deps) (*tools.Registry, error), log *slog.Logger) (*benchDaemon, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithCancel(ctx)
	d, err := daemon.New(dctx, cfg, daemon.Options{Listener: ln, GPUCapacity: 24 << 30, Tools: registry}, log)
	if err != nil {
		cancel()
		return nil, err
	}
	h := &benchDaemon{d: d, cancel: cancel, done: make(chan error, 1), waits: map[string]time.Duration{}}
	_, sub, err := d.Bus.Subscribe(dctx, d.Bus.LastSeq(), 1024, func(e events.Event) bool { return e.Type == events.ApprovalRequested })
	if err != nil {
		cancel()
		return nil, err
	}
	go func() { h.done <- d.Run(dctx) }()
	go h.autoApprove(dctx, sub)
	return h, nil
}

// autoApprove plays the operator who approves every step at once, so
// runs with an approval gate can be timed; the wait is recorded and left
// out of the critical-path bound.
func (h *benchDaemon) autoApprove(ctx context.Context, sub *events.Subscription) {
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.C:
			if !ok {
				return
			}
			var data struct {
				StepID string `json:"step_id"`
			}
			if json.Unmarshal(e.Data, &data) != nil || data.StepID == "" {
				continue
			}
			t := time.Now()
			if err := h.d.Engine.Approve(ctx, e.RunID, data.StepID, "bench", "auto-approved by agentd bench"); err == nil {
				h.mu.Lock()
				h.waits[e.RunID+"/"+data.StepID] = time.Since(t) + time.Since(e.Time)
				h.mu.Unlock()
			}
		}
	}
}

func (h *benchDaemon) stop() {
	h.cancel()
	<-h.done
}

type runRecord struct {
	run          *agentrun.Run
	wall         time.Duration
	steps        []*agentrun.Step
	calls        []db.ModelCall
	approvalWait map[string]time.Duration
}

func (h *benchDaemon) runOne(ctx context.Context, req exec.SubmitRequest) (*runRecord, error) {
	r, err := h.d.Engine.Submit(ctx, req)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	final, err := h.d.Engine.Wait(wctx, r.ID)
	if err != nil {
		return nil, err
	}
	rec := &runRecord{run: final, approvalWait: map[string]time.Duration{}}
	if final.FinishedAt != nil {
		rec.wall = final.FinishedAt.Sub(final.CreatedAt)
	}
	if rec.steps, err = h.d.Store.RunSteps(ctx, r.ID); err != nil {
		return nil, err
	}
	if rec.calls, err = h.d.Store.RunModelCalls(ctx, r.ID); err != nil {
		return nil, err
	}
	h.mu.Lock()
	for k, w := range h.waits {
		if id, step, _ := strings.Cut(k, "/"); id == r.ID {
			rec.approvalWait[step] = w
		}
	}
	h.mu.Unlock()
	return rec, nil
}
