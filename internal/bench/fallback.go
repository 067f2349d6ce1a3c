package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/scenarios"
)

// hardSuffix makes a scenario request read as a hard one to the router's
// complexity features (several asks, conditionals, unknown entities), so it
// escalates to the remote planner on its own, as a real hard request would.
const hardSuffix = " If any figure is older than 2019, recheck it against the Q3 ledger, otherwise keep it; unless KX-7 and ZR-12 disagree, " +
	"and then also compare with Boise, Fresno and Tucson? Also note whether Reno fits, and if not, say why?"

// fakeRemote is an OpenAI-compatible chat completions server on 127.0.0.1
// that answers planning requests with the scenario's plan and honest usage
// (tokens from the bytes it received and sent).
type fakeRemote struct {
	mu       sync.Mutex
	requests int
	bytesIn  int64
	bodies   []string
	list     []scenarios.Scenario
	// planFor, when set, finds the plan in the prompt text instead of the
	// scenario list (the plan cache bench's workload).
	planFor func(prompt string) (*plan.Plan, bool)
}

func (f *fakeRemote) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests++
	f.bytesIn += int64(len(body))
	f.bodies = append(f.bodies, string(body))
	f.mu.Unlock()
	var req struct {
		Messages []struct{ Content string } `json:"messages"`
	}
	_ = json.Unmarshal(body, &req)
	text := ""
	for _, m := range req.Messages {
		text += m.Content
	}
	var reply []byte
	if f.planFor != nil {
		for _, m := range req.Messages {
			if p, ok := f.planFor(m.Content); ok {
				reply, _ = json.Marshal(p)
			}
		}
	}
	for _, sc := range f.list {
		if sc.Plan != nil && strings.Contains(text, sc.Request[:min(40, len(sc.Request))]) {
			reply, _ = json.Marshal(sc.Plan)
		}
	}
	if reply == nil {
		http.Error(w, `{"error":{"message":"no plan for this request"}}`, http.StatusBadRequest)
		return
	}
	resp := map[string]any{
		"id": "chatcmpl-bench", "object": "chat.completion", "model": "gpt-4.1-mini",
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": string(reply)}}},
		"usage": map[string]any{"prompt_tokens": (len(body) + 3) / 4, "completion_tokens": (len(reply) + 3) / 4},
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// useFakeRemote turns the remote fallback on in cfg, pointed at a fake
// remote listening on addr, with caps no benchmark reaches.
func useFakeRemote(cfg *config.Config, addr string) {
	cfg.Fallback.Enabled = true
	cfg.Fallback.Provider = "openai"
	cfg.Fallback.BaseURL = "http://" + addr + "/v1"
	cfg.Fallback.APIKeyEnv = "AGENTD_BENCH_REMOTE_KEY"
	cfg.Fallback.Caps.RunUSD, cfg.Fallback.Caps.DayUSD, cfg.Fallback.Caps.MonthUSD = 1, 10, 100
	os.Setenv("AGENTD_BENCH_REMOTE_KEY", "sk-bench-not-a-real-key")
}

// FallbackResult is the cost comparison of issue-level interest: what the
// suite cost local-first (remote only for the requests that escalated)
// against every call made on the remote model at table prices.
type FallbackResult struct {
	Requests, Escalated, Done int
	LocalFirstUSD             float64
	RemoteOnlyUSD             float64
	RemoteRequests            int
	RemoteBytesOut            int64
	// RemoteBodies are the request bodies the remote received, kept so a
	// test can prove no tool result left the machine.
	RemoteBodies []string
	// StepOutputs are the outputs of every step that ran.
	StepOutputs []string
}

func (r FallbackResult) Reduction() float64 {
	if r.RemoteOnlyUSD == 0 {
		return 0
	}
	return 1 - r.LocalFirstUSD/r.RemoteOnlyUSD
}

func (r FallbackResult) Render(w io.Writer, price string) {
	fmt.Fprintln(w, "## Remote fallback cost: local-first with escalation vs remote-only")
	fmt.Fprintf(w, "requests %d (done %d), escalated to the remote planner %d (%.0f%%), remote requests %d, bytes sent %d\n",
		r.Requests, r.Done, r.Escalated, 100*float64(r.Escalated)/float64(max(r.Requests, 1)), r.RemoteRequests, r.RemoteBytesOut)
	// A saving counts only when every local-first run ended done: a run
	// that failed cheaply saved nothing.
	lost := ""
	if r.Done < r.Requests {
		lost = fmt.Sprintf("; %d of %d local-first runs did not end done, so the saving does not count", r.Requests-r.Done, r.Requests)
	}
	fmt.Fprintf(w, "cost at %s table prices: local-first $%.5f vs remote-only $%.5f: %.1f%% less (target ≥90%%: %s%s)\n\n",
		price, r.LocalFirstUSD, r.RemoteOnlyUSD, 100*r.Reduction(), metOrNot(r.Reduction() >= 0.9 && r.Done == r.Requests), lost)
}

func metOrNot(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// FallbackOptions shape the fallback benchmark.
type FallbackOptions struct {
	OllamaURL string  // empty: the simulator
	TimeScale float64 // simulator only
	Scenarios []scenarios.Scenario
	// Repeat is how many plain runs of each scenario go beside its one
	// hard (escalating) variant.
	Repeat int
	Log    *slog.Logger
}

// RunFallback compares local-first planning with escalation against
// remote-only, with a fake remote on 127.0.0.1.
func RunFallback(ctx context.Context, base *config.Config, o FallbackOptions) (FallbackResult, error) {
	env, err := newBenchEnv(ctx, base, o.OllamaURL, o.TimeScale, scenarios.Script(), o.Log)
	if err != nil {
		return FallbackResult{}, err
	}
	defer env.close()
	if err := env.warm(ctx, base.Models); err != nil {
		return FallbackResult{}, err
	}
	return env.benchFallback(ctx, o.Scenarios, o.Repeat)
}

// benchFallback runs each scenario `repeat` times as written and once as a
// hard variant that the router escalates; every run's calls are priced at
// the remote model's table price for the remote-only column.
func (e *benchEnv) benchFallback(ctx context.Context, list []scenarios.Scenario, repeat int) (FallbackResult, error) {
	var res FallbackResult
	remote := &fakeRemote{list: list}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: remote}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	dir, err := os.MkdirTemp("", "agentd-bench-fallback-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	cfg := e.config(dir)
	useFakeRemote(cfg, ln.Addr().String())
	// The requests repeat: with the plan cache on, repeats would be served
	// from learned templates. This bench measures the router's local or
	// remote choice alone; `--cache` measures the cache with the remote.
	cfg.Planner.Cache.Enabled = false
	price := cfg.Fallback.Prices[cfg.Fallback.Model]

	h, err := startBenchDaemon(ctx, cfg, scenarios.Options{TimeScale: e.scale}, e.log)
	if err != nil {
		return res, err
	}
	defer h.stop()
	var reqs []string
	for _, sc := range list {
		for range repeat {
			reqs = append(reqs, sc.Request)
		}
		if sc.Plan != nil {
			reqs = append(reqs, sc.Request+hardSuffix)
		}
	}
	for _, text := range reqs {
		rec, err := h.runOne(ctx, exec.SubmitRequest{Request: text, Source: "bench"})
		if err != nil {
			return res, err
		}
		res.Requests++
		if rec.run.Status == "done" {
			res.Done++
		}
		if rec.run.Route == "remote" {
			res.Escalated++
		}
		for _, st := range rec.steps {
			if st.Output != "" {
				res.StepOutputs = append(res.StepOutputs, st.Output)
			}
		}
		for _, c := range rec.calls {
			res.RemoteOnlyUSD += price.Cost(c.PromptTokens, c.OutputTokens)
		}
	}
	day, month := h.d.Gate.Budget().Windows(h.d.Store.Now())
	_, d, _, err := h.d.Store.BudgetWindows(ctx, "", day, month)
	if err != nil {
		return res, err
	}
	// The remote planning calls happened remotely: they are the local-first
	// spend, and a remote-only deployment pays them too.
	res.LocalFirstUSD = d.SpentUSD
	res.RemoteOnlyUSD += d.SpentUSD
	remote.mu.Lock()
	res.RemoteRequests, res.RemoteBytesOut, res.RemoteBodies = remote.requests, remote.bytesIn, remote.bodies
	remote.mu.Unlock()
	return res, nil
}
