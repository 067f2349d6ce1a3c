package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/llm"
	agentrun "github.com/agentd/agentd/internal/run"
	"github.com/agentd/agentd/internal/scenarios"
)

// The real-server overhead benchmark (`agentd bench --ollama URL --real`):
// a fixed set of requests of different kinds goes through the in-process
// daemon against a real Ollama, one run at a time, and each run's wall time
// is set against the time the server was busy with that run's model calls.
// What the models say does not matter here (the tiny test model says
// noise, so most runs fail): the ratio is what agentd adds around the
// server's work, and every run must end with a status and a reason within
// its bound.

// Targets of the figure.
const (
	realMedianTarget = 1.10 // median wall / busy
	realMaxTarget    = 1.5  // no run over this
)

// RealOptions shape the benchmark.
type RealOptions struct {
	// Runs is how many requests to run, going round the fixed set; 0 runs
	// the set once.
	Runs int
	// Timeout bounds each run: one with no final status by then is stuck.
	Timeout time.Duration
	// Model serves every role; Planner and Executor override the planner
	// and the executor tiers (fast, standard) when set.
	Model, Planner, Executor string
}

func (o RealOptions) models(base config.ModelsConfig) config.ModelsConfig {
	m := base
	m.Router, m.Planner, m.Fast, m.Standard, m.Summarizer, m.Validator = o.Model, o.Model, o.Model, o.Model, o.Model, o.Model
	if o.Planner != "" {
		m.Planner = o.Planner
	}
	if o.Executor != "" {
		m.Fast, m.Standard = o.Executor, o.Executor
	}
	return m
}

// realRequest is one request of the fixed set. A Workflow pins the plan
// (a bench workflow below), so the path it names is taken whatever the
// planner model would have said; the others go through the router and the
// local planner as a person's request would.
type realRequest struct {
	Kind     string
	Request  string
	Workflow string
	Mode     string
}

// realRequests is the fixed set, in the order a small --real-runs takes
// them: the first few already cover the planner, a tool, an approval and a
// replan.
func realRequests() []realRequest {
	byName := func(n string) string { sc, _ := scenarios.Find(n); return sc.Request }
	return []realRequest{
		{Kind: "arithmetic (calc)", Request: "What is 1234 * 5678 + 91? Use the calculator."},
		{Kind: "approval, auto-approved (pinned)", Request: "Confirm order A-1042 with the supplier.", Workflow: "bench_approval"},
		{Kind: "replan (pinned)", Request: "Is the wind at Skrova fit for a crossing on Thursday?", Workflow: "bench_replan"},
		{Kind: "time (now)", Request: "What is the date and time now, in UTC?"},
		{Kind: "parallel lookups (pinned)", Request: "Which of Austin, Dallas, Phoenix and Denver has the hottest July?", Workflow: "bench_fanout"},
		{Kind: "docs search (search_notes)", Request: "Search the clinic notes: how long may vaccines stay out of the fridge?"},
		{Kind: "plain question, task step (pinned)", Request: "Why do harbours publish tide tables?", Workflow: "bench_question"},
		{Kind: "nonsense", Request: "purple seventeen blorf the lamp sideways?? zq ¿"},
		{Kind: "parallel lookups (planner)", Request: byName(scenarios.NameCities)},
		{Kind: "plain question (planner)", Request: "Why is the sea salty? Answer in two sentences."},
		{Kind: "approval (planner)", Request: byName(scenarios.NameOrder)},
		{Kind: "replan (planner)", Request: byName(scenarios.NameReplan)},
		{Kind: "workflow by keyword", Request: byName(scenarios.NameTemplate)},
		{Kind: "scratchpad (ReAct mode)", Request: "What is 12 * 12 + 7? Use the calculator.", Mode: exec.ModeScratchpad},
	}
}

// realWorkflows pin the plans of the pinned requests. They have no
// keywords and no parameters: only a request that names one takes it, and
// no model call extracts anything.
func realWorkflows() []config.WorkflowConfig {
	fanout := config.WorkflowConfig{Name: "bench_fanout", Description: "bench: four climate lookups in parallel, then one comparison",
		Answer: "Name the city with the hottest July and its July mean temperature."}
	var deps []string
	for _, c := range []string{"Austin, TX", "Dallas, TX", "Phoenix, AZ", "Denver, CO"} {
		id := strings.ToLower(strings.SplitN(c, ",", 2)[0])
		fanout.Steps = append(fanout.Steps, config.WorkflowStep{ID: id, Tool: "get_climate", Args: map[string]any{"city": c}})
		deps = append(deps, id)
	}
	fanout.Steps = append(fanout.Steps, config.WorkflowStep{ID: "hottest", Tier: "fast", DependsOn: deps,
		Task: "Which city has the hottest July? Austin ${austin.july_mean_c} C, Dallas ${dallas.july_mean_c} C, Phoenix ${phoenix.july_mean_c} C, Denver ${denver.july_mean_c} C."})
	return []config.WorkflowConfig{
		{Name: "bench_approval", Description: "bench: validate and confirm one order (confirm needs approval)",
			Steps: []config.WorkflowStep{
				{ID: "validate", Tool: "validate_order", Args: map[string]any{"order_id": "A-1042"}},
				{ID: "confirm", Tool: "confirm_order", Args: map[string]any{"order_id": "A-1042", "shipping_usd": 310.5, "goods_usd": 5150.0},
					DependsOn: []string{"validate"}},
			},
			Answer: "Report the order's confirmation number and total."},
		// station_forecast always fails (the station is offline), so the
		// error ladder replans with the planner model.
		{Name: "bench_replan", Description: "bench: a wind forecast from a station that is offline, and the tide",
			Steps: []config.WorkflowStep{
				{ID: "wind", Tool: "station_forecast", Args: map[string]any{"station": "Skrova AWS"}},
				{ID: "tide", Tool: "tide_table", Args: map[string]any{"harbour": "Svolvaer", "day": "Thursday"}},
			},
			Answer: "Say whether Thursday suits the crossing, from the wind and the tide."},
		fanout,
		{Name: "bench_question", Description: "bench: one question answered by an executor task step",
			Steps:  []config.WorkflowStep{{ID: "answer", Tier: "fast", Task: "Answer in one sentence: why do harbours publish tide tables?"}},
			Answer: "Give the answer."},
	}
}

// realRun is one run's row.
type realRun struct {
	N      int
	Kind   string
	Route  string
	Status string // the run's final status, or the last one seen when stuck
	Reason string // the run's error text (what a person is shown); empty when done
	Calls  int    // model-call attempts recorded on the run
	// Purposes are the attempts by purpose, like "plan 3, synthesize 1".
	Purposes string
	Wall     time.Duration
	Busy     time.Duration // union of the model-call intervals
	Stuck    bool          // no final status within the bound
}

// Ratio is wall over busy; 0 when the run made no model call.
func (r realRun) Ratio() float64 {
	if r.Busy <= 0 {
		return 0
	}
	return float64(r.Wall) / float64(r.Busy)
}

// EndedClean reports whether the run ended within its bound with a status
// and, unless it was done, a reason a person can read. Canceled counts:
// the bench cancels only stuck runs, so a canceled run that is not stuck
// was ended by agentd at its request deadline.
func (r realRun) EndedClean() bool {
	if r.Stuck {
		return false
	}
	switch agentrun.Status(r.Status) {
	case agentrun.Done:
		return true
	case agentrun.Partial, agentrun.Failed, agentrun.Review, agentrun.Canceled:
		return strings.TrimSpace(r.Reason) != ""
	}
	return false
}

// RealResult is the whole figure.
type RealResult struct {
	Server  string // URL and version
	Models  config.ModelsConfig
	Timeout time.Duration
	Runs    []realRun
}

// busyUnion is how long the server was busy with these calls: the union
// of their intervals (each attempt from its start for its wall time, as
// agentd saw it), clipped to [from, to]. Overlapping calls (parallel steps)
// count once.
func busyUnion(calls []db.ModelCall, from, to time.Time) time.Duration {
	type span struct{ a, b time.Time }
	var spans []span
	for _, c := range calls {
		d := time.Duration(c.WallMS * float64(time.Millisecond))
		if d <= 0 {
			d = time.Duration(c.TotalMS * float64(time.Millisecond))
		}
		a, b := c.CreatedAt, c.CreatedAt.Add(d)
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if b.After(a) {
			spans = append(spans, span{a, b})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].a.Before(spans[j].a) })
	var total time.Duration
	var cur span
	for i, s := range spans {
		switch {
		case i == 0:
			cur = s
		case !s.a.After(cur.b):
			if s.b.After(cur.b) {
				cur.b = s.b
			}
		default:
			total += cur.b.Sub(cur.a)
			cur = s
		}
	}
	if len(spans) > 0 {
		total += cur.b.Sub(cur.a)
	}
	return total
}

// checkModels says which of the named models the server lacks.
func checkModels(ctx context.Context, serverURL string, names ...string) (version string, err error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", err
	}
	c := api.NewClient(u, http.DefaultClient)
	version, err = c.Version(ctx)
	if err != nil {
		return "", fmt.Errorf("ollama not reachable at %s — is `ollama serve` running? (%w)", serverURL, err)
	}
	list, err := c.List(ctx)
	if err != nil {
		return version, fmt.Errorf("list models at %s: %w", serverURL, err)
	}
	have := map[string]bool{}
	for _, m := range list.Models {
		have[llm.ModelKey(m.Name)] = true
	}
	var missing []string
	for _, n := range names {
		if !have[llm.ModelKey(n)] && !slices.Contains(missing, n) {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return version, fmt.Errorf("model %s not on the server at %s: `ollama pull` it, or name models it has with --real-model, --real-planner, --real-executor",
			strings.Join(missing, ", "), serverURL)
	}
	return version, nil
}

// RunReal runs the fixed set through an in-process daemon against the
// real Ollama at ollamaURL.
func RunReal(ctx context.Context, base *config.Config, ollamaURL string, o RealOptions, log *slog.Logger) (*RealResult, error) {
	env, err := newBenchEnv(ctx, base, ollamaURL, 1, nil, log)
	if err != nil {
		return nil, err
	}
	defer env.close()
	return env.benchReal(ctx, o)
}

// benchReal runs the fixed set against the real server behind e.
func (e *benchEnv) benchReal(ctx context.Context, o RealOptions) (*RealResult, error) {
	if e.sim != nil {
		return nil, errors.New("the real-server benchmark needs a real Ollama: give --ollama URL")
	}
	if o.Model == "" {
		o.Model = "tiny"
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	h, m, version, stop, err := e.realDaemon(ctx, o, e.url, realWorkflows())
	if err != nil {
		return nil, err
	}
	defer stop()

	res := &RealResult{Server: fmt.Sprintf("Ollama %s at %s", version, e.url), Models: m, Timeout: o.Timeout}
	set := realRequests()
	n := o.Runs
	if n <= 0 {
		n = len(set)
	}
	for i := range n {
		req := set[i%len(set)]
		row, err := h.runBounded(ctx, exec.SubmitRequest{Request: req.Request, Source: "bench", Workflow: req.Workflow, Mode: req.Mode}, o.Timeout)
		if err != nil {
			return nil, fmt.Errorf("run %d (%s): %w", i+1, req.Kind, err)
		}
		row.N, row.Kind = i+1, req.Kind
		res.Runs = append(res.Runs, row)
	}
	return res, nil
}

// realDaemon starts the in-process daemon against the real server behind
// e, its models from o, talking to it at endpoint (e's URL, or a proxy in
// front of it), with workflows added. It checks the server has the models
// and loads them first. stop ends the daemon and removes its state.
func (e *benchEnv) realDaemon(ctx context.Context, o RealOptions, endpoint string, workflows []config.WorkflowConfig) (h *benchDaemon, m config.ModelsConfig, version string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "agentd-bench-real-")
	if err != nil {
		return nil, m, "", nil, err
	}
	cfg := e.config(dir)
	cfg.Ollama.Endpoints[0].URL = endpoint
	cfg.Models = o.models(cfg.Models)
	cfg.Workflows = append(cfg.Workflows, workflows...)
	m = cfg.Models
	fail := func(err error) (*benchDaemon, config.ModelsConfig, string, func(), error) {
		os.RemoveAll(dir)
		return nil, m, "", nil, err
	}
	if err := cfg.Validate(); err != nil {
		return fail(fmt.Errorf("bench config: %w", err))
	}
	if version, err = checkModels(ctx, e.url, m.Router, m.Planner, m.Fast, m.Standard, m.Summarizer, m.Validator); err != nil {
		return fail(err)
	}
	if err := e.warm(ctx, m); err != nil {
		return fail(err)
	}
	// Fixture tools answer at once: their simulated latency would be
	// charged to agentd, which these figures are about.
	if h, err = startBenchDaemon(ctx, cfg, scenarios.Options{}, e.log); err != nil {
		return fail(err)
	}
	return h, m, version, func() { h.stop(); os.RemoveAll(dir) }, nil
}

// realGrace is the part of a run's bound left after its request deadline.
func realGrace(bound time.Duration) time.Duration { return min(bound/4, 15*time.Second) }

// runBounded submits one request and waits for its final status for at
// most bound; a run still going then is recorded as stuck and canceled, so
// it holds nothing the next run needs.
func (h *benchDaemon) runBounded(ctx context.Context, req exec.SubmitRequest, bound time.Duration) (realRun, error) {
	var row realRun
	// agentd gets the request a deadline short of the bound, as a person
	// with a deadline would give it: ending the run then, with its reason,
	// is agentd's job; the rest of the bound is its time to settle.
	deadline := time.Now().Add(bound - realGrace(bound))
	req.Deadline = &deadline
	r, err := h.d.Engine.Submit(ctx, req)
	if err != nil {
		return row, err
	}
	wctx, cancel := context.WithTimeout(ctx, bound)
	final, err := h.d.Engine.Wait(wctx, r.ID)
	cancel()
	switch {
	case ctx.Err() != nil:
		return row, ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		last, gerr := h.d.Store.GetRun(ctx, r.ID)
		if gerr != nil {
			return row, gerr
		}
		row.Stuck, row.Status = true, string(last.Status)
		row.Reason = fmt.Sprintf("stuck: no final status within %s (last status %s); canceled by the bench", bound, last.Status)
		row.Wall = bound
		if cerr := h.d.Engine.Cancel(ctx, r.ID, "bench"); cerr == nil {
			sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
			_, _ = h.d.Engine.Wait(sctx, r.ID)
			scancel()
		}
		final = last
	case err != nil:
		return row, err
	default:
		row.Status, row.Reason = string(final.Status), final.Error
		// A run in review has no finish time: it waits for a person from
		// its last update on.
		end := final.UpdatedAt
		if final.FinishedAt != nil {
			end = *final.FinishedAt
		}
		row.Wall = end.Sub(final.CreatedAt)
	}
	row.Route = final.Route
	if req.Workflow != "" && row.Route == "" {
		row.Route = "template"
	}
	calls, err := h.d.Store.RunModelCalls(ctx, r.ID)
	if err != nil {
		return row, err
	}
	row.Calls = len(calls)
	row.Purposes = purposes(calls)
	row.Busy = busyUnion(calls, final.CreatedAt, final.CreatedAt.Add(row.Wall))
	if row.Stuck {
		row.Reason += "; " + longestCall(calls)
	}
	return row, nil
}

func purposes(calls []db.ModelCall) string {
	n := map[string]int{}
	var order []string
	for _, c := range calls {
		if n[c.Purpose] == 0 {
			order = append(order, c.Purpose)
		}
		n[c.Purpose]++
	}
	parts := make([]string, len(order))
	for i, p := range order {
		parts[i] = fmt.Sprintf("%s %d", p, n[p])
	}
	return strings.Join(parts, ", ")
}

// longestCall names the run's longest model call, which is where a stuck
// run spent its time as often as not.
func longestCall(calls []db.ModelCall) string {
	if len(calls) == 0 {
		return "no model call recorded"
	}
	c := slices.MaxFunc(calls, func(a, b db.ModelCall) int { return cmp.Compare(a.WallMS, b.WallMS) })
	how := c.DoneReason
	if c.Error != "" {
		how = c.Error
	}
	if how == "" {
		how = "no done reason"
	}
	return fmt.Sprintf("longest model call: %s on %s, %.1fs, %d output tokens (%s)", c.Purpose, c.Model, c.WallMS/1000, c.OutputTokens, oneLineText(how, 120))
}

// Summary figures.
func (r *RealResult) ratios() (median, maxRatio float64, maxRun int, n int) {
	var rs []float64
	for _, run := range r.Runs {
		if run.Stuck || run.Ratio() == 0 {
			continue
		}
		rs = append(rs, run.Ratio())
		if run.Ratio() > maxRatio {
			maxRatio, maxRun = run.Ratio(), run.N
		}
	}
	if len(rs) == 0 {
		return 0, 0, 0, 0
	}
	sort.Float64s(rs)
	if len(rs)%2 == 1 {
		median = rs[len(rs)/2]
	} else {
		median = (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
	}
	return median, maxRatio, maxRun, len(rs)
}

// Met reports whether every target holds: median and max ratio, every run
// ended with a status and a reason, none stuck.
func (r *RealResult) Met() bool {
	median, maxRatio, _, n := r.ratios()
	clean, stuck := r.counts()
	return n > 0 && median <= realMedianTarget && maxRatio <= realMaxTarget && clean == len(r.Runs) && stuck == 0 && len(r.Runs) > 0
}

func (r *RealResult) counts() (clean, stuck int) {
	for _, run := range r.Runs {
		if run.EndedClean() {
			clean++
		}
		if run.Stuck {
			stuck++
		}
	}
	return clean, stuck
}

func fmtRatio(x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", x)
}

// Render writes the per-run table and the targets, each met or NOT met.
func (r *RealResult) Render(w io.Writer) {
	m := r.Models
	fmt.Fprintln(w, "## Real Ollama: agentd overhead per run")
	fmt.Fprintf(w, "server: %s; models: router %s, planner %s, executor %s/%s (fast/standard), summarizer %s\n",
		r.Server, m.Router, m.Planner, m.Fast, m.Standard, m.Summarizer)
	fmt.Fprintf(w, "one run at a time; each request has a deadline of %s, and a run with no final status %s after it is stuck (bound %s)\n",
		r.Timeout-realGrace(r.Timeout), realGrace(r.Timeout), r.Timeout)
	fmt.Fprintln(w, "ratio = run wall (created → final status) / server busy (union of the run's model-call attempts, start + wall, from model_calls; ms resolution);")
	fmt.Fprintln(w, "fixture tools answer at once and approvals are given at once by the bench, so the gap is agentd's own work")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tkind\troute\tstatus\twall\tbusy\tratio\tmodel calls\treason\t")
	for _, run := range r.Runs {
		reason := "-"
		if run.Reason != "" {
			reason = oneLineText(run.Reason, 80)
		} else if run.Status != string(agentrun.Done) {
			reason = "(none given)"
		}
		st := run.Status
		if run.Stuck {
			st = "STUCK (" + st + ")"
		}
		route := run.Route
		if route == "" {
			route = "-"
		}
		calls := fmt.Sprint(run.Calls)
		if run.Purposes != "" {
			calls += ": " + run.Purposes
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", run.N, run.Kind, route, st,
			fmtMS(run.Wall), fmtMS(run.Busy), fmtRatio(run.Ratio()), calls, reason)
	}
	tw.Flush()
	for _, run := range r.Runs {
		if run.Reason != "" {
			fmt.Fprintf(w, "reason %d (%s, %s): %s\n", run.N, run.Kind, run.Status, oneLineText(run.Reason, 600))
		}
	}

	statuses := map[agentrun.Status]int{}
	noCall := 0
	for _, run := range r.Runs {
		if run.Stuck {
			statuses["stuck"]++
		} else {
			statuses[agentrun.Status(run.Status)]++
		}
		if !run.Stuck && run.Busy <= 0 {
			noCall++
		}
	}
	median, maxRatio, maxRun, n := r.ratios()
	clean, stuck := r.counts()
	fmt.Fprintf(w, "\nruns: %d (%s)\n", len(r.Runs), fmtStatuses(statuses))
	fmt.Fprintln(w, "Targets:")
	if n == 0 {
		fmt.Fprintf(w, "- median ratio: no run that ended made a model call (target ≤ %.2f: NOT met)\n", realMedianTarget)
		fmt.Fprintf(w, "- max ratio: none (target none over %.1f: NOT met)\n", realMaxTarget)
	} else {
		fmt.Fprintf(w, "- median ratio %.3f over %d runs (target ≤ %.2f: %s)\n", median, n, realMedianTarget, metOrNot(median <= realMedianTarget))
		fmt.Fprintf(w, "- max ratio %.3f (run %d) (target none over %.1f: %s)\n", maxRatio, maxRun, realMaxTarget, metOrNot(maxRatio <= realMaxTarget))
	}
	if noCall > 0 {
		fmt.Fprintf(w, "  (%d run(s) made no model call and have no ratio)\n", noCall)
	}
	share := 0.0
	if len(r.Runs) > 0 {
		share = float64(clean) / float64(len(r.Runs))
	}
	fmt.Fprintf(w, "- runs ending with a status and a reason within %s: %d/%d = %.0f%% (target 100%%: %s)\n", r.Timeout, clean, len(r.Runs), 100*share,
		metOrNot(len(r.Runs) > 0 && clean == len(r.Runs)))
	fmt.Fprintf(w, "- runs stuck past the bound: %d (target 0: %s)\n", stuck, metOrNot(stuck == 0))
	fmt.Fprintf(w, "figure: %s\n\n", metOrNot(r.Met()))
}

// fmtMS prints a duration in seconds to the millisecond.
func fmtMS(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.3fs", d.Seconds())
}
