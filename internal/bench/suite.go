package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentd/agentd/internal/bench/makespan"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/llm"
	"github.com/agentd/agentd/internal/localplanner"
	agentrun "github.com/agentd/agentd/internal/run"
	"github.com/agentd/agentd/internal/scenarios"
	"github.com/agentd/agentd/internal/tools"
)

// Modes of the scenario suite.
const (
	modeAgentd     = "agentd"
	modeLearned    = "agentd-learned"
	modeSequential = "sequential"
	modeReAct      = "react"
)

// SuiteOptions shape the scenario suite: agentd vs the sequential loop vs
// ReAct on the same backend.
type SuiteOptions struct {
	OllamaURL string  // empty: the simulator
	TimeScale float64 // simulator only
	Scenarios []scenarios.Scenario
	Log       *slog.Logger
	// Learned also measures agentd the second time it is asked each
	// request (mode agentd-learned): the first run, not measured, taught
	// the plan cache.
	Learned bool
}

// tokenCount is one model's tokens in a run.
type tokenCount struct{ Prompt, Output int }

// modeRow is one scenario run in one mode.
type modeRow struct {
	Scenario, Mode string
	Status         string
	// Wall is the run's elapsed time, simulated (real / TimeScale) on the
	// simulator; Bound the independent lower bound on the run's wall
	// (agentd on the simulator only; see independentBound).
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

// SuiteResult is the whole comparison.
type SuiteResult struct {
	Backend   string
	TimeScale float64
	PriceName string
	Rows      []modeRow
	Parallel  map[string]bool // scenarios with parallel steps
}

// RunSuite runs every scenario in the three modes, agentd first, on the
// simulator (with its latency model) or the real Ollama at o.OllamaURL.
func RunSuite(ctx context.Context, base *config.Config, o SuiteOptions) (*SuiteResult, error) {
	env, err := newBenchEnv(ctx, base, o.OllamaURL, o.TimeScale, scenarios.Script(), o.Log)
	if err != nil {
		return nil, err
	}
	defer env.close()
	res := &SuiteResult{Backend: env.backend, TimeScale: env.scale, PriceName: base.Fallback.Model, Parallel: map[string]bool{}}
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
	var learnedRows []modeRow
	if o.Learned {
		if learnedRows, err = env.daemonMode(ctx, modeLearned, o.Scenarios); err != nil {
			return nil, err
		}
	}
	for i := range o.Scenarios {
		rows := []modeRow{agentRows[i], seqRows[i], reactRows[i]}
		if learnedRows != nil {
			rows = append(rows[:1], append([]modeRow{learnedRows[i]}, rows[1:]...)...)
		}
		for _, r := range rows {
			r.CostUSD = cost(r.Tokens)
			res.Rows = append(res.Rows, r)
		}
	}
	return res, nil
}

// benchEnv is a model backend (the simulator or a real Ollama) with the
// config every mode starts from.
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
		e.coldPrompts()
		req := exec.SubmitRequest{Request: sc.Request, Source: "bench"}
		if mode == modeReAct {
			req.Mode = exec.ModeScratchpad
		}
		if mode == modeLearned {
			// The first time teaches the plan cache; the second is measured.
			if _, err := h.runOne(ctx, req); err != nil {
				return nil, fmt.Errorf("%s: teaching run: %w", sc.Name, err)
			}
			e.coldPrompts()
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
		if mode == modeAgentd && e.sim != nil {
			if row.Bound, row.BoundPath, err = independentBound(sc, cfg.Models, 4); err != nil {
				return nil, err
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// independentBound is the least time the scenario's work can take on the
// simulator's machine (every model prewarmed, slots parallel slots each),
// computed from its plan and script before and apart from the run: see
// package makespan. Approval waits are not work: the bench approves at once.
func independentBound(sc scenarios.Scenario, models config.ModelsConfig, slots int) (time.Duration, []string, error) {
	w, err := sc.Work(models)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: bound: %w", sc.Name, err)
	}
	res, err := scenarios.Machine(slots, 0, 0, models.Planner, models.Fast, models.Standard, models.Summarizer, models.Router)
	if err != nil {
		return 0, nil, err
	}
	b, err := makespan.Bound([]makespan.Run{w}, res)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: bound: %w", sc.Name, err)
	}
	return b.Makespan, []string{b.Binding}, nil
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
		e.coldPrompts()
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
func (r *SuiteResult) Render(w io.Writer) {
	fmt.Fprintf(w, "## Scenario suite: agentd vs sequential vs ReAct\nbackend: %s\ncost: every token priced at the fallback model %s\n\n", r.Backend, r.PriceName)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tmode\tstatus\twall\tbound\tmodel calls\ttokens in/out\tcost USD\tstep acc\tfinal acc\t")
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
			fmt.Fprintf(w, "- %s: agentd wall %s vs independent bound %s (%+.1f%%; target within 10%%: %s) set by %s\n", sc, fmtDur(a.Wall), fmtDur(a.Bound),
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
