package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
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

// FaultRates are how a planner model's faults persist: Recur is the chance
// a fault comes back on each repair reply whatever the feedback says,
// Ignore the chance a repair reply disregards the feedback (repeating the
// last reply or making another fault).
type FaultRates struct{ Recur, Ignore float64 }

func (r FaultRates) String() string { return fmt.Sprintf("%g:%g", r.Recur, r.Ignore) }

// DefaultFaultRates are the rows of `agentd bench --planner`.
var DefaultFaultRates = []FaultRates{{0, 0}, {0.3, 0.1}, {0.5, 0.1}, {0.5, 0.3}, {1, 0}}

// ParseFaultRates reads "recur:ignore,recur:ignore" (an ignore of 0 may be
// left out: "0.3").
func ParseFaultRates(s string) ([]FaultRates, error) {
	var out []FaultRates
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		recur, ignore, _ := strings.Cut(item, ":")
		var r FaultRates
		var err error
		if r.Recur, err = strconv.ParseFloat(recur, 64); err != nil || r.Recur < 0 || r.Recur > 1 {
			return nil, fmt.Errorf("%q: the recurrence rate must be a number from 0 to 1", item)
		}
		if ignore != "" {
			if r.Ignore, err = strconv.ParseFloat(ignore, 64); err != nil || r.Ignore < 0 || r.Ignore > 1 {
				return nil, fmt.Errorf("%q: the ignore rate must be a number from 0 to 1", item)
			}
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q: give at least one recur:ignore pair, like 0.3:0.1", s)
	}
	return out, nil
}

// PlannerOptions shape the planner fault benchmark.
type PlannerOptions struct {
	Requests int // planner-routed scenario requests, round robin; default 400
	// MaxCalls is the largest planner call budget of the curve (1 +
	// planner.repair_attempts); default 6.
	MaxCalls int
	Rates    []FaultRates // default DefaultFaultRates
	Seed     uint64       // default 42
	Log      *slog.Logger
}

// CurvePoint is one call budget's outcome.
type CurvePoint struct {
	MaxCalls int // 1 + planner.repair_attempts
	Requests int
	Valid    int // requests that ended with a valid plan
	Calls    int // planner calls made, over all requests
}

// Success is the share of requests that ended with a valid plan.
func (p CurvePoint) Success() float64 { return share(p.Valid, p.Requests) }

// share is n of d, 0 when d is.
func share(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// MeanCalls is the planner calls per request.
func (p CurvePoint) MeanCalls() float64 {
	if p.Requests == 0 {
		return 0
	}
	return float64(p.Calls) / float64(p.Requests)
}

// CurveRow is the success curve of one FaultRates.
type CurveRow struct {
	Rates  FaultRates
	Points []CurvePoint // budgets 1..MaxCalls
	// Stats are the faulty model's counts at the largest budget; FaultFree
	// the requests whose first reply had no fault (the same at every
	// budget: each request's replies come from its own seeded stream).
	Stats     scenarios.FaultStats
	FaultFree int
}

// PlannerCurve plans reqs once per call budget 1..maxCalls through the real
// planner (planner.repair_attempts = budget - 1) and a FaultyPlanner over
// inner with the given rates and seed.
func PlannerCurve(ctx context.Context, inner localplanner.ChatModel, cat localplanner.Catalog, pcfg config.PlannerConfig, models config.ModelsConfig,
	reqs []PlanRequest, maxCalls int, rates FaultRates, seed uint64, log *slog.Logger) (CurveRow, error) {
	row := CurveRow{Rates: rates}
	for budget := 1; budget <= maxCalls; budget++ {
		fp := scenarios.NewFaultyPlanner(inner, seed)
		fp.Recur, fp.Ignore = rates.Recur, rates.Ignore
		c := pcfg
		c.RepairAttempts = budget - 1
		rep, err := RunPlans(ctx, localplanner.New(fp, cat, c, models, log), reqs, budget)
		if err != nil {
			return row, err
		}
		row.Points = append(row.Points, CurvePoint{MaxCalls: budget, Requests: rep.Requests, Valid: rep.Valid, Calls: rep.PlannerCalls})
		row.Stats = fp.Stats()
		first := 0
		for _, n := range row.Stats.First {
			first += n
		}
		row.FaultFree = rep.Requests - first
	}
	return row, nil
}

// PlannerResult is the planner benchmark's figure.
type PlannerResult struct {
	Requests      int
	Seed          uint64
	DefaultBudget int // 1 + the configured planner.repair_attempts
	Rows          []CurveRow
	// TemplateCalls are the planner-model calls of the template route
	// (there must be none); TemplateAux its router-model calls.
	TemplateCalls, TemplateAux int
}

// RunPlanner plans the suite's planner-routed requests over and over with
// a planner model that makes faults which may persist through repair, at
// call budgets 1..MaxCalls, and counts valid plans and planner calls.
func RunPlanner(ctx context.Context, base *config.Config, o PlannerOptions) (*PlannerResult, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Requests <= 0 {
		o.Requests = 400
	}
	if o.MaxCalls <= 0 {
		o.MaxCalls = 6
	}
	if len(o.Rates) == 0 {
		o.Rates = DefaultFaultRates
	}
	if o.Seed == 0 {
		o.Seed = 42
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
	cat := scenarios.Catalog{R: reg}
	res := &PlannerResult{Requests: o.Requests, Seed: o.Seed, DefaultBudget: 1 + cfg.Planner.RepairAttempts}
	// The scripted model answers a request the same way every time; asking
	// it once per prompt keeps the many budgets x rates cheap.
	inner := &memoModel{inner: scenarios.PlannerModel{C: client}}
	list := plannerRequests(o.Requests)
	for _, rates := range o.Rates {
		row, err := PlannerCurve(ctx, inner, cat, cfg.Planner, cfg.Models, list, o.MaxCalls, rates, o.Seed, log)
		if err != nil {
			return nil, err
		}
		res.Rows = append(res.Rows, row)
	}

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
	res.TemplateCalls, res.TemplateAux = counting.plannerCalls(cfg.Models.Planner), tres.AuxCalls
	return res, nil
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

// Render writes the curve as a markdown table, then what the faulty model
// did in each row.
func (r *PlannerResult) Render(w io.Writer) {
	fmt.Fprintln(w, "## Planner under injected faults")
	fmt.Fprintf(w, "%d requests (the planner-routed scenarios in turn), seed %d; first replies faulty at invalid JSON 10%%, unknown tool 10%%, bad reference 10%%, truncation 5%%.\n", r.Requests, r.Seed)
	fmt.Fprintln(w, "On each repair reply a fault recurs with p_recur whatever the feedback says; otherwise the model ignores the feedback with p_ignore (half the time repeating its last reply, half the time making another fault); otherwise it fixes the fault if the feedback names it.")
	fmt.Fprintf(w, "Cells: requests that ended with a valid plan / mean planner calls per request, at each budget of planner calls (1 + planner.repair_attempts; this config: %d).\n\n", r.DefaultBudget)
	if len(r.Rows) == 0 {
		return
	}
	fmt.Fprint(w, "| p_recur | p_ignore | fault-free first replies |")
	for _, p := range r.Rows[0].Points {
		fmt.Fprintf(w, " %d call%s |", p.MaxCalls, map[bool]string{true: "", false: "s"}[p.MaxCalls == 1])
	}
	fmt.Fprint(w, "\n|---|---|---|")
	for range r.Rows[0].Points {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	for _, row := range r.Rows {
		fmt.Fprintf(w, "| %g | %g | %.1f%% |", row.Rates.Recur, row.Rates.Ignore, 100*share(row.FaultFree, r.Requests))
		for _, p := range row.Points {
			fmt.Fprintf(w, " %.1f%% / %.2f |", 100*p.Success(), p.MeanCalls())
		}
		fmt.Fprintln(w)
	}
	last := len(r.Rows[0].Points)
	fmt.Fprintf(w, "\nWhat the faulty model did at %d calls:\n", last)
	for _, row := range r.Rows {
		st := row.Stats
		fmt.Fprintf(w, "- p_recur %g, p_ignore %g: first-reply faults %s=%d %s=%d %s=%d %s=%d; on repair: fixed %d, recurred %d, ignored (repeated %d, another fault %d), not named by the feedback %d; %d model calls\n",
			row.Rates.Recur, row.Rates.Ignore,
			scenarios.FaultInvalidJSON, st.First[scenarios.FaultInvalidJSON], scenarios.FaultUnknownTool, st.First[scenarios.FaultUnknownTool],
			scenarios.FaultBadRef, st.First[scenarios.FaultBadRef], scenarios.FaultTruncated, st.First[scenarios.FaultTruncated],
			st.Fixed, st.Recurred, st.Repeated, st.Switched, st.Unfixed, st.Calls)
	}
	fmt.Fprintf(w, "template route: %d planner calls (plus %d router-model call for its parameters)\n\n", r.TemplateCalls, r.TemplateAux)
}

// memoModel answers each distinct prompt once from the model behind it
// and then from memory: for a scripted model (the simulator at
// temperature 0) that is the same answer, without the HTTP round trip.
type memoModel struct {
	inner localplanner.ChatModel
	mu    sync.Mutex
	seen  map[string]localplanner.ChatResponse
}

func (m *memoModel) Chat(ctx context.Context, req localplanner.ChatRequest) (localplanner.ChatResponse, error) {
	var key strings.Builder
	fmt.Fprintf(&key, "%s|%s|%d|%d", req.Model, req.Purpose, req.NumPredict, len(req.Format))
	for _, msg := range req.Messages {
		key.WriteString("|" + msg.Role + ":" + msg.Content)
	}
	m.mu.Lock()
	if r, ok := m.seen[key.String()]; ok {
		m.mu.Unlock()
		return r, nil
	}
	m.mu.Unlock()
	r, err := m.inner.Chat(ctx, req)
	if err != nil {
		return r, err
	}
	m.mu.Lock()
	if m.seen == nil {
		m.seen = map[string]localplanner.ChatResponse{}
	}
	m.seen[key.String()] = r
	m.mu.Unlock()
	return r, nil
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
