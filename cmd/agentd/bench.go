package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/bench"
	"github.com/agentd/agentd/internal/bench/peers"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/scenarios"
)

// `agentd bench` parses its flags and prints; every benchmark lives in
// internal/bench.

func init() {
	register("bench", "benchmark agentd against a sequential loop and a ReAct loop (simulator or real Ollama), plus sub-benchmarks", (*Main).bench)
}

type benchFlags struct {
	ollamaURL       string
	timeScale       float64
	scenarios       string
	suite, planner  bool
	residency, ws   bool
	overhead, all   bool
	fallback        bool
	cache           bool
	cacheOpts       bench.CacheOptions
	real            bool
	realOpts        bench.RealOptions
	fallbackRepeat  int
	plannerRequests int
	plannerMaxCalls int
	plannerFaults   string
	overheadRuns    int
	wsDuration      time.Duration
	oneCall         bool
	oneCallRuns     int
	peers           bool
	peersOneCall    string
	peersFrameworks string
}

func (m *Main) bench(ctx context.Context, args []string) error {
	fs, cfgPath := m.flags("bench")
	var f benchFlags
	fs.Bool("sim", true, "run on the in-process Ollama simulator with its latency model (the default; --ollama replaces it)")
	fs.StringVar(&f.ollamaURL, "ollama", "", "run the scenario suite on a real Ollama at this URL instead of the simulator")
	fs.Float64Var(&f.timeScale, "time-scale", 0.5, "simulator: real seconds per simulated second (times are reported simulated: real / time-scale)")
	fs.StringVar(&f.scenarios, "scenario", "", "comma-separated scenario names (default: all: "+strings.Join(scenarios.Names(), ", ")+")")
	fs.BoolVar(&f.suite, "suite", false, "run the scenario suite: agentd vs sequential vs ReAct (the default when no sub-benchmark is chosen)")
	fs.BoolVar(&f.planner, "planner", false, "planner fault benchmark: share of valid plans against the planner-call budget, under faults that can persist through repair")
	fs.BoolVar(&f.residency, "residency", false, "VRAM residency benchmark at 8 GiB and 24 GiB")
	fs.BoolVar(&f.ws, "ws", false, "WebSocket fan-out benchmark: 1000 events/s to 50 clients")
	fs.BoolVar(&f.overhead, "overhead", false, "orchestration overhead per step with an instant model, and 500 concurrent runs")
	fs.BoolVar(&f.fallback, "fallback", false, "remote fallback cost: local-first with escalation vs remote-only, against a fake remote on 127.0.0.1")
	fs.IntVar(&f.fallbackRepeat, "fallback-repeat", 4, "fallback benchmark: plain runs of each scenario beside its one hard (escalating) variant")
	fs.BoolVar(&f.cache, "cache", false, "plan cache benchmark (issue 14): a workload of everyday requests with cache off vs cache on (cold), then hard requests with the remote fallback on, remote-only vs cache on; simulator only")
	fs.IntVar(&f.cacheOpts.Requests, "cache-requests", 200, "--cache: requests in the workload (drawn from every request type)")
	fs.IntVar(&f.cacheOpts.RemoteRequests, "cache-remote-requests", 120, "--cache: hard requests run with the remote fallback on (0 skips that part)")
	fs.Uint64Var(&f.cacheOpts.Seed, "cache-seed", 1, "--cache: seed that draws the workloads")
	fs.BoolVar(&f.real, "real", false, "real-server overhead: a fixed set of requests through the daemon against --ollama, each run's wall time / the server's busy time, every run bounded")
	fs.IntVar(&f.realOpts.Runs, "real-runs", 0, "--real: runs, going round the fixed set (default: the set once)")
	fs.DurationVar(&f.realOpts.Timeout, "real-timeout", 2*time.Minute, "--real: bound per run: the request's deadline is the bound less min(bound/4, 15s), and a run with no final status by the bound is recorded as stuck")
	fs.StringVar(&f.realOpts.Model, "real-model", "tiny", "--real: model for every role (router, planner, executor tiers, summarizer, validator)")
	fs.StringVar(&f.realOpts.Planner, "real-planner", "", "--real: planner model (default: --real-model)")
	fs.StringVar(&f.realOpts.Executor, "real-executor", "", "--real: executor model for the fast and standard tiers (default: --real-model)")
	fs.BoolVar(&f.oneCall, "one-call", false, "with --ollama: a run that makes one model call against that same request sent directly, pair by pair: what agentd adds around a call")
	fs.IntVar(&f.oneCallRuns, "one-call-runs", 100, "--one-call: measured pairs")
	fs.BoolVar(&f.peers, "peers", false, "peer frameworks side by side with agentd on the same simulator and tools: LangGraph.js (ReAct, plan-and-execute) and Strands Agents, from bench/peers (run `npm ci` there first)")
	fs.StringVar(&f.peersOneCall, "peers-oracle", "both", "--peers: how the simulated model plays the peers' tool-calling agents: parallel (every ready call in one turn), one (one call a turn) or both")
	fs.StringVar(&f.peersFrameworks, "peers-frameworks", "", "--peers: comma-separated frameworks (default: all)")
	fs.BoolVar(&f.all, "all", false, "run the suite and every sub-benchmark (--real too when --ollama is given)")
	fs.IntVar(&f.plannerRequests, "planner-requests", 400, "requests in the planner fault benchmark")
	fs.IntVar(&f.plannerMaxCalls, "planner-max-calls", 6, "planner fault benchmark: the curve goes from 1 planner call to this many (1 + planner.repair_attempts)")
	fs.StringVar(&f.plannerFaults, "planner-faults", "0:0,0.3:0.1,0.5:0.1,0.5:0.3,1:0", "planner fault benchmark: rows of p_recur:p_ignore, the chances that a fault recurs on a repair reply and that the model ignores the feedback")
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
		f.cache = f.ollamaURL == "" // the workload's models are played by the simulator
		f.real = f.ollamaURL != ""
		f.oneCall = f.ollamaURL != ""
	}
	if f.real && f.ollamaURL == "" {
		return usagef("--real measures agentd against a real server: give --ollama URL")
	}
	if f.oneCall && f.ollamaURL == "" {
		return usagef("--one-call measures agentd against a real server: give --ollama URL")
	}
	if f.realOpts.Timeout <= 0 {
		return usagef("--real-timeout %s: use a positive duration", f.realOpts.Timeout)
	}
	if f.plannerMaxCalls < 1 || f.plannerMaxCalls > 11 {
		return usagef("--planner-max-calls %d: use 1 to 11 (planner.repair_attempts is at most 10)", f.plannerMaxCalls)
	}
	if f.plannerRequests < 1 {
		return usagef("--planner-requests %d: use a positive number", f.plannerRequests)
	}
	faultRates, err := bench.ParseFaultRates(f.plannerFaults)
	if err != nil {
		return usagef("--planner-faults %v", err)
	}
	if f.cache && f.ollamaURL != "" {
		return usagef("--cache runs on the simulator (its script plays the planner for the workload); drop --ollama")
	}
	if f.cacheOpts.Requests < 1 || f.cacheOpts.RemoteRequests < 0 {
		return usagef("--cache-requests %d, --cache-remote-requests %d: use a positive number of requests (remote: 0 or more)", f.cacheOpts.Requests, f.cacheOpts.RemoteRequests)
	}
	if !f.planner && !f.residency && !f.ws && !f.overhead && !f.fallback && !f.real && !f.oneCall && !f.peers && !f.cache {
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
	var suite *bench.SuiteResult
	if f.suite {
		res, err := bench.RunSuite(ctx, base, bench.SuiteOptions{OllamaURL: f.ollamaURL, TimeScale: f.timeScale, Scenarios: list, Log: log,
			Learned: f.peers})
		if err != nil {
			return fmt.Errorf("scenario suite: %w", err)
		}
		res.Render(out)
		suite = res
	}
	if f.peers {
		if f.ollamaURL != "" {
			return usagef("--peers runs on the simulator (its scenario oracle plays every framework's model); drop --ollama")
		}
		modes := map[string][]bool{"parallel": {false}, "one": {true}, "both": {false, true}}[f.peersOneCall]
		if modes == nil {
			return usagef("--peers-oracle %q: use parallel, one or both", f.peersOneCall)
		}
		var fws []string
		if f.peersFrameworks != "" {
			fws = strings.Split(f.peersFrameworks, ",")
		}
		if suite == nil {
			// agentd's side, once for every oracle mode: its prompts are
			// answered by the scenario script either way.
			res, err := bench.RunSuite(ctx, base, bench.SuiteOptions{TimeScale: f.timeScale, Scenarios: list, Log: log, Learned: true})
			if err != nil {
				return fmt.Errorf("scenario suite for --peers: %w", err)
			}
			suite = res
		}
		for _, one := range modes {
			rep, err := peers.Run(ctx, peers.Options{TimeScale: f.timeScale, Scenarios: list, Frameworks: fws, Base: base,
				Agentd: suite, Oracle: scenarios.OracleOptions{OneCallPerTurn: one}, Log: log})
			if err != nil {
				return fmt.Errorf("peers: %w", err)
			}
			fmt.Fprintln(out, "## Peers side by side")
			fmt.Fprintln(out)
			rep.Markdown(out)
			fmt.Fprintln(out)
		}
	}
	if f.fallback {
		r, err := bench.RunFallback(ctx, base, bench.FallbackOptions{OllamaURL: f.ollamaURL, TimeScale: f.timeScale, Scenarios: list,
			Repeat: f.fallbackRepeat, Log: log})
		if err != nil {
			return fmt.Errorf("fallback benchmark: %w", err)
		}
		r.Render(out, base.Fallback.Model)
	}
	if f.cache {
		o := f.cacheOpts
		o.TimeScale, o.Log = f.timeScale, log
		r, err := bench.RunCache(ctx, base, o)
		if err != nil {
			return fmt.Errorf("plan cache benchmark: %w", err)
		}
		r.Render(out)
	}
	if f.oneCall {
		r, err := bench.RunOneCall(ctx, base, f.ollamaURL, bench.OneCallOptions{Runs: f.oneCallRuns, Model: f.realOpts.Model}, log)
		if err != nil {
			return fmt.Errorf("one-call benchmark: %w", err)
		}
		r.Render(out)
	}
	if f.real {
		r, err := bench.RunReal(ctx, base, f.ollamaURL, f.realOpts, log)
		if err != nil {
			return fmt.Errorf("real-server benchmark: %w", err)
		}
		r.Render(out)
	}
	if f.planner {
		r, err := bench.RunPlanner(ctx, base, bench.PlannerOptions{Requests: f.plannerRequests, MaxCalls: f.plannerMaxCalls, Rates: faultRates, Log: log})
		if err != nil {
			return fmt.Errorf("planner benchmark: %w", err)
		}
		r.Render(out)
	}
	if f.residency {
		r, err := bench.RunResidencyGPUs(ctx, 8<<30, 24<<30)
		if err != nil {
			return fmt.Errorf("residency benchmark: %w", err)
		}
		r.Render(out)
	}
	if f.ws {
		r, err := bench.RunFanout(ctx, bench.FanoutConfig{Clients: 50, Rate: 1000, Duration: f.wsDuration})
		if err != nil {
			return fmt.Errorf("websocket benchmark: %w", err)
		}
		r.Render(out)
	}
	if f.overhead {
		r, err := bench.RunOverhead(ctx, base, f.overheadRuns, log)
		if r != nil {
			r.Render(out)
		}
		if err != nil {
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
