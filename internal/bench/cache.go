package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/localplanner"
	agentrun "github.com/agentd/agentd/internal/run"
	"github.com/agentd/agentd/internal/scenarios"
)

// The plan cache benchmark (issue 14): the same workload of everyday
// requests run twice on the simulator, each time on a fresh daemon with a
// fresh state directory: once with the plan cache off, once with it on and
// empty at the start. Requests go one at a time, in the same order, on both
// sides. A second part runs hard requests (which the router escalates) with
// the remote fallback on, remote-only against cache on, and compares what
// the remote planner cost.

// routeCache is the route of a run planned from a learned template.
const routeCache = "cache"

// CacheOptions shape the plan cache benchmark.
type CacheOptions struct {
	TimeScale float64
	// Requests is the size of the ordinary workload (default 200).
	Requests int
	// RemoteRequests is the size of the hard workload run with the remote
	// fallback on; 0 leaves that part out.
	RemoteRequests int
	// Seed draws the workloads (default 1).
	Seed uint64
	Log  *slog.Logger
}

// cacheRow is one request's run on one side.
type cacheRow struct {
	RunID      string
	Kind, Text string
	Status     string
	Route      string
	// Template is the learned template that planned the run ("" when none
	// did), from the run's meta.
	Template string
	// Wall is the run's time from submit to its end, simulated.
	Wall time.Duration
	// PlannerCalls are the calls that plan (plan, plan repair, replan),
	// local or remote; RemoteCalls those that went to the remote planner
	// (counted in the egress ledger, where every remote call is).
	PlannerCalls, RemoteCalls, Calls int
	PromptTokens, OutputTokens       int
	Purposes                         map[string]int
	Score                            scenarios.WorkloadScore
	Err                              string
}

// served reports whether a learned template planned the run.
func (r cacheRow) served() bool { return r.Route == routeCache }

// wrongTemplate reports a run a learned template planned that did not end
// with the right steps and a right answer: the one outcome a cache must
// never produce (a mismatch must go to the planner instead).
func (r cacheRow) wrongTemplate() bool { return r.served() && !(r.Score.PlanOK && r.Score.AnswerOK) }

// cacheSide is one side of a comparison.
type cacheSide struct {
	Name string
	Rows []cacheRow
	// RemoteUSD is what the remote planner was paid (the budget's ledger);
	// RemoteRequests what the fake remote received.
	RemoteUSD      float64
	RemoteRequests int
}

// sideTotals are a side's figures.
type sideTotals struct {
	runs, done, plannerCalls, remoteCalls, calls int
	prompt, output                               int
	median, p90                                  time.Duration
	stepsOK, stepsTotal, answersOK               int
	served, wrong, remoteRoute                   int
	templates                                    int
	purposes                                     map[string]int
}

func (s cacheSide) totals() sideTotals {
	t := sideTotals{runs: len(s.Rows), purposes: map[string]int{}}
	var walls []time.Duration
	templates := map[string]bool{}
	for _, r := range s.Rows {
		if r.Status == string(agentrun.Done) {
			t.done++
		}
		t.plannerCalls += r.PlannerCalls
		t.remoteCalls += r.RemoteCalls
		t.calls += r.Calls
		t.prompt += r.PromptTokens
		t.output += r.OutputTokens
		walls = append(walls, r.Wall)
		t.stepsOK += r.Score.StepsOK
		t.stepsTotal += r.Score.StepsTotal
		if r.Score.AnswerOK {
			t.answersOK++
		}
		if r.served() {
			t.served++
			templates[r.Template] = true
		}
		if r.wrongTemplate() {
			t.wrong++
		}
		if r.Route == "remote" {
			t.remoteRoute++
		}
		for p, n := range r.Purposes {
			t.purposes[p] += n
		}
	}
	t.templates = len(templates)
	t.median, t.p90 = median(walls), pct(walls, 0.9)
	return t
}

func (t sideTotals) stepAccuracy() float64  { return ratioOf(t.stepsOK, t.stepsTotal) }
func (t sideTotals) finalAccuracy() float64 { return ratioOf(t.answersOK, t.runs) }

func ratioOf(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// CacheResult is the whole plan cache benchmark.
type CacheResult struct {
	Backend             string
	Seed                uint64
	Kinds, Phrasings    int
	Off, On             cacheSide
	HardKinds           int
	RemoteOff, RemoteOn *cacheSide
	PriceName           string
}

// RunCache runs the plan cache benchmark on the simulator.
func RunCache(ctx context.Context, base *config.Config, o CacheOptions) (*CacheResult, error) {
	if o.Requests <= 0 {
		o.Requests = 200
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	env, err := newBenchEnv(ctx, base, "", o.TimeScale, scenarios.WorkloadScript(), o.Log)
	if err != nil {
		return nil, err
	}
	defer env.close()
	if err := env.warm(ctx, base.Models); err != nil {
		return nil, err
	}
	res := &CacheResult{Backend: env.backend, Seed: o.Seed, Kinds: len(scenarios.WorkloadKinds()),
		Phrasings: scenarios.WorkloadPhrasings(false), PriceName: base.Fallback.Model}
	reqs := scenarios.Workload(o.Requests, o.Seed)
	if res.Off, err = env.cacheSide(ctx, "cache off", false, reqs, nil); err != nil {
		return nil, err
	}
	if res.On, err = env.cacheSide(ctx, "cache on", true, reqs, nil); err != nil {
		return nil, err
	}
	if o.RemoteRequests > 0 {
		hard := scenarios.HardWorkload(o.RemoteRequests, o.Seed)
		kinds := map[string]bool{}
		for _, r := range hard {
			kinds[r.Kind] = true
		}
		res.HardKinds = len(kinds)
		if res.RemoteOff, res.RemoteOn, err = env.cacheRemote(ctx, hard); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// cacheRemote runs the hard workload with the remote fallback on, against
// a fake remote on 127.0.0.1: first with the cache off (every request
// escalates and is planned remotely: remote-only planning), then with the
// cache on and empty.
func (e *benchEnv) cacheRemote(ctx context.Context, reqs []scenarios.WorkloadRequest) (off, on *cacheSide, err error) {
	var sides [2]*cacheSide
	for i, cacheOn := range []bool{false, true} {
		remote := &fakeRemote{planFor: scenarios.WorkloadPlanIn}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		srv := &http.Server{Handler: remote}
		go func() { _ = srv.Serve(ln) }()
		name := "remote-only (cache off)"
		if cacheOn {
			name = "cache on"
		}
		side, err := e.cacheSide(ctx, name, cacheOn, reqs, func(cfg *config.Config) { useFakeRemote(cfg, ln.Addr().String()) })
		_ = srv.Close()
		if err != nil {
			return nil, nil, err
		}
		remote.mu.Lock()
		side.RemoteRequests = remote.requests
		remote.mu.Unlock()
		sides[i] = &side
	}
	return sides[0], sides[1], nil
}

// cacheSide runs the workload on a fresh daemon with its own state
// directory; tune, when set, adjusts the config (the remote fallback).
func (e *benchEnv) cacheSide(ctx context.Context, name string, cacheOn bool, reqs []scenarios.WorkloadRequest, tune func(*config.Config)) (cacheSide, error) {
	side := cacheSide{Name: name}
	dir, err := os.MkdirTemp("", "agentd-bench-cache-")
	if err != nil {
		return side, err
	}
	defer os.RemoveAll(dir)
	cfg := e.config(dir)
	// No scenario workflows: they share words with the workload ("stock",
	// "warehouse") and would add a router classification call to every run.
	cfg.Workflows = slices.Clone(e.base.Workflows)
	cfg.Planner.Cache.Enabled = cacheOn
	cfg.Planner.Cache.Use = "auto" // a cold cache that uses what it learns at once
	if tune != nil {
		tune(cfg)
	}
	h, err := startBenchDaemonTools(ctx, cfg, scenarios.WorkloadRegistry(scenarios.Options{TimeScale: e.scale}), e.log)
	if err != nil {
		return side, err
	}
	defer h.stop()
	// Each side starts with the simulator's prompt caches empty; within a
	// side they work as on a real server.
	e.coldPrompts()
	for _, req := range reqs {
		exp, err := req.Expect()
		if err != nil {
			return side, err
		}
		rec, err := h.runOne(ctx, exec.SubmitRequest{Request: req.Text, Source: "bench"})
		if err != nil {
			if ctx.Err() != nil {
				return side, ctx.Err()
			}
			side.Rows = append(side.Rows, cacheRow{Kind: req.Kind, Text: req.Text, Status: "error", Err: err.Error(),
				Score: exp.Score(nil, "", false)})
			continue
		}
		side.Rows = append(side.Rows, scoreCacheRun(req, exp, rec, e.simulated))
	}
	if cfg.Fallback.Enabled {
		if err := countRemoteCalls(ctx, h, side.Rows); err != nil {
			return side, err
		}
		day, month := h.d.Gate.Budget().Windows(h.d.Store.Now())
		_, d, _, err := h.d.Store.BudgetWindows(ctx, "", day, month)
		if err != nil {
			return side, err
		}
		side.RemoteUSD = d.SpentUSD
	}
	return side, nil
}

// countRemoteCalls adds each run's remote planner calls, from the egress
// ledger, to its row.
func countRemoteCalls(ctx context.Context, h *benchDaemon, rows []cacheRow) error {
	per := map[string]int{}
	err := h.d.Store.EachEgress(ctx, time.Time{}, func(e db.EgressRecord) error {
		per[e.RunID]++
		return nil
	})
	if err != nil {
		return err
	}
	for i := range rows {
		n := per[rows[i].RunID]
		rows[i].RemoteCalls += n
		rows[i].PlannerCalls += n
	}
	return nil
}

// scoreCacheRun turns a finished run into its row: route and template,
// planner and model calls, tokens, simulated time, and the score against
// what a correct run reaches.
func scoreCacheRun(req scenarios.WorkloadRequest, exp scenarios.WorkloadExpect, rec *runRecord, simulated func(time.Duration) time.Duration) cacheRow {
	row := cacheRow{RunID: rec.run.ID, Kind: req.Kind, Text: req.Text, Status: string(rec.run.Status), Route: rec.run.Route, Err: rec.run.Error,
		Wall: simulated(rec.wall), Purposes: map[string]int{}}
	var meta struct {
		Template *struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"template"`
	}
	if len(rec.run.Meta) > 0 && json.Unmarshal(rec.run.Meta, &meta) == nil && meta.Template != nil {
		row.Template = meta.Template.ID
		if row.Template == "" {
			row.Template = meta.Template.Name
		}
	}
	for _, c := range rec.calls {
		row.Calls++
		row.Purposes[c.Purpose]++
		row.PromptTokens += c.PromptTokens
		row.OutputTokens += c.OutputTokens
		switch c.Purpose {
		case localplanner.PurposePlan, localplanner.PurposeRepair, localplanner.PurposeReplan:
			// Remote calls are counted from the egress ledger.
			if c.Location != "remote" {
				row.PlannerCalls++
			}
		}
	}
	steps := make([]scenarios.RunStep, 0, len(rec.steps))
	for _, st := range rec.steps {
		steps = append(steps, scenarios.RunStep{ID: st.StepID, Tool: st.Tool, Done: st.Status == agentrun.StepDone,
			Args: st.Args, Output: st.Output})
	}
	row.Score = exp.Score(steps, rec.run.Answer, rec.run.Status == agentrun.Done)
	return row
}

// --- rendering -------------------------------------------------------------

func fmtPct(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) }

// Render writes both parts of the benchmark and their targets.
func (r *CacheResult) Render(w io.Writer) {
	off, on := r.Off.totals(), r.On.totals()
	fmt.Fprintf(w, "## Plan cache: cache off vs cache on, cold (issue 14)\nbackend: %s\n", r.Backend)
	fmt.Fprintf(w, "workload: %d requests of %d types in %d wordings (look-alike pairs among them), seed %d, submitted one at a time in the same order on both sides; "+
		"each side on a fresh daemon and state directory, the cache empty at the start\n\n", off.runs, r.Kinds, r.Phrasings, r.Seed)
	renderSides(w, []cacheSide{r.Off, r.On})
	r.renderKinds(w)
	renderWrong(w, r.On)

	fmt.Fprintln(w, "\nTargets:")
	red := 1 - ratioOf(on.plannerCalls, off.plannerCalls)
	fmt.Fprintf(w, "- planner calls down ≥50%%: %d → %d (%s fewer): %s\n", off.plannerCalls, on.plannerCalls, fmtPct(red), metOrNot(off.plannerCalls > 0 && red >= 0.5))
	lat := 0.0
	if off.median > 0 {
		lat = 1 - float64(on.median)/float64(off.median)
	}
	fmt.Fprintf(w, "- median latency down ≥27%%: %s → %s (%s lower; p90 %s → %s): %s\n", fmtDur(off.median), fmtDur(on.median), fmtPct(lat),
		fmtDur(off.p90), fmtDur(on.p90), metOrNot(off.median > 0 && lat >= 0.27))
	accOK := on.stepAccuracy() >= 0.97*off.stepAccuracy() && on.finalAccuracy() >= 0.97*off.finalAccuracy() && off.runs > 0
	fmt.Fprintf(w, "- accuracy ≥97%% of cache-off: step %s vs %s, final %s vs %s: %s\n", fmtPct(on.stepAccuracy()), fmtPct(off.stepAccuracy()),
		fmtPct(on.finalAccuracy()), fmtPct(off.finalAccuracy()), metOrNot(accOK))
	fmt.Fprintf(w, "- wrong-template answers 0: %d of %d runs served from a learned template: %s\n", on.wrong, on.served, metOrNot(on.wrong == 0))
	if on.served == 0 {
		fmt.Fprintln(w, "  (no run was served from a learned template: the cache planned nothing, so cache on ran like cache off)")
	}
	fmt.Fprintln(w)
	if r.RemoteOff != nil && r.RemoteOn != nil {
		r.renderRemote(w)
	}
}

// renderSides writes the side-by-side table.
func renderSides(w io.Writer, sides []cacheSide) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	head := "\t"
	for _, s := range sides {
		head += s.Name + "\t"
	}
	fmt.Fprintln(tw, head)
	ts := make([]sideTotals, len(sides))
	for i, s := range sides {
		ts[i] = s.totals()
	}
	line := func(label string, f func(t sideTotals) string) {
		fmt.Fprint(tw, label+"\t")
		for _, t := range ts {
			fmt.Fprint(tw, f(t)+"\t")
		}
		fmt.Fprintln(tw)
	}
	line("runs done", func(t sideTotals) string { return fmt.Sprintf("%d/%d", t.done, t.runs) })
	line("planner calls (plan, repair, replan)", func(t sideTotals) string { return fmt.Sprint(t.plannerCalls) })
	line("  of which remote", func(t sideTotals) string { return fmt.Sprint(t.remoteCalls) })
	line("model calls", func(t sideTotals) string { return fmt.Sprint(t.calls) })
	line("prompt tokens", func(t sideTotals) string { return fmtTokens(t.prompt) })
	line("output tokens", func(t sideTotals) string { return fmtTokens(t.output) })
	line("median latency", func(t sideTotals) string { return fmtDur(t.median) })
	line("p90 latency", func(t sideTotals) string { return fmtDur(t.p90) })
	line("step accuracy", func(t sideTotals) string {
		return fmt.Sprintf("%s (%d/%d)", fmtPct(t.stepAccuracy()), t.stepsOK, t.stepsTotal)
	})
	line("final accuracy", func(t sideTotals) string {
		return fmt.Sprintf("%s (%d/%d)", fmtPct(t.finalAccuracy()), t.answersOK, t.runs)
	})
	line("served from a learned template", func(t sideTotals) string {
		return fmt.Sprintf("%d (%d templates)", t.served, t.templates)
	})
	line("  wrong plan or answer", func(t sideTotals) string { return fmt.Sprint(t.wrong) })
	tw.Flush()
	fmt.Fprint(w, "model calls by purpose:")
	for i, s := range sides {
		sep := ";"
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(w, "%s %s: %s", sep, s.Name, countsText(ts[i].purposes))
	}
	fmt.Fprintln(w)
}

func countsText(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// renderKinds breaks the comparison down by request type, so a type the
// cache gets wrong or never serves stands out.
func (r *CacheResult) renderKinds(w io.Writer) {
	type agg struct{ n, offOK, onOK, served, wrong, offPlanner, onPlanner int }
	by := map[string]*agg{}
	var order []string
	for i, row := range r.Off.Rows {
		a := by[row.Kind]
		if a == nil {
			a = &agg{}
			by[row.Kind] = a
			order = append(order, row.Kind)
		}
		a.n++
		a.offPlanner += row.PlannerCalls
		if row.Score.AnswerOK {
			a.offOK++
		}
		if i < len(r.On.Rows) {
			on := r.On.Rows[i]
			a.onPlanner += on.PlannerCalls
			if on.Score.AnswerOK {
				a.onOK++
			}
			if on.served() {
				a.served++
			}
			if on.wrongTemplate() {
				a.wrong++
			}
		}
	}
	sort.Strings(order)
	fmt.Fprintln(w, "\nBy request type:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "type\trequests\tplanner calls off/on\tright answers off/on\tfrom a template\twrong from a template\t")
	for _, k := range order {
		a := by[k]
		fmt.Fprintf(tw, "%s\t%d\t%d/%d\t%d/%d\t%d\t%d\t\n", k, a.n, a.offPlanner, a.onPlanner, a.offOK, a.onOK, a.served, a.wrong)
	}
	tw.Flush()
}

// renderWrong lists what went wrong, so a failure can be found: wrong
// template runs first, then other wrong runs.
func renderWrong(w io.Writer, side cacheSide) {
	shown := 0
	for _, pass := range []bool{true, false} {
		for _, row := range side.Rows {
			if shown >= 8 {
				return
			}
			bad := !(row.Score.PlanOK && row.Score.AnswerOK)
			if !bad || row.wrongTemplate() != pass {
				continue
			}
			if shown == 0 {
				fmt.Fprintf(w, "\nWrong runs with %s (first 8):\n", side.Name)
			}
			shown++
			src := "planner"
			if row.served() {
				src = "template " + row.Template
			}
			fmt.Fprintf(w, "- %q (%s, %s, %s): %s\n", oneLineText(row.Text, 90), row.Kind, row.Status, src, oneLineText(strings.Join(row.Score.Missing, "; ")+" "+row.Err, 300))
		}
	}
}

func (r *CacheResult) renderRemote(w io.Writer) {
	off, on := r.RemoteOff.totals(), r.RemoteOn.totals()
	fmt.Fprintln(w, "## Plan cache with the remote fallback: hard requests repeating")
	fmt.Fprintf(w, "workload: %d requests of %d hard types (their complexity reaches escalate_score, so the router sends them to the remote planner), seed %d; "+
		"a fake remote on 127.0.0.1 priced as %s; remote-only = the cache off, every request planned remotely\n\n", off.runs, r.HardKinds, r.Seed, r.PriceName)
	renderSides(w, []cacheSide{*r.RemoteOff, *r.RemoteOn})
	fmt.Fprintf(w, "routed to the remote planner: %d vs %d; remote requests received: %d vs %d\n", off.remoteRoute, on.remoteRoute,
		r.RemoteOff.RemoteRequests, r.RemoteOn.RemoteRequests)
	renderWrong(w, *r.RemoteOn)
	red := 0.0
	if r.RemoteOff.RemoteUSD > 0 {
		red = 1 - r.RemoteOn.RemoteUSD/r.RemoteOff.RemoteUSD
	}
	// A saving counts only when the cache side answered as well: runs that
	// failed cheaply saved nothing.
	ok := red >= 0.97 && on.done == on.runs && on.finalAccuracy() >= 0.97*off.finalAccuracy()
	lost := ""
	if on.done < on.runs || on.finalAccuracy() < 0.97*off.finalAccuracy() {
		lost = fmt.Sprintf("; cache on ended %d of %d runs done with %s right answers (remote-only %s), so the saving does not count",
			on.done, on.runs, fmtPct(on.finalAccuracy()), fmtPct(off.finalAccuracy()))
	}
	fmt.Fprintf(w, "\nTarget:\n- remote spend ≥97%% below remote-only: $%.5f vs $%.5f (%s less): %s%s\n\n", r.RemoteOn.RemoteUSD, r.RemoteOff.RemoteUSD,
		fmtPct(red), metOrNot(ok && r.RemoteOff.RemoteUSD > 0), lost)
}
