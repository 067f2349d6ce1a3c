package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ollama/ollama/api"

	agentapi "github.com/agentd/agentd/internal/api"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/llm"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/agentd/agentd/internal/plan"
	agentrun "github.com/agentd/agentd/internal/run"
	"github.com/agentd/agentd/internal/scenarios"
	"github.com/agentd/agentd/internal/tools"
	"github.com/agentd/agentd/internal/vram"
)

func init() {
	register("bench", "benchmark agentd against a sequential loop and a ReAct loop (simulator or real Ollama), plus sub-benchmarks", (*Main).bench)
}

// Modes of the scenario suite.
const (
	modeAgentd     = "agentd"
	modeSequential = "sequential"
	modeReAct      = "react"
)

type benchFlags struct {
	ollamaURL       string
	timeScale       float64
	scenarios       string
	suite, planner  bool
	residency, ws   bool
	overhead, all   bool
	fallback        bool
	real            bool
	realOpts        realOptions
	fallbackRepeat  int
	plannerRequests int
	overheadRuns    int
	wsDuration      time.Duration
}

func (m *Main) bench(ctx context.Context, args []string) error {
	fs, cfgPath := m.flags("bench")
	var f benchFlags
	fs.Bool("sim", true, "run on the in-process Ollama simulator with its latency model (the default; --ollama replaces it)")
	fs.StringVar(&f.ollamaURL, "ollama", "", "run the scenario suite on a real Ollama at this URL instead of the simulator")
	fs.Float64Var(&f.timeScale, "time-scale", 0.5, "simulator: real seconds per simulated second (times are reported simulated: real / time-scale)")
	fs.StringVar(&f.scenarios, "scenario", "", "comma-separated scenario names (default: all: "+strings.Join(scenarios.Names(), ", ")+")")
	fs.BoolVar(&f.suite, "suite", false, "run the scenario suite: agentd vs sequential vs ReAct (the default when no sub-benchmark is chosen)")
	fs.BoolVar(&f.planner, "planner", false, "planner fault benchmark: valid plans within 3 calls under injected faults")
	fs.BoolVar(&f.residency, "residency", false, "VRAM residency benchmark at 8 GiB and 24 GiB")
	fs.BoolVar(&f.ws, "ws", false, "WebSocket fan-out benchmark: 1000 events/s to 50 clients")
	fs.BoolVar(&f.overhead, "overhead", false, "orchestration overhead per step with an instant model, and 500 concurrent runs")
	fs.BoolVar(&f.fallback, "fallback", false, "remote fallback cost: local-first with escalation vs remote-only, against a fake remote on 127.0.0.1")
	fs.IntVar(&f.fallbackRepeat, "fallback-repeat", 4, "fallback benchmark: plain runs of each scenario beside its one hard (escalating) variant")
	fs.BoolVar(&f.real, "real", false, "real-server overhead: a fixed set of requests through the daemon against --ollama, each run's wall time / the server's busy time, every run bounded")
	fs.IntVar(&f.realOpts.Runs, "real-runs", 0, "--real: runs, going round the fixed set (default: the set once)")
	fs.DurationVar(&f.realOpts.Timeout, "real-timeout", 2*time.Minute, "--real: bound per run: the request's deadline is the bound less min(bound/4, 15s), and a run with no final status by the bound is recorded as stuck")
	fs.StringVar(&f.realOpts.Model, "real-model", "tiny", "--real: model for every role (router, planner, executor tiers, summarizer, validator)")
	fs.StringVar(&f.realOpts.Planner, "real-planner", "", "--real: planner model (default: --real-model)")
	fs.StringVar(&f.realOpts.Executor, "real-executor", "", "--real: executor model for the fast and standard tiers (default: --real-model)")
	fs.BoolVar(&f.all, "all", false, "run the suite and every sub-benchmark (--real too when --ollama is given)")
	fs.IntVar(&f.plannerRequests, "planner-requests", 400, "requests in the planner fault benchmark")
	fs.IntVar(&f.overheadRuns, "overhead-runs", 500, "concurrent runs in the overhead benchmark")
	fs.DurationVar(&f.wsDuration, "ws-duration", 5*time.Second, "publishing time of the WebSocket benchmark")
	if err := parse(fs, args); err != nil {
		return err
	}
	if f.timeScale <= 0 || f.timeScale > 1 {
		return usagef("--time-scale %g: use a value in (0, 1]", f.timeScale)
	}
	if f.all {
		f.suite, f.planner, f.residency, f.ws, f.overhead, f.fallback = true, true, true, true, true, true
		f.real = f.ollamaURL != ""
	}
	if f.real && f.ollamaURL == "" {
		return usagef("--real measures agentd against a real server: give --ollama URL")
	}
	if f.realOpts.Timeout <= 0 {
		return usagef("--real-timeout %s: use a positive duration", f.realOpts.Timeout)
	}
	if !f.planner && !f.residency && !f.ws && !f.overhead && !f.fallback && !f.real {
		f.suite = true
	}
	base := config.Default()
	if *cfgPath != "" {
		c, _, err := m.loadConfig(*cfgPath)
		if err != nil {
			return err
		}
		base = c
	}
	list, err := pickScenarios(f.scenarios)
	if err != nil {
		return err
	}
	log := slog.New(slog.DiscardHandler)
	out := m.Stdout
	fmt.Fprintf(out, "agentd bench — %s, GOMAXPROCS %d\n\n", time.Now().UTC().Format(time.RFC3339), runtime.GOMAXPROCS(0))
	if f.suite {
		res, err := runSuite(ctx, base, suiteOptions{OllamaURL: f.ollamaURL, TimeScale: f.timeScale, Scenarios: list, Log: log})
		if err != nil {
			return fmt.Errorf("scenario suite: %w", err)
		}
		res.Render(out)
	}
	if f.fallback {
		env, err := newBenchEnv(ctx, base, f.ollamaURL, f.timeScale, scenarios.Script(), log)
		if err != nil {
			return err
		}
		if err := env.warm(ctx, base.Models); err != nil {
			env.close()
			return err
		}
		r, err := env.benchFallback(ctx, list, f.fallbackRepeat)
		env.close()
		if err != nil {
			return fmt.Errorf("fallback benchmark: %w", err)
		}
		r.Render(out, base.Fallback.Model)
	}
	if f.real {
		env, err := newBenchEnv(ctx, base, f.ollamaURL, f.timeScale, nil, log)
		if err != nil {
			return err
		}
		r, err := env.benchReal(ctx, f.realOpts)
		env.close()
		if err != nil {
			return fmt.Errorf("real-server benchmark: %w", err)
		}
		r.Render(out)
	}
	if f.planner {
		if err := benchPlanner(ctx, out, base, f.plannerRequests, log); err != nil {
			return fmt.Errorf("planner benchmark: %w", err)
		}
	}
	if f.residency {
		if err := benchResidency(ctx, out); err != nil {
			return fmt.Errorf("residency benchmark: %w", err)
		}
	}
	if f.ws {
		fmt.Fprintln(out, "## WebSocket fan-out")
		r, err := agentapi.RunFanoutBench(ctx, agentapi.FanoutBenchConfig{Clients: 50, Rate: 1000, Duration: f.wsDuration})
		if err != nil {
			return fmt.Errorf("websocket benchmark: %w", err)
		}
		fmt.Fprintf(out, "%s\n\n", r)
	}
	if f.overhead {
		if err := benchOverhead(ctx, out, base, f.overheadRuns, log); err != nil {
			return fmt.Errorf("overhead benchmark: %w", err)
		}
	}
	return nil
}

func pickScenarios(names string) ([]scenarios.Scenario, error) {
	if strings.TrimSpace(names) == "" {
		return scenarios.All(), nil
	}
	var out []scenarios.Scenario
	for _, n := range strings.Split(names, ",") {
		sc, ok := scenarios.Find(strings.TrimSpace(n))
		if !ok {
			return nil, usagef("--scenario %q: unknown; use one of %s", n, strings.Join(scenarios.Names(), ", "))
		}
		out = append(out, sc)
	}
	return out, nil
}

// --- the scenario suite ---------------------------------------------------

type suiteOptions struct {
	OllamaURL string  // empty: the simulator
	TimeScale float64 // simulator only
	Scenarios []scenarios.Scenario
	Log       *slog.Logger
}

// tokenCount is one model's tokens in a run.
type tokenCount struct{ Prompt, Output int }

// modeRow is one scenario run in one mode.
type modeRow struct {
	Scenario, Mode string
	Status         string
	// Wall is the run's elapsed time, simulated (real / TimeScale) on the
	// simulator; Bound the plan's critical-path bound (agentd only).
	Wall, Bound time.Duration
	BoundPath   []string
	// Planning is the time of the planning calls (reported durations);
	// Classify counts router workflow-classification calls.
	Planning time.Duration
	Calls    int
	Classify int
	Tokens   map[string]tokenCount
	CostUSD  float64
	Score    scenarios.Score
	Err      string
}

// suiteResult is the whole comparison.
type suiteResult struct {
	Backend   string
	TimeScale float64
	PriceName string
	Rows      []modeRow
	Parallel  map[string]bool // scenarios with parallel steps
}

func runSuite(ctx context.Context, base *config.Config, o suiteOptions) (*suiteResult, error) {
	env, err := newBenchEnv(ctx, base, o.OllamaURL, o.TimeScale, scenarios.Script(), o.Log)
	if err != nil {
		return nil, err
	}
	defer env.close()
	res := &suiteResult{Backend: env.backend, TimeScale: env.scale, PriceName: base.Fallback.Model, Parallel: map[string]bool{}}
	for _, sc := range o.Scenarios {
		res.Parallel[sc.Name] = len(sc.Expect.Parallel) > 0
	}
	price := base.Fallback.Prices[base.Fallback.Model]
	cost := func(tk map[string]tokenCount) float64 {
		var usd float64
		for _, t := range tk {
			usd += price.Cost(t.Prompt, t.Output)
		}
		return usd
	}
	if err := env.warm(ctx, base.Models); err != nil {
		return nil, err
	}

	agentRows, err := env.daemonMode(ctx, modeAgentd, o.Scenarios)
	if err != nil {
		return nil, err
	}
	seqRows, err := env.sequentialMode(ctx, o.Scenarios)
	if err != nil {
		return nil, err
	}
	reactRows, err := env.daemonMode(ctx, modeReAct, o.Scenarios)
	if err != nil {
		return nil, err
	}
	for i := range o.Scenarios {
		for _, r := range []modeRow{agentRows[i], seqRows[i], reactRows[i]} {
			r.CostUSD = cost(r.Tokens)
			res.Rows = append(res.Rows, r)
		}
	}
	return res, nil
}

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

// warm loads every model once, so no mode pays the loads the others skip.
func (e *benchEnv) warm(ctx context.Context, m config.ModelsConfig) error {
	u, err := url.Parse(e.url)
	if err != nil {
		return err
	}
	c := api.NewClient(u, http.DefaultClient)
	seen := map[string]bool{}
	for _, name := range []string{m.Planner, m.Fast, m.Standard, m.Summarizer, m.Router} {
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

func (e *benchEnv) daemonMode(ctx context.Context, mode string, list []scenarios.Scenario) ([]modeRow, error) {
	dir, err := os.MkdirTemp("", "agentd-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg := e.config(dir)
	if mode == modeReAct {
		// The single-model baseline runs on the planner model.
		cfg.Models.Fast = cfg.Models.Planner
	}
	h, err := startBenchDaemon(ctx, cfg, scenarios.Options{TimeScale: e.scale}, e.log)
	if err != nil {
		return nil, err
	}
	defer h.stop()
	rows := make([]modeRow, 0, len(list))
	for _, sc := range list {
		req := exec.SubmitRequest{Request: sc.Request, Source: "bench"}
		if mode == modeReAct {
			req.Mode = exec.ModeScratchpad
		}
		row := modeRow{Scenario: sc.Name, Mode: mode, Tokens: map[string]tokenCount{}}
		rec, err := h.runOne(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			row.Status, row.Err = "error", err.Error()
			rows = append(rows, row)
			continue
		}
		row.Status, row.Err = string(rec.run.Status), rec.run.Error
		row.Wall = e.simulated(rec.wall)
		var outs []scenarios.StepOutput
		for _, s := range rec.steps {
			if s.Status == agentrun.StepDone {
				outs = append(outs, scenarios.StepOutput{ID: s.StepID, Tool: s.Tool, Output: s.Output})
			}
		}
		row.Score = sc.Score(outs, rec.run.Answer, mode == modeReAct)
		for _, c := range rec.calls {
			row.Calls++
			if c.StepID == "" && c.Purpose != "synthesize" {
				row.Planning += time.Duration(c.TotalMS * float64(time.Millisecond))
			}
			if c.Purpose == localplanner.PurposeClassify {
				row.Classify++
			}
			t := row.Tokens[c.Model]
			t.Prompt += c.PromptTokens
			t.Output += c.OutputTokens
			row.Tokens[c.Model] = t
		}
		if mode == modeAgentd {
			row.Bound, row.BoundPath = e.criticalBound(rec)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// criticalBound is the shortest wall time the run's work allows: the
// planning calls one after another, then for each plan version the longest
// dependency chain of its executed steps (step durations as measured),
// then the synthesis call. Approval waits are not work and are left out.
func (e *benchEnv) criticalBound(rec *runRecord) (time.Duration, []string) {
	var bound time.Duration
	for _, c := range rec.calls {
		if c.StepID == "" {
			bound += time.Duration(c.TotalMS * float64(time.Millisecond))
		}
	}
	versions := map[int]*plan.Plan{}
	dur := map[string]time.Duration{}
	for _, s := range rec.steps {
		// A step that ran counts, whatever became of it: a failed attempt
		// superseded by a replan (stored as skipped) was work on the path.
		if s.StartedAt == nil || s.FinishedAt == nil {
			continue
		}
		p := versions[s.PlanVersion]
		if p == nil {
			p = &plan.Plan{}
			versions[s.PlanVersion] = p
		}
		p.Steps = append(p.Steps, plan.Step{ID: s.StepID, DependsOn: s.DependsOn})
		dur[s.StepID] = e.simulated(s.FinishedAt.Sub(*s.StartedAt) - rec.approvalWait[s.StepID])
	}
	var path []string
	keys := make([]int, 0, len(versions))
	for v := range versions {
		keys = append(keys, v)
	}
	sort.Ints(keys)
	for _, v := range keys {
		p := versions[v]
		// Dependencies on steps of earlier versions are already met.
		ids := map[string]bool{}
		for _, s := range p.Steps {
			ids[s.ID] = true
		}
		for i := range p.Steps {
			p.Steps[i].DependsOn = slices.DeleteFunc(slices.Clone(p.Steps[i].DependsOn), func(d string) bool { return !ids[d] })
		}
		d, chain := scenarios.CriticalPath(p, dur)
		bound += d
		path = append(path, chain...)
	}
	return bound, path
}

func (e *benchEnv) sequentialMode(ctx context.Context, list []scenarios.Scenario) ([]modeRow, error) {
	cfg := e.config(os.TempDir())
	client, err := llm.New(cfg.Ollama, cfg.Models, e.log)
	if err != nil {
		return nil, err
	}
	reg, err := scenarios.NewRegistry(cfg.Tools, tools.Deps{Logger: e.log}, scenarios.Tools(scenarios.Options{TimeScale: e.scale}))
	if err != nil {
		return nil, err
	}
	defer reg.Close()
	seq := &scenarios.Sequential{Chat: client, Tools: reg, Models: cfg.Models, Planner: cfg.Planner}
	var rows []modeRow
	for _, sc := range list {
		row := modeRow{Scenario: sc.Name, Mode: modeSequential, Tokens: map[string]tokenCount{}, Status: "done"}
		res, err := seq.Run(ctx, sc)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			row.Status, row.Err = "error", err.Error()
		} else if len(res.Failed) > 0 {
			row.Status, row.Err = "partial", strings.Join(res.Failed, "; ")
		}
		if res != nil {
			row.Wall = e.simulated(res.Wall)
			row.Score = sc.Score(res.Steps, res.Answer, false)
			for _, c := range res.Calls {
				row.Calls++
				if c.Purpose == "plan" {
					row.Planning += c.Total
				}
				t := row.Tokens[c.Model]
				t.Prompt += c.PromptTokens
				t.Output += c.OutputTokens
				row.Tokens[c.Model] = t
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithCancel(ctx)
	d, err := daemon.New(dctx, cfg, daemon.Options{Listener: ln, GPUCapacity: 24 << 30, Tools: scenarios.Registry(fx)}, log)
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

// --- rendering -------------------------------------------------------------

func fmtDur(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func fmtTokens(n int) string {
	if n >= 1000 {
		return fmt.Sprintf("%.1fk", float64(n)/1000)
	}
	return fmt.Sprint(n)
}

// Render writes the comparison table, tokens per model, and the targets.
func (r *suiteResult) Render(w io.Writer) {
	fmt.Fprintf(w, "## Scenario suite: agentd vs sequential vs ReAct\nbackend: %s\ncost: every token priced at the fallback model %s\n\n", r.Backend, r.PriceName)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tmode\tstatus\twall\tcrit.path\tmodel calls\ttokens in/out\tcost USD\tstep acc\tfinal acc\t")
	for _, row := range r.Rows {
		in, outT := 0, 0
		for _, t := range row.Tokens {
			in += t.Prompt
			outT += t.Output
		}
		bound := "-"
		if row.Bound > 0 {
			bound = fmtDur(row.Bound)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s/%s\t%.5f\t%d/%d\t%d/%d\t\n", row.Scenario, row.Mode, row.Status, fmtDur(row.Wall), bound,
			row.Calls, fmtTokens(in), fmtTokens(outT), row.CostUSD, row.Score.StepsOK, row.Score.StepsTotal, row.Score.FactsOK, row.Score.FactsTotal)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nTokens per model (prompt/output):")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, row := range r.Rows {
		models := make([]string, 0, len(row.Tokens))
		for m := range row.Tokens {
			models = append(models, m)
		}
		sort.Strings(models)
		var parts []string
		for _, m := range models {
			parts = append(parts, fmt.Sprintf("%s %s/%s", m, fmtTokens(row.Tokens[m].Prompt), fmtTokens(row.Tokens[m].Output)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", row.Scenario, row.Mode, strings.Join(parts, ", "))
	}
	tw.Flush()

	for _, row := range r.Rows {
		if row.Err != "" && row.Status != "done" {
			fmt.Fprintf(w, "note: %s/%s ended %s: %s\n", row.Scenario, row.Mode, row.Status, oneLineText(row.Err, 300))
		}
	}

	fmt.Fprintln(w, "\nTargets:")
	fmt.Fprintln(w, "- a comparison counts only runs that ended done with every expected fact in the answer; a failed, partial or wrong run is a loss and meets no target")
	by := map[string]map[string]modeRow{}
	var order []string
	for _, row := range r.Rows {
		if by[row.Scenario] == nil {
			by[row.Scenario] = map[string]modeRow{}
			order = append(order, row.Scenario)
		}
		by[row.Scenario][row.Mode] = row
	}
	counted := map[string]int{}
	for _, row := range r.Rows {
		if ok, _ := row.counts(); ok {
			counted[row.Mode]++
		}
	}
	fmt.Fprintf(w, "- runs that count: agentd %d/%d, sequential %d/%d, react %d/%d\n", counted[modeAgentd], len(order),
		counted[modeSequential], len(order), counted[modeReAct], len(order))
	for _, sc := range order {
		a := by[sc][modeAgentd]
		if ok, why := a.counts(); !ok {
			fmt.Fprintf(w, "- %s: agentd %s: no wall-vs-bound figure (target within 10%%: NOT met)\n", sc, why)
			continue
		}
		if a.Bound > 0 && a.Wall > 0 {
			over := float64(a.Wall-a.Bound) / float64(a.Bound)
			fmt.Fprintf(w, "- %s: agentd wall %s vs critical-path bound %s (%+.1f%%; target within 10%%: %s) path %s\n", sc, fmtDur(a.Wall), fmtDur(a.Bound),
				100*over, metOrNot(over <= 0.10), strings.Join(a.BoundPath, " → "))
		}
	}
	for _, sc := range order {
		if !r.Parallel[sc] {
			continue
		}
		a, s := by[sc][modeAgentd], by[sc][modeSequential]
		fmt.Fprintf(w, "- %s (parallel steps): ", sc)
		switch v := compareRuns(a, s, "sequential"); {
		case !v.decided && a.Wall <= 0:
			fmt.Fprint(w, "agentd's wall time was not recorded (target ≥2x: NOT met)")
		case !v.decided:
			x := float64(s.Wall) / float64(a.Wall)
			fmt.Fprintf(w, "sequential %s / agentd %s = %.2fx faster (target ≥2x: %s)", fmtDur(s.Wall), fmtDur(a.Wall), x, metOrNot(x >= 2))
			if ea, es := a.Wall-a.Planning, s.Wall-s.Planning; ea > 0 && es > 0 {
				fmt.Fprintf(w, "; after the shared planner call (%s): %s / %s = %.2fx", fmtDur(s.Planning), fmtDur(es), fmtDur(ea), float64(es)/float64(ea))
			}
		default:
			fmt.Fprintf(w, "%s (target ≥2x faster: %s)", v.why, metOrNot(v.won))
		}
		fmt.Fprintln(w)
	}
	// The totals compare calls only where both runs count; a scenario
	// agentd lost fails the total whatever the counts say.
	var ta, tr, tc, lost, won int
	for _, sc := range order {
		a, re := by[sc][modeAgentd], by[sc][modeReAct]
		if re.Mode == "" {
			continue
		}
		switch v := compareRuns(a, re, "ReAct"); {
		case !v.decided && re.Calls == 0:
		case !v.decided:
			red := 1 - float64(a.Calls)/float64(re.Calls)
			fmt.Fprintf(w, "- %s: model calls agentd %d vs ReAct %d (%.0f%% fewer; target ≥50%%: %s)\n", sc, a.Calls, re.Calls, 100*red, metOrNot(red >= 0.5))
			ta += a.Calls
			tc += a.Classify
			tr += re.Calls
		default:
			fmt.Fprintf(w, "- %s: model calls: %s (target ≥50%% fewer: %s)\n", sc, v.why, metOrNot(v.won))
			if v.won {
				won++
			} else {
				lost++
			}
		}
	}
	if ta+tr+lost+won > 0 {
		fmt.Fprint(w, "- all scenarios: ")
		red := 0.0
		if tr > 0 {
			red = 1 - float64(ta)/float64(tr)
			fmt.Fprintf(w, "model calls agentd %d vs ReAct %d where both runs count (%.0f%% fewer)", ta, tr, 100*red)
		} else {
			fmt.Fprint(w, "no scenario where both runs count")
		}
		if lost+won > 0 {
			fmt.Fprintf(w, "; scenarios where a run does not count: %d (agentd's among them in %d, only ReAct's in %d)", lost+won, lost, won)
		}
		fmt.Fprintf(w, " (target ≥50%% fewer: %s)\n", metOrNot(lost == 0 && (tr == 0 && won > 0 || tr > 0 && red >= 0.5)))
		if tc > 0 && tr > 0 {
			red := 1 - float64(ta-tc)/float64(tr)
			fmt.Fprintf(w, "- all scenarios where both runs count, without the %d router workflow-classification calls (made because workflows are configured and the request matched no keyword): agentd %d vs ReAct %d (%.0f%% fewer)\n", tc, ta-tc, tr, 100*red)
		}
	}
	fmt.Fprintln(w)
}

// counts reports whether a run may enter a comparison: it ended done and,
// where the scenario has an oracle, its answer holds every expected fact.
// why says what disqualified it, for the report.
func (row modeRow) counts() (ok bool, why string) {
	if row.Status != string(agentrun.Done) {
		st := row.Status
		if st == "" {
			st = "without a status"
		}
		return false, "ended " + st
	}
	if row.Score.FactsTotal > 0 && row.Score.FactsOK < row.Score.FactsTotal {
		return false, fmt.Sprintf("ended done but its answer holds %d of %d expected facts", row.Score.FactsOK, row.Score.FactsTotal)
	}
	return true, ""
}

// verdict is the outcome of agentd's run against a baseline's: decided
// when either run does not count (then won says whether agentd won), or
// undecided when both count and the figures decide.
type verdict struct {
	decided, won bool
	why          string
}

// compareRuns is the one rule for every agentd-vs-baseline claim: a run
// that does not count loses; agentd wins only with a run that counts.
func compareRuns(a, base modeRow, baseName string) verdict {
	aok, awhy := a.counts()
	bok, bwhy := base.counts()
	switch {
	case aok && bok:
		return verdict{}
	case !aok && !bok:
		return verdict{decided: true, why: fmt.Sprintf("agentd %s and %s %s: both lose, agentd wins nothing", awhy, baseName, bwhy)}
	case !aok:
		return verdict{decided: true, why: fmt.Sprintf("agentd %s: a loss, whatever it saved", awhy)}
	default:
		return verdict{decided: true, won: true, why: fmt.Sprintf("%s %s: a loss for %s; agentd's run counts", baseName, bwhy, baseName)}
	}
}

func oneLineText(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// --- sub-benchmarks --------------------------------------------------------

// benchPlanner plans the suite's requests over and over with a planner
// model that makes faults at fixed rates, and counts planner calls.
func benchPlanner(ctx context.Context, w io.Writer, base *config.Config, requests int, log *slog.Logger) error {
	// Instant model: this benchmark counts calls and validity, not time.
	sim := ollamasim.New(ollamasim.Config{Seed: 1, Script: scenarios.Script(), Logger: log, NumParallel: 4})
	u, err := sim.Start(ctx)
	if err != nil {
		return err
	}
	defer sim.Close()
	env := &benchEnv{base: base, url: u, scale: 1, log: log}
	cfg := env.config(os.TempDir())
	client, err := llm.New(cfg.Ollama, cfg.Models, log)
	if err != nil {
		return err
	}
	reg, err := scenarios.NewRegistry(cfg.Tools, tools.Deps{Logger: log}, scenarios.Tools(scenarios.Options{}))
	if err != nil {
		return err
	}
	defer reg.Close()
	faulty := scenarios.NewFaultyPlanner(scenarios.PlannerModel{C: client}, 42)
	cat := scenarios.Catalog{R: reg}
	cfg.Planner.RepairAttempts = max(cfg.Planner.RepairAttempts, 2)
	p := localplanner.New(faulty, cat, cfg.Planner, cfg.Models, log)
	var list []localplanner.Scenario
	var planned []scenarios.Scenario
	for _, sc := range scenarios.All() {
		if sc.Plan != nil {
			planned = append(planned, sc)
		}
	}
	for i := range requests {
		sc := planned[i%len(planned)]
		list = append(list, localplanner.Scenario{Name: sc.Name, Request: sc.Request})
	}
	rep, err := localplanner.RunBench(ctx, p, list, 3)
	if err != nil {
		return err
	}
	injected, calls := faulty.Injected()

	// The template route: count planner-model calls (there must be none).
	counting := &countingModel{inner: scenarios.PlannerModel{C: client}}
	tpl, err := localplanner.NewTemplates(cfg.Workflows, counting, cat, cfg.Planner, cfg.Models, log)
	if err != nil {
		return err
	}
	tsc, _ := scenarios.Find(scenarios.NameTemplate)
	tres, err := tpl.Plan(ctx, localplanner.Request{Text: tsc.Request, RunID: "bench-template"}, tsc.Workflow)
	if err != nil {
		return err
	}

	fmt.Fprintln(w, "## Planner under injected faults")
	fmt.Fprintf(w, "faults on first replies: invalid JSON 10%%, unknown tool 10%%, bad reference 10%%, truncation 5%%; repair_attempts %d (3 planner calls at most)\n", cfg.Planner.RepairAttempts)
	fmt.Fprintf(w, "%s\n", rep)
	fmt.Fprintf(w, "faults injected: %s=%d %s=%d %s=%d %s=%d (model calls seen %d)\n",
		scenarios.FaultInvalidJSON, injected[scenarios.FaultInvalidJSON], scenarios.FaultUnknownTool, injected[scenarios.FaultUnknownTool],
		scenarios.FaultBadRef, injected[scenarios.FaultBadRef], scenarios.FaultTruncated, injected[scenarios.FaultTruncated], calls)
	fmt.Fprintf(w, "valid within 3 calls: %.2f%%; planner calls per request: local %.3f (1 + %.3f repairs), template %d (plus %d router-model call for its parameters)\n",
		100*rep.ValidRate(), float64(rep.PlannerCalls)/float64(max(rep.Requests, 1)), float64(rep.PlannerCalls-rep.Requests)/float64(max(rep.Requests, 1)),
		counting.plannerCalls(cfg.Models.Planner), tres.AuxCalls)
	for _, f := range rep.Failures {
		fmt.Fprintf(w, "no valid plan: %s: %s\n", f.Scenario, oneLineText(strings.Join(f.Errors, " | "), 400))
	}
	fmt.Fprintln(w)
	return nil
}

// countingModel counts calls per model.
type countingModel struct {
	inner localplanner.ChatModel
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingModel) Chat(ctx context.Context, req localplanner.ChatRequest) (localplanner.ChatResponse, error) {
	c.mu.Lock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[req.Model+"|"+req.Purpose]++
	c.mu.Unlock()
	return c.inner.Chat(ctx, req)
}

func (c *countingModel) plannerCalls(model string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, v := range c.calls {
		if strings.HasSuffix(k, "|"+localplanner.PurposePlan) || strings.HasSuffix(k, "|"+localplanner.PurposeRepair) {
			n += v
		}
	}
	return n
}

func benchResidency(ctx context.Context, w io.Writer) error {
	fmt.Fprintln(w, "## VRAM residency (simulator; 20 runs of 1 plan + 4 steps, gemma3:12b planner + llama3.2:3b executor)")
	for _, gb := range []int64{8, 24} {
		r, err := vram.RunResidencyBench(ctx, vram.BenchConfig{GPUBytes: gb << 30})
		if err != nil {
			return err
		}
		fmt.Fprintln(w, r.String())
	}
	return nil
}

// overheadPlan: four independent instant tool steps feeding four more.
func overheadPlan() *plan.Plan {
	p := &plan.Plan{Goal: "overhead probe", Answer: "Report the results."}
	for i := 1; i <= 4; i++ {
		p.Steps = append(p.Steps, plan.Step{ID: fmt.Sprintf("a%d", i), Tool: "calc", Args: map[string]any{"expression": fmt.Sprintf("%d*%d", i, i)}})
	}
	for i := 1; i <= 4; i++ {
		p.Steps = append(p.Steps, plan.Step{ID: fmt.Sprintf("b%d", i), Tool: "calc", Args: map[string]any{"expression": fmt.Sprintf("${a%d.result} + 1", i)},
			DependsOn: []string{fmt.Sprintf("a%d", i)}})
	}
	return p
}

// benchOverhead measures what the executor adds per step when the model
// and the tools take no time, then pushes concurrent runs through.
func benchOverhead(ctx context.Context, w io.Writer, base *config.Config, runs int, log *slog.Logger) error {
	script := ollamasim.NewRules(
		ollamasim.Rule{Contains: "overhead probe", Format: ollamasim.Present, Replies: []ollamasim.Reply{{Content: scenarios.PlanJSON(overheadPlan())}}},
		ollamasim.Rule{Contains: "Request: overhead probe", Replies: []ollamasim.Reply{{Content: "Done [a1] [b1]."}}},
	)
	// TimeScale 0: the simulator answers at once.
	sim := ollamasim.New(ollamasim.Config{Seed: 1, Script: script, Logger: log, NumParallel: 8, MaxQueue: 4096})
	u, err := sim.Start(ctx)
	if err != nil {
		return err
	}
	defer sim.Close()
	env := &benchEnv{base: base, url: u, scale: 1, log: log}
	dir, err := os.MkdirTemp("", "agentd-bench-overhead-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := env.config(dir)
	cfg.Workflows = nil // no router classification call in the probe
	cfg.Executor.MaxConcurrentRuns = 64
	cfg.Executor.QueueSize = max(cfg.Executor.QueueSize, 2*runs)
	cfg.Ollama.Endpoints[0].ParallelSlots, cfg.Ollama.Endpoints[0].MaxQueue = 8, 4096
	h, err := startBenchDaemon(ctx, cfg, scenarios.Options{}, log)
	if err != nil {
		return err
	}
	defer h.stop()

	// Sequential probes: per-step executor time and dispatch gap.
	const probes = 40
	var stepTimes, gaps, walls []time.Duration
	for i := range probes {
		rec, err := h.runOne(ctx, exec.SubmitRequest{Request: fmt.Sprintf("overhead probe %d", i), Source: "bench"})
		if err != nil {
			return err
		}
		if rec.run.Status != agentrun.Done {
			return fmt.Errorf("probe run ended %s: %s", rec.run.Status, rec.run.Error)
		}
		walls = append(walls, rec.wall)
		fin := map[string]time.Time{}
		for _, s := range rec.steps {
			fin[s.StepID] = *s.FinishedAt
		}
		for _, s := range rec.steps {
			stepTimes = append(stepTimes, s.FinishedAt.Sub(*s.StartedAt))
			for _, d := range s.DependsOn {
				gaps = append(gaps, s.StartedAt.Sub(fin[d]))
			}
		}
	}
	// Concurrent runs.
	start := time.Now()
	ids := make([]string, runs)
	var submitErr error
	for i := range runs {
		r, err := h.d.Engine.Submit(ctx, exec.SubmitRequest{Request: fmt.Sprintf("overhead probe c%d", i), Source: "bench"})
		if err != nil {
			submitErr = err
			break
		}
		ids[i] = r.ID
	}
	if submitErr != nil {
		return fmt.Errorf("submit: %w", submitErr)
	}
	statuses := map[agentrun.Status]int{}
	for _, id := range ids {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		r, err := h.d.Engine.Wait(wctx, id)
		cancel()
		if err != nil {
			return err
		}
		statuses[r.Status]++
	}
	elapsed := time.Since(start)

	fmt.Fprintln(w, "## Orchestration overhead (instant simulated model, instant calc tool)")
	fmt.Fprintf(w, "probe plan: 8 tool steps (4 independent, 4 depending on them), 1 planner call, 1 summarizer call; %d runs one at a time\n", probes)
	fmt.Fprintf(w, "per step, started→finished (bind, approval check, tool call records, events): median %s, p90 %s\n", median(stepTimes), pct(stepTimes, 0.9))
	fmt.Fprintf(w, "per dependency, finished→dependent started (dispatch gap): median %s, p90 %s\n", median(gaps), pct(gaps, 0.9))
	fmt.Fprintf(w, "per run, created→finished (8 steps + 2 model calls + SQLite): median %s\n", median(walls))
	fmt.Fprintf(w, "%d runs submitted at once (max_concurrent_runs %d): %s in %s (%.0f runs/s)\n\n", runs, cfg.Executor.MaxConcurrentRuns,
		fmtStatuses(statuses), elapsed.Round(time.Millisecond), float64(runs)/elapsed.Seconds())
	if statuses[agentrun.Done] != runs {
		return fmt.Errorf("%d of %d concurrent runs did not finish done: %s", runs-statuses[agentrun.Done], runs, fmtStatuses(statuses))
	}
	return nil
}

func fmtStatuses(m map[agentrun.Status]int) string {
	var parts []string
	for s, n := range m {
		parts = append(parts, fmt.Sprintf("%d %s", n, s))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func median(d []time.Duration) time.Duration { return pct(d, 0.5) }

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))].Round(time.Microsecond)
}
