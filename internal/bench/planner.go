package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/llm"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/agentd/agentd/internal/scenarios"
	"github.com/agentd/agentd/internal/tools"
)

// The planner fault benchmark (`agentd bench --planner`): the real local
// planner, on the scenario requests, through a model that makes faults.

// PlannerOptions shape the planner fault benchmark.
type PlannerOptions struct {
	Requests int // planner-routed scenario requests, round robin
	Log      *slog.Logger
}

// PlannerResult is the planner benchmark's figure.
type PlannerResult struct {
	RepairAttempts int
	Report         PlanReport
	Injected       map[string]int
	ModelCalls     int
	// TemplateCalls are the planner-model calls of the template route
	// (there must be none); TemplateAux its router-model calls.
	TemplateCalls, TemplateAux int
}

// RunPlanner plans the suite's requests over and over with a planner
// model that makes faults at fixed rates, and counts planner calls.
func RunPlanner(ctx context.Context, base *config.Config, o PlannerOptions) (*PlannerResult, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Instant model: this benchmark counts calls and validity, not time.
	sim := ollamasim.New(ollamasim.Config{Seed: 1, Script: scenarios.Script(), Logger: log, NumParallel: 4})
	u, err := sim.Start(ctx)
	if err != nil {
		return nil, err
	}
	defer sim.Close()
	env := &benchEnv{base: base, url: u, scale: 1, log: log}
	cfg := env.config(os.TempDir())
	client, err := llm.New(cfg.Ollama, cfg.Models, log)
	if err != nil {
		return nil, err
	}
	reg, err := scenarios.NewRegistry(cfg.Tools, tools.Deps{Logger: log}, scenarios.Tools(scenarios.Options{}))
	if err != nil {
		return nil, err
	}
	defer reg.Close()
	faulty := scenarios.NewFaultyPlanner(scenarios.PlannerModel{C: client}, 42)
	cat := scenarios.Catalog{R: reg}
	cfg.Planner.RepairAttempts = max(cfg.Planner.RepairAttempts, 2)
	p := localplanner.New(faulty, cat, cfg.Planner, cfg.Models, log)
	list := plannerRequests(o.Requests)
	rep, err := RunPlans(ctx, p, list, 3)
	if err != nil {
		return nil, err
	}
	injected, calls := faulty.Injected()

	// The template route: count planner-model calls (there must be none).
	counting := &countingModel{inner: scenarios.PlannerModel{C: client}}
	tpl, err := localplanner.NewTemplates(cfg.Workflows, counting, cat, cfg.Planner, cfg.Models, log)
	if err != nil {
		return nil, err
	}
	tsc, _ := scenarios.Find(scenarios.NameTemplate)
	tres, err := tpl.Plan(ctx, localplanner.Request{Text: tsc.Request, RunID: "bench-template"}, tsc.Workflow)
	if err != nil {
		return nil, err
	}
	return &PlannerResult{RepairAttempts: cfg.Planner.RepairAttempts, Report: rep, Injected: injected, ModelCalls: calls,
		TemplateCalls: counting.plannerCalls(cfg.Models.Planner), TemplateAux: tres.AuxCalls}, nil
}

// plannerRequests are n requests going round the planner-routed
// scenarios.
func plannerRequests(n int) []PlanRequest {
	var planned []scenarios.Scenario
	for _, sc := range scenarios.All() {
		if sc.Plan != nil {
			planned = append(planned, sc)
		}
	}
	list := make([]PlanRequest, 0, n)
	for i := range n {
		sc := planned[i%len(planned)]
		list = append(list, PlanRequest{Name: sc.Name, Request: sc.Request})
	}
	return list
}

// Render writes the figure.
func (r *PlannerResult) Render(w io.Writer) {
	rep, injected := r.Report, r.Injected
	fmt.Fprintln(w, "## Planner under injected faults")
	fmt.Fprintf(w, "faults on first replies: invalid JSON 10%%, unknown tool 10%%, bad reference 10%%, truncation 5%%; repair_attempts %d (3 planner calls at most)\n", r.RepairAttempts)
	fmt.Fprintf(w, "%s\n", rep)
	fmt.Fprintf(w, "faults injected: %s=%d %s=%d %s=%d %s=%d (model calls seen %d)\n",
		scenarios.FaultInvalidJSON, injected[scenarios.FaultInvalidJSON], scenarios.FaultUnknownTool, injected[scenarios.FaultUnknownTool],
		scenarios.FaultBadRef, injected[scenarios.FaultBadRef], scenarios.FaultTruncated, injected[scenarios.FaultTruncated], r.ModelCalls)
	fmt.Fprintf(w, "valid within 3 calls: %.2f%%; planner calls per request: local %.3f (1 + %.3f repairs), template %d (plus %d router-model call for its parameters)\n",
		100*rep.ValidRate(), float64(rep.PlannerCalls)/float64(max(rep.Requests, 1)), float64(rep.PlannerCalls-rep.Requests)/float64(max(rep.Requests, 1)),
		r.TemplateCalls, r.TemplateAux)
	for _, f := range rep.Failures {
		fmt.Fprintf(w, "no valid plan: %s: %s\n", f.Scenario, oneLineText(strings.Join(f.Errors, " | "), 400))
	}
	fmt.Fprintln(w)
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
