package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/agentd/agentd/internal/plan"
	agentrun "github.com/agentd/agentd/internal/run"
	"github.com/agentd/agentd/internal/scenarios"
)

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

// OverheadResult is what the executor added around an instant model and
// instant tools: per step, per dependency, per run, and concurrent runs.
type OverheadResult struct {
	Probes          int
	StepTimes, Gaps []time.Duration // per step started→finished; per dependency finished→dependent started
	Walls           []time.Duration // per probe run created→finished
	Runs            int             // concurrent runs submitted at once
	MaxConcurrent   int             // executor.max_concurrent_runs during them
	Statuses        map[agentrun.Status]int
	Elapsed         time.Duration
}

// RunOverhead measures what the executor adds per step when the model
// and the tools take no time, then pushes concurrent runs through. When
// some concurrent run did not finish done it returns the result and an
// error saying so.
func RunOverhead(ctx context.Context, base *config.Config, runs int, log *slog.Logger) (*OverheadResult, error) {
	script := ollamasim.NewRules(
		ollamasim.Rule{Contains: "overhead probe", Format: ollamasim.Present, Replies: []ollamasim.Reply{{Content: scenarios.PlanJSON(overheadPlan())}}},
		ollamasim.Rule{Contains: "Request: overhead probe", Replies: []ollamasim.Reply{{Content: "Done [a1] [b1]."}}},
	)
	// TimeScale 0: the simulator answers at once.
	sim := ollamasim.New(ollamasim.Config{Seed: 1, Script: script, Logger: log, NumParallel: 8, MaxQueue: 4096})
	u, err := sim.Start(ctx)
	if err != nil {
		return nil, err
	}
	defer sim.Close()
	env := &benchEnv{base: base, url: u, scale: 1, log: log}
	dir, err := os.MkdirTemp("", "agentd-bench-overhead-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg := env.config(dir)
	cfg.Workflows = nil // no router classification call in the probe
	cfg.Executor.MaxConcurrentRuns = 64
	cfg.Executor.QueueSize = max(cfg.Executor.QueueSize, 2*runs)
	cfg.Ollama.Endpoints[0].ParallelSlots, cfg.Ollama.Endpoints[0].MaxQueue = 8, 4096
	h, err := startBenchDaemon(ctx, cfg, scenarios.Options{}, log)
	if err != nil {
		return nil, err
	}
	defer h.stop()

	// Sequential probes: per-step executor time and dispatch gap.
	const probes = 40
	var stepTimes, gaps, walls []time.Duration
	for i := range probes {
		rec, err := h.runOne(ctx, exec.SubmitRequest{Request: fmt.Sprintf("overhead probe %d", i), Source: "bench"})
		if err != nil {
			return nil, err
		}
		if rec.run.Status != agentrun.Done {
			return nil, fmt.Errorf("probe run ended %s: %s", rec.run.Status, rec.run.Error)
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
		return nil, fmt.Errorf("submit: %w", submitErr)
	}
	statuses := map[agentrun.Status]int{}
	for _, id := range ids {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		r, err := h.d.Engine.Wait(wctx, id)
		cancel()
		if err != nil {
			return nil, err
		}
		statuses[r.Status]++
	}
	elapsed := time.Since(start)

	res := &OverheadResult{Probes: probes, StepTimes: stepTimes, Gaps: gaps, Walls: walls, Runs: runs,
		MaxConcurrent: cfg.Executor.MaxConcurrentRuns, Statuses: statuses, Elapsed: elapsed}
	if statuses[agentrun.Done] != runs {
		return res, fmt.Errorf("%d of %d concurrent runs did not finish done: %s", runs-statuses[agentrun.Done], runs, fmtStatuses(statuses))
	}
	return res, nil
}

// Render writes the figures.
func (r *OverheadResult) Render(w io.Writer) {
	fmt.Fprintln(w, "## Orchestration overhead (instant simulated model, instant calc tool)")
	fmt.Fprintf(w, "probe plan: 8 tool steps (4 independent, 4 depending on them), 1 planner call, 1 summarizer call; %d runs one at a time\n", r.Probes)
	fmt.Fprintf(w, "per step, started→finished (bind, approval check, tool call records, events): median %s, p90 %s\n", median(r.StepTimes), pct(r.StepTimes, 0.9))
	fmt.Fprintf(w, "per dependency, finished→dependent started (dispatch gap): median %s, p90 %s\n", median(r.Gaps), pct(r.Gaps, 0.9))
	fmt.Fprintf(w, "per run, created→finished (8 steps + 2 model calls + SQLite): median %s\n", median(r.Walls))
	fmt.Fprintf(w, "%d runs submitted at once (max_concurrent_runs %d): %s in %s (%.0f runs/s)\n\n", r.Runs, r.MaxConcurrent,
		fmtStatuses(r.Statuses), r.Elapsed.Round(time.Millisecond), float64(r.Runs)/r.Elapsed.Seconds())
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
