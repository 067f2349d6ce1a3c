package bench

import (
	"context"
	"errors"
	"fmt"
	"github.com/agentd/agentd/internal/bench/makespan"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/llm"
	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/agentd/agentd/internal/scenarios"
	"github.com/agentd/agentd/internal/vram"
	"github.com/ollama/ollama/api"
)

// The VRAM residency benchmark (`agentd bench --residency`): the same
// workload sent naively and admitted by vram.Manager, on a simulated GPU.

// ResidencyConfig describes the residency benchmark: Requests agent runs, each
// one planner call followed by StepsPerRequest executor calls, against a
// simulated Ollama with GPUBytes of VRAM. Zero fields take the defaults
// noted.
type ResidencyConfig struct {
	GPUBytes      int64  // 8 GiB
	PlannerModel  string // "gemma3:12b" (8.1 GB in the simulator's catalog)
	ExecutorModel string // "llama3.2:3b" (2.0 GB)
	Requests      int    // 20
	// StepsPerRequest executor calls follow each plan, one after another.
	StepsPerRequest int // 4
	// Concurrency is how many runs are in flight at once; default Requests
	// (every queued run started at once).
	Concurrency int
	// ParallelSlots is the server's OLLAMA_NUM_PARALLEL; default 1.
	ParallelSlots int
	// Headroom is the VRAM kept spare; default 256 MiB.
	Headroom int64
	// LoadBytesPerSecond is how fast weights reach the GPU; default the
	// simulator's 2 GB/s (a warm page cache; a cold SATA disk is nearer 0.5).
	LoadBytesPerSecond float64
	// TimeScale maps simulated time to real time; default 0.01 (one
	// simulated second takes 10ms).
	TimeScale float64
	Seed      uint64 // 1
	// Token counts of each call; defaults 1500/300 (plan) and 800/100 (step).
	PlanPromptTokens, PlanOutputTokens int
	StepPromptTokens, StepOutputTokens int
	Logger                             *slog.Logger // nil: discard
}

func (c ResidencyConfig) withDefaults() ResidencyConfig {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.GPUBytes <= 0 {
		c.GPUBytes = 8 << 30
	}
	if c.PlannerModel == "" {
		c.PlannerModel = "gemma3:12b"
	}
	if c.ExecutorModel == "" {
		c.ExecutorModel = "llama3.2:3b"
	}
	def(&c.Requests, 20)
	def(&c.StepsPerRequest, 4)
	def(&c.Concurrency, c.Requests)
	def(&c.ParallelSlots, 1)
	if c.Headroom <= 0 {
		c.Headroom = 256 << 20
	}
	if c.TimeScale <= 0 {
		c.TimeScale = 0.01
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	def(&c.PlanPromptTokens, 1500)
	def(&c.PlanOutputTokens, 300)
	def(&c.StepPromptTokens, 800)
	def(&c.StepOutputTokens, 100)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// ResidencyRun is one strategy's result. Durations are simulated.
type ResidencyRun struct {
	Strategy string `json:"strategy"` // "naive" or "residency-aware"
	Requests int    `json:"requests"`
	Calls    int    `json:"calls"`
	// Loads counts every model load; WarmupLoads those made before the
	// first request (prewarm), LoadsAfterWarmup the rest.
	Loads            int64            `json:"loads"`
	WarmupLoads      int64            `json:"warmup_loads"`
	LoadsAfterWarmup int64            `json:"loads_after_warmup"`
	LoadsByModel     map[string]int64 `json:"loads_by_model"`
	Evictions        int64            `json:"evictions"`
	// LoadTime and BusyTime are the simulator's totals: reading weights and
	// prefill+decode.
	LoadTime time.Duration `json:"load_time"`
	BusyTime time.Duration `json:"busy_time"`
	// GPUTime is LoadTime+BusyTime after warm-up: the wall time on a GPU
	// that does one thing at a time, computed from the simulator's own
	// durations, so it does not depend on the host's speed.
	GPUTime time.Duration `json:"gpu_time"`
	// Throughput is requests per simulated minute of GPUTime.
	Throughput float64 `json:"throughput_per_min"`
	// MeasuredWall is the real elapsed time divided by TimeScale, and
	// MeasuredThroughput the requests per minute of it; these include
	// HTTP and scheduling overhead and vary with the host.
	MeasuredWall       time.Duration `json:"measured_wall"`
	MeasuredThroughput float64       `json:"measured_throughput_per_min"`
}

// ResidencyResult compares naive first-come-first-served calls with calls
// admitted by the Manager.
type ResidencyResult struct {
	GPUBytes int64  `json:"gpu_bytes"`
	Mode     string `json:"mode"` // the Manager's mode
	Naive    ResidencyRun
	Aware    ResidencyRun
	// LoadRatio is naive loads / aware loads after warm-up (0 when aware
	// made none); ThroughputRatio is aware / naive throughput.
	LoadRatio       float64 `json:"load_ratio"`
	ThroughputRatio float64 `json:"throughput_ratio"`
	// BoundCold and BoundWarm are the independent makespan bounds of the
	// workload (package makespan) from no model loaded (where naive
	// starts) and after the Manager's prewarm (where aware's measurement
	// starts): no scheduler can finish it sooner on this machine.
	BoundCold makespan.Result `json:"bound_cold"`
	BoundWarm makespan.Result `json:"bound_warm"`
}

// ResidencyResults are the benchmark at several GPU sizes.
type ResidencyResults []ResidencyResult

// RunResidencyGPUs runs the default workload at each GPU size.
func RunResidencyGPUs(ctx context.Context, gpuBytes ...int64) (ResidencyResults, error) {
	var out ResidencyResults
	for _, b := range gpuBytes {
		r, err := RunResidency(ctx, ResidencyConfig{GPUBytes: b})
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Render writes a heading and each GPU's table.
func (rs ResidencyResults) Render(w io.Writer) {
	fmt.Fprintln(w, "## VRAM residency (simulator; 20 runs of 1 plan + 4 steps, gemma3:12b planner + llama3.2:3b executor)")
	for _, r := range rs {
		fmt.Fprintln(w, r.String())
	}
}

// String renders the comparison as a small table.
func (r ResidencyResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "GPU %.1f GiB, mode %s\n", float64(r.GPUBytes)/(1<<30), r.Mode)
	fmt.Fprintf(&b, "%-16s %6s %8s %10s %12s %14s %12s\n", "strategy", "loads", "warmup", "gpu time", "req/sim-min", "measured wall", "req/sim-min")
	for _, run := range []ResidencyRun{r.Naive, r.Aware} {
		fmt.Fprintf(&b, "%-16s %6d %8d %10s %12.2f %14s %12.2f\n", run.Strategy, run.LoadsAfterWarmup, run.WarmupLoads,
			run.GPUTime.Round(100*time.Millisecond), run.Throughput, run.MeasuredWall.Round(100*time.Millisecond), run.MeasuredThroughput)
	}
	fmt.Fprintf(&b, "loads naive/aware %.1fx, throughput aware/naive %.2fx\n", r.LoadRatio, r.ThroughputRatio)
	if r.BoundCold.Makespan > 0 {
		fmt.Fprintf(&b, "independent bound: %s from cold (naive measured wall %.2fx of it), %s after prewarm (aware %.2fx of it)\n",
			r.BoundCold, float64(r.Naive.MeasuredWall)/float64(r.BoundCold.Makespan),
			r.BoundWarm, float64(r.Aware.MeasuredWall)/float64(r.BoundWarm.Makespan))
	}
	return b.String()
}

// residencyBound is the workload's makespan bound with the resident models
// loaded at the start: every request a planner call then its executor
// calls one after another, all submitted at once.
func residencyBound(cfg ResidencyConfig, resident []string) (makespan.Result, error) {
	res, err := scenarios.Machine(cfg.ParallelSlots, cfg.GPUBytes, cfg.LoadBytesPerSecond, resident...)
	if err != nil {
		return makespan.Result{}, err
	}
	var runs []makespan.Run
	for i := range cfg.Requests {
		r := makespan.Run{Name: fmt.Sprint("request ", i+1),
			Before: []makespan.Call{{Model: cfg.PlannerModel, PromptTokens: cfg.PlanPromptTokens, OutputTokens: cfg.PlanOutputTokens}}}
		for j := range cfg.StepsPerRequest {
			st := makespan.Step{ID: fmt.Sprint("s", j), Calls: []makespan.Call{{Model: cfg.ExecutorModel, PromptTokens: cfg.StepPromptTokens, OutputTokens: cfg.StepOutputTokens}}}
			if j > 0 {
				st.DependsOn = []string{fmt.Sprint("s", j-1)}
			}
			r.Steps = append(r.Steps, st)
		}
		runs = append(runs, r)
	}
	return makespan.Bound(runs, res)
}

// RunResidency runs the workload twice on fresh simulators, once with
// every call sent as it comes (naive) and once admitted by a Manager in
// the mode the GPU calls for, and reports loads and simulated time.
func RunResidency(ctx context.Context, cfg ResidencyConfig) (ResidencyResult, error) {
	cfg = cfg.withDefaults()
	res := ResidencyResult{GPUBytes: cfg.GPUBytes}
	naive, _, err := runResidency(ctx, cfg, false)
	if err != nil {
		return res, fmt.Errorf("naive run: %w", err)
	}
	aware, mode, err := runResidency(ctx, cfg, true)
	if err != nil {
		return res, fmt.Errorf("residency-aware run: %w", err)
	}
	res.Naive, res.Aware, res.Mode = naive, aware, mode
	if res.BoundCold, err = residencyBound(cfg, nil); err != nil {
		return res, err
	}
	var warm []string
	if mode == vram.ModeCoResident {
		warm = []string{cfg.PlannerModel, cfg.ExecutorModel}
	}
	if res.BoundWarm, err = residencyBound(cfg, warm); err != nil {
		return res, err
	}
	if aware.LoadsAfterWarmup > 0 {
		res.LoadRatio = float64(naive.LoadsAfterWarmup) / float64(aware.LoadsAfterWarmup)
	}
	if naive.Throughput > 0 {
		res.ThroughputRatio = aware.Throughput / naive.Throughput
	}
	return res, nil
}

// residencyScript answers with a fixed number of tokens per model, so every
// call's simulated duration is the same from run to run.
type residencyScript struct{ cfg ResidencyConfig }

func (s residencyScript) Respond(req *api.ChatRequest) (ollamasim.Reply, bool) {
	n := s.cfg.StepOutputTokens
	if llm.ModelKey(req.Model) == llm.ModelKey(s.cfg.PlannerModel) {
		n = s.cfg.PlanOutputTokens
	}
	return ollamasim.Reply{Content: strings.Repeat("word", n)}, true
}

func runResidency(ctx context.Context, cfg ResidencyConfig, aware bool) (ResidencyRun, string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := ResidencyRun{Strategy: "naive", Requests: cfg.Requests, Calls: cfg.Requests * (1 + cfg.StepsPerRequest)}
	if aware {
		run.Strategy = "residency-aware"
	}
	// One simulated clock for the simulator's keep_alive and the Manager's
	// fairness, so both see simulated time.
	realStart, simStart := time.Now(), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	simNow := func() time.Time {
		return simStart.Add(time.Duration(float64(time.Since(realStart)) / cfg.TimeScale))
	}
	sim := ollamasim.New(ollamasim.Config{
		VRAM:               cfg.GPUBytes,
		NumParallel:        cfg.ParallelSlots,
		LoadBytesPerSecond: cfg.LoadBytesPerSecond,
		Seed:               cfg.Seed,
		TimeScale:          cfg.TimeScale,
		Script:             residencyScript{cfg},
		Now:                simNow,
		Logger:             cfg.Logger,
	})
	base, err := sim.Start(ctx)
	if err != nil {
		return run, "", err
	}
	defer sim.Close()
	u, err := url.Parse(base)
	if err != nil {
		return run, "", err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency + 4}}
	defer hc.CloseIdleConnections()
	client := api.NewClient(u, hc)

	models := config.ModelsConfig{
		Planner: cfg.PlannerModel, Standard: cfg.ExecutorModel, Fast: cfg.ExecutorModel,
		KeepAlive: config.Duration(30 * time.Minute),
	}
	acquire := func(context.Context, string) (func(), error) { return func() {}, nil }
	keepAlive := func(string) time.Duration { return models.KeepAlive.D() }
	mode := ""
	if aware {
		mgr := vram.NewManager(vram.ManagerConfig{
			Models:        models,
			Uses:          (&config.Config{Models: models}).ModelUses(),
			VRAM:          config.VRAMConfig{Headroom: config.ByteSize(cfg.Headroom), Prewarm: true},
			Endpoints:     []vram.Endpoint{{Name: "sim", ParallelSlots: cfg.ParallelSlots, Running: client, Tags: client, Loader: vram.APILoader{Client: client}}},
			CapacityBytes: uint64(cfg.GPUBytes),
			Logger:        cfg.Logger,
			Now:           simNow,
			PollInterval:  250 * time.Millisecond, // real time: enough to see spills
		})
		mgr.Refresh(ctx)
		mgr.Prewarm(ctx)
		mode = mgr.Mode()
		mgrCtx, stopMgr := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { _ = mgr.Run(mgrCtx) })
		defer func() { stopMgr(); wg.Wait() }()
		acquire, keepAlive = mgr.Acquire, mgr.KeepAliveFor
	}

	warm := sim.Stats()
	for _, ms := range warm.Models {
		run.WarmupLoads += ms.Loads
	}
	measureStart := time.Now()

	// Each call's prompt is its own from the first token (a real request's
	// text differs), so no slot's prompt cache spares its prefill and the
	// workload's prefill is the same under every strategy.
	call := func(ctx context.Context, tag, model string, promptTokens, outputTokens int) error {
		release, err := acquire(ctx, model)
		if err != nil {
			return err
		}
		defer release()
		stream := false
		req := &api.ChatRequest{
			Model:     model,
			Messages:  []api.Message{{Role: "user", Content: (tag + strings.Repeat("tokn", promptTokens))[:4*promptTokens]}},
			Stream:    &stream,
			KeepAlive: &api.Duration{Duration: keepAlive(model)},
			Options:   map[string]any{"num_predict": outputTokens},
		}
		return client.Chat(ctx, req, func(api.ChatResponse) error { return nil })
	}
	sem := make(chan struct{}, cfg.Concurrency)
	errs := make(chan error, cfg.Requests)
	var wg sync.WaitGroup
	for i := 0; i < cfg.Requests; i++ {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			}
			defer func() { <-sem }()
			if err := call(ctx, fmt.Sprintf("r%d plan ", i), cfg.PlannerModel, cfg.PlanPromptTokens, cfg.PlanOutputTokens); err != nil {
				errs <- fmt.Errorf("request %d plan: %w", i, err)
				return
			}
			for s := 0; s < cfg.StepsPerRequest; s++ {
				if err := call(ctx, fmt.Sprintf("r%d s%d ", i, s), cfg.ExecutorModel, cfg.StepPromptTokens, cfg.StepOutputTokens); err != nil {
					errs <- fmt.Errorf("request %d step %d: %w", i, s, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if err := errors.Join(all...); err != nil {
		cancel()
		return run, mode, err
	}
	wall := time.Since(measureStart)

	st := sim.Stats()
	run.LoadsByModel = map[string]int64{}
	var warmTime time.Duration
	for name, ms := range st.Models {
		run.Loads += ms.Loads
		run.LoadsByModel[name] = ms.Loads
		run.Evictions += ms.Evictions
		run.LoadTime += ms.LoadTime
		run.BusyTime += ms.BusyTime
		warmTime += warm.Models[name].LoadTime + warm.Models[name].BusyTime
	}
	run.LoadsAfterWarmup = run.Loads - run.WarmupLoads
	run.GPUTime = run.LoadTime + run.BusyTime - warmTime
	run.MeasuredWall = time.Duration(float64(wall) / cfg.TimeScale)
	if run.GPUTime > 0 {
		run.Throughput = float64(cfg.Requests) / run.GPUTime.Minutes()
	}
	if run.MeasuredWall > 0 {
		run.MeasuredThroughput = float64(cfg.Requests) / run.MeasuredWall.Minutes()
	}
	return run, mode, nil
}
