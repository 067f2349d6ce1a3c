package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/fallback"
	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/agentd/agentd/internal/run"
)

// recordingRemote is an OpenAI-compatible remote planner on 127.0.0.1 that
// records every request it receives and answers with a valid plan.
type recordingRemote struct {
	mu     sync.Mutex
	bodies []string
	// replies, when set, are answered in turn (then the valid plan).
	replies []string
}

func (f *recordingRemote) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	plan := `{"goal":"sum","steps":[{"id":"sum","tool":"calc","args":{"expression":"1+1"}}],"answer":"Report ${sum}"}`
	f.mu.Lock()
	f.bodies = append(f.bodies, string(body))
	if len(f.replies) > 0 {
		plan, f.replies = f.replies[0], f.replies[1:]
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"id": "x", "object": "chat.completion", "model": "gpt-4.1-mini",
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": plan}}},
		"usage": map[string]any{"prompt_tokens": 100, "completion_tokens": 30}})
}

func (f *recordingRemote) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.bodies)
}

// withRemote builds a daemon on the simulator whose local planner never
// produces a valid plan (every run is a candidate for escalation), with the
// remote fallback pointed at remote on 127.0.0.1; edit adjusts the config.
func withRemote(t *testing.T, ctx context.Context, remote *recordingRemote, edit func(*config.Config)) *Daemon {
	t.Helper()
	srv := httptest.NewServer(remote)
	t.Cleanup(srv.Close)
	t.Setenv("AGENTD_TEST_REMOTE_KEY", "sk-test-not-a-real-key")
	return startOnSimulatorWith(t, ctx, ollamasim.Config{Seed: 1, Script: ollamasim.NewRules(
		// The planner (and the parameter extraction) never give anything valid.
		ollamasim.Rule{Format: ollamasim.Present, Replies: []ollamasim.Reply{{Content: `{"nonsense": true}`}}},
	)}, func(cfg *config.Config) {
		cfg.Planner.RepairAttempts = 0
		cfg.Fallback.Enabled = true
		cfg.Fallback.Provider = "openai"
		cfg.Fallback.BaseURL = srv.URL + "/v1"
		cfg.Fallback.APIKeyEnv = "AGENTD_TEST_REMOTE_KEY"
		if edit != nil {
			edit(cfg)
		}
	})
}

// TestEgressPolicyHolds: through the engine of the whole daemon, with a
// local planner that never produces a valid plan (so every run is a
// candidate for escalation) and a remote that records every byte: the
// operator's planner.mode = "local" holds against a request that asks for
// the remote planner, and a run of a sensitive workflow never goes remote
// and is recorded sensitive. The control case escalates, so the zeros mean
// something.
func TestEgressPolicyHolds(t *testing.T) {
	tests := []struct {
		name       string
		mode       string
		req        exec.SubmitRequest
		wantRemote int
		sensitive  bool
		reason     string
	}{
		{"control: an ordinary request escalates", "auto", exec.SubmitRequest{Request: "add one and one"}, 1, false, "escalating"},
		{"planner.mode local holds against a request for remote", "local",
			exec.SubmitRequest{Request: "add one and one", Planner: "remote"}, 0, false, `planner.mode = "local"`},
		{"a sensitive workflow stays local when its template cannot be filled", "auto",
			exec.SubmitRequest{Request: "patient chart lookup please"}, 0, true, "sensitive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			remote := &recordingRemote{}
			d := withRemote(t, ctx, remote, func(cfg *config.Config) {
				cfg.Planner.Mode = tt.mode
				cfg.Workflows = []config.WorkflowConfig{{Name: "chart", Description: "Look up a patient's chart.",
					Keywords: []string{"patient chart"}, Sensitive: true,
					Params: map[string]any{"type": "object", "properties": map[string]any{"patient_id": map[string]any{"type": "string", "pattern": "^P[0-9]{6}$"}},
						"required": []any{"patient_id"}},
					Steps: []config.WorkflowStep{{ID: "sum", Tool: "calc", Args: map[string]any{"expression": "{{patient_id}}"}}}}}
			})
			go func() { _ = d.Run(ctx) }()
			tt.req.Source = "api"
			r, err := d.Engine.Submit(ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.Engine.Wait(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			got, err := d.Store.GetRun(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if n := remote.count(); n != tt.wantRemote {
				t.Errorf("remote received %d requests, want %d (run %s: %s; reasons %q)", n, tt.wantRemote, got.Status, got.Error, got.RouteReasons)
			}
			if got.Sensitive != tt.sensitive {
				t.Errorf("run recorded sensitive = %v, want %v", got.Sensitive, tt.sensitive)
			}
			if all := strings.Join(got.RouteReasons, "; "); !strings.Contains(all, tt.reason) {
				t.Errorf("reasons %q do not say %q", all, tt.reason)
			}
			if tt.wantRemote == 0 && got.Status == run.Done {
				t.Errorf("run done without a valid local plan and without the remote")
			}
		})
	}
}

// TestDeferredQueue: an async run that needs the remote planner while the
// link is down waits as "deferred" under its own id, sends nothing, and
// when the link comes back it is planned remotely and finishes; a run that
// is not async plans locally at once instead.
func TestDeferredQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	remote := &recordingRemote{}
	d := withRemote(t, ctx, remote, func(cfg *config.Config) {
	})
	go func() { _ = d.Run(ctx) }()
	link := d.Gate.Link()
	for range 5 {
		link.Observe(fallback.Observation{Failed: true})
	}
	if st := link.State(); st != fallback.LinkOffline {
		t.Fatalf("link %s after failed transfers, want offline", st)
	}

	async, err := d.Engine.Submit(ctx, exec.SubmitRequest{Request: "add one and one", Source: "api", Async: true})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the async run is deferred and queued", func() bool {
		r, _ := d.Store.GetRun(ctx, async.ID)
		pending, _ := d.Store.ListDeferred(ctx)
		return r.Status == run.Deferred && len(pending) == 1 && pending[0].RunID == async.ID
	})
	sync, err := d.Engine.Submit(ctx, exec.SubmitRequest{Request: "add one and one", Source: "api"})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := d.Engine.Wait(ctx, sync.ID); r.Status == run.Deferred || r.Status == run.Done {
		t.Errorf("a run that is not async ended %s, want it to plan locally (and fail) at once", r.Status)
	}
	if n := remote.count(); n != 0 {
		t.Fatalf("%d requests reached the remote while the link was offline", n)
	}

	// The remote is back: transfers succeed again until the link says so.
	for link.State() == fallback.LinkOffline {
		link.Observe(fallback.Observation{RTT: time.Millisecond})
	}
	r, err := d.Engine.Wait(ctx, async.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != run.Done || r.Route != "remote" {
		t.Errorf("deferred run ended %s via %q (%s), want done on the remote plan", r.Status, r.Route, r.Error)
	}
	if n := remote.count(); n != 1 {
		t.Errorf("remote got %d requests, want 1", n)
	}
}

// A deferred run whose fallback.deferred_max_age passes stops waiting and
// plans locally, still under its own id, and nothing reaches the remote.
func TestDeferredRunExpiresToLocal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	remote := &recordingRemote{}
	d := withRemote(t, ctx, remote, func(cfg *config.Config) {
		cfg.Fallback.DeferredMaxAge = config.Duration(500 * time.Millisecond)
	})
	go func() { _ = d.Run(ctx) }()
	for d.Gate.Link().State() != fallback.LinkOffline {
		d.Gate.Link().Observe(fallback.Observation{Failed: true})
	}
	r, err := d.Engine.Submit(ctx, exec.SubmitRequest{Request: "add one and one", Source: "api", Async: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Engine.Wait(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status == run.Deferred || got.Route != "local" || remote.count() != 0 {
		t.Errorf("expired deferral ended %s via %q with %d remote requests, want planned locally, nothing sent", got.Status, got.Route, remote.count())
	}
}

// A deferred run survives a restart of the daemon: the new daemon drains
// the queue on start (its link starts online) and finishes the run under
// the same id.
func TestDeferredRunSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	remote := &recordingRemote{}
	var cfg *config.Config
	first, stop := context.WithCancel(ctx)
	d := withRemote(t, ctx, remote, func(c *config.Config) {
		cfg = c
	})
	done := make(chan error, 1)
	go func() { done <- d.Run(first) }()
	for d.Gate.Link().State() != fallback.LinkOffline {
		d.Gate.Link().Observe(fallback.Observation{Failed: true})
	}
	r, err := d.Engine.Submit(ctx, exec.SubmitRequest{Request: "add one and one", Source: "api", Async: true})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the run is deferred", func() bool {
		got, _ := d.Store.GetRun(ctx, r.ID)
		return got.Status == run.Deferred
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("first daemon: %v", err)
	}

	d2 := newDaemon(t, ctx, cfg, Options{})
	go func() { _ = d2.Run(ctx) }()
	got, err := d2.Engine.Wait(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != run.Done || got.Route != "remote" || remote.count() != 1 {
		t.Errorf("after the restart the run ended %s via %q with %d remote requests, want done on the remote plan", got.Status, got.Route, remote.count())
	}
}

// A remote plan goes through the local planner's parse, validate and
// repair loop: an invalid remote plan is sent back with its problems, and
// the repaired one runs.
func TestRemotePlanIsRepaired(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	remote := &recordingRemote{replies: []string{`{"goal":"sum","steps":[{"id":"sum","tool":"no_such_tool","args":{}}],"answer":"x"}`}}
	d := withRemote(t, ctx, remote, func(cfg *config.Config) {
		cfg.Planner.RepairAttempts = 1
	})
	go func() { _ = d.Run(ctx) }()
	r, err := d.Engine.Submit(ctx, exec.SubmitRequest{Request: "add one and one", Source: "api"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Engine.Wait(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != run.Done || got.Route != "remote" {
		t.Fatalf("run ended %s via %q (%s)", got.Status, got.Route, got.Error)
	}
	if n := remote.count(); n != 2 {
		t.Fatalf("remote got %d requests, want 2 (the plan and its repair)", n)
	}
	remote.mu.Lock()
	second := remote.bodies[1]
	remote.mu.Unlock()
	if !strings.Contains(second, "no_such_tool") || !strings.Contains(second, "cannot run") {
		t.Errorf("the repair request does not carry the problems:\n%s", second)
	}
}

// TestEgressForbiddenCombinations is the policy figure: through the whole
// daemon, with a local planner that never succeeds (so every run would
// escalate if allowed), every combination of the operator's planner.mode,
// the request's planner and sensitive flags, and a sensitive or ordinary
// workflow is run, and the remote's own count of requests is compared with
// what the policy allows. The figure is the number of remote calls made in
// combinations the policy forbids; it must be 0, and the allowed
// combinations must reach the remote (so the 0 is not for want of trying).
func TestEgressForbiddenCombinations(t *testing.T) {
	forbidden, allowedReached, allowedTotal, runs := 0, 0, 0, 0
	for _, mode := range []string{"auto", "local", "remote"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		remote := &recordingRemote{}
		d := withRemote(t, ctx, remote, func(cfg *config.Config) {
			cfg.Planner.Mode = mode
			cfg.Workflows = []config.WorkflowConfig{{Name: "chart", Description: "A patient's chart.", Keywords: []string{"patient chart"},
				Sensitive: true, Params: map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}}, "required": []any{"id"}},
				Steps: []config.WorkflowStep{{ID: "a", Tool: "calc", Args: map[string]any{"expression": "{{id}}"}}}}}
		})
		go func() { _ = d.Run(ctx) }()
		for _, reqPlanner := range []string{"", "local", "remote"} {
			for _, reqSensitive := range []bool{false, true} {
				for _, text := range []string{"add one and one", "patient chart for the ward"} {
					before := remote.count()
					r, err := d.Engine.Submit(ctx, exec.SubmitRequest{Request: text, Source: "api", Planner: reqPlanner, Sensitive: reqSensitive})
					if err != nil {
						t.Fatal(err)
					}
					got, err := d.Engine.Wait(ctx, r.ID)
					if err != nil {
						t.Fatal(err)
					}
					runs++
					sent := remote.count() - before
					allowed := mode != "local" && reqPlanner != "local" && !reqSensitive && !strings.Contains(text, "patient")
					switch {
					case !allowed && sent > 0:
						forbidden += sent
						t.Errorf("mode=%s planner=%q sensitive=%v %q: %d remote calls (route %s, reasons %q)", mode, reqPlanner, reqSensitive, text, sent, got.Route, got.RouteReasons)
					case allowed:
						allowedTotal++
						if sent > 0 {
							allowedReached++
						}
					}
					if !allowed && !got.Sensitive && (reqSensitive || strings.Contains(text, "patient")) {
						t.Errorf("mode=%s %q: a sensitive run recorded sensitive=false", mode, text)
					}
				}
			}
		}
		cancel()
	}
	t.Logf("policy figure: %d remote calls in forbidden combinations over %d runs; %d of %d allowed combinations reached the remote", forbidden, runs, allowedReached, allowedTotal)
	if allowedReached != allowedTotal {
		t.Errorf("%d of %d allowed combinations reached the remote: the zero above proves less than it seems", allowedReached, allowedTotal)
	}
}

// A run refused the remote planner for a budget cap is degraded, whether
// the refusal came at routing, at escalation or at the call's reservation.
func TestCapRefusalIsDegradedOnEveryPath(t *testing.T) {
	for _, mode := range []string{"remote", "auto"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			remote := &recordingRemote{}
			d := withRemote(t, ctx, remote, func(cfg *config.Config) {
				cfg.Planner.Mode = mode
				cfg.Fallback.Caps.RunUSD = 1e-9 // no call fits
			})
			go func() { _ = d.Run(ctx) }()
			r, err := d.Engine.Submit(ctx, exec.SubmitRequest{Request: "add one and one", Source: "api"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Engine.Wait(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Degraded || remote.count() != 0 {
				t.Errorf("degraded = %v with %d remote requests (reasons %q), want degraded and nothing sent", got.Degraded, remote.count(), got.RouteReasons)
			}
		})
	}
}
