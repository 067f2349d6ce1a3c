package bench

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/ollamatest"
)

// TestMain stops the shared real Ollama (if a test started one) after the
// tests.
func TestMain(m *testing.M) { ollamatest.Main(m) }

func TestBusyUnion(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	call := func(startMS int, wallMS float64) db.ModelCall {
		return db.ModelCall{CreatedAt: at(startMS), WallMS: wallMS}
	}
	for _, tc := range []struct {
		name  string
		calls []db.ModelCall
		from  time.Time
		to    time.Time
		want  time.Duration
	}{
		{"none", nil, at(0), at(1000), 0},
		{"one after another", []db.ModelCall{call(0, 100), call(200, 100)}, at(0), at(1000), 200 * time.Millisecond},
		{"overlapping parallel calls count once", []db.ModelCall{call(0, 300), call(100, 300), call(150, 50)}, at(0), at(1000), 400 * time.Millisecond},
		{"touching", []db.ModelCall{call(0, 100), call(100, 100)}, at(0), at(1000), 200 * time.Millisecond},
		{"unsorted", []db.ModelCall{call(500, 100), call(0, 100)}, at(0), at(1000), 200 * time.Millisecond},
		{"clipped to the run", []db.ModelCall{call(900, 300)}, at(0), at(1000), 100 * time.Millisecond},
		{"no wall: server total", []db.ModelCall{{CreatedAt: at(0), TotalMS: 50}}, at(0), at(1000), 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := busyUnion(tc.calls, tc.from, tc.to); got != tc.want {
				t.Errorf("busyUnion = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestRealRenderTargets: the figure says met only when every target holds,
// and a stuck run or a run without a reason fails it.
func TestRealRenderTargets(t *testing.T) {
	ok := []realRun{
		{N: 1, Kind: "a", Status: "done", Calls: 2, Wall: 1050 * time.Millisecond, Busy: time.Second},
		{N: 2, Kind: "b", Status: "failed", Reason: "plan: no valid plan", Calls: 3, Wall: 2100 * time.Millisecond, Busy: 2 * time.Second},
		{N: 3, Kind: "c", Status: "review", Reason: "wind review: station offline", Calls: 1, Wall: 1200 * time.Millisecond, Busy: time.Second},
	}
	for _, tc := range []struct {
		name      string
		runs      []realRun
		want      []string
		met       bool
		notWanted []string
	}{{
		name: "all met",
		runs: ok,
		met:  true,
		want: []string{"median ratio 1.050 over 3 runs (target ≤ 1.10: met)", "max ratio 1.200 (run 3) (target none over 1.5: met)",
			"runs ending with a status and a reason within 1m0s: 3/3 = 100% (target 100%: met)", "runs stuck past the bound: 0 (target 0: met)",
			"figure: met", "runs: 3 (1 done, 1 failed, 1 review)"},
	}, {
		name: "stuck run",
		runs: append(append([]realRun{}, ok...), realRun{N: 4, Kind: "d", Status: "planning", Stuck: true, Reason: "stuck: no final status within 1m0s",
			Calls: 1, Wall: time.Minute, Busy: time.Minute}),
		want: []string{"STUCK (planning)", "runs ending with a status and a reason within 1m0s: 3/4 = 75% (target 100%: NOT met)",
			"runs stuck past the bound: 1 (target 0: NOT met)", "figure: NOT met", "median ratio 1.050 over 3 runs"},
	}, {
		name: "failed without a reason",
		runs: append(append([]realRun{}, ok...), realRun{N: 4, Kind: "d", Status: "partial", Calls: 1, Wall: time.Second, Busy: time.Second}),
		want: []string{"(none given)", "3/4 = 75% (target 100%: NOT met)", "figure: NOT met"},
	}, {
		name: "ratios over target",
		runs: []realRun{
			{N: 1, Kind: "a", Status: "done", Calls: 1, Wall: 1600 * time.Millisecond, Busy: time.Second},
			{N: 2, Kind: "b", Status: "done", Calls: 1, Wall: 1200 * time.Millisecond, Busy: time.Second},
		},
		want: []string{"median ratio 1.400 over 2 runs (target ≤ 1.10: NOT met)", "max ratio 1.600 (run 1) (target none over 1.5: NOT met)", "figure: NOT met"},
	}, {
		name: "no model call at all",
		runs: []realRun{{N: 1, Kind: "a", Status: "done", Wall: time.Second}},
		want: []string{"no run that ended made a model call (target ≤ 1.10: NOT met)", "1 run(s) made no model call", "figure: NOT met"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := &RealResult{Server: "test", Models: config.Default().Models, Timeout: time.Minute, Runs: tc.runs}
			if r.Met() != tc.met {
				t.Errorf("Met() = %v, want %v", r.Met(), tc.met)
			}
			var b bytes.Buffer
			r.Render(&b)
			for _, want := range tc.want {
				if !strings.Contains(b.String(), want) {
					t.Errorf("output lacks %q", want)
				}
			}
			if t.Failed() {
				t.Log(b.String())
			}
		})
	}
}

// TestBenchRealOnRealOllama runs the first requests of the real-server
// benchmark through the daemon against a real Ollama with the tiny model:
// the report has its rows and targets, and every run ended with a status
// and (unless done) a reason within the bound. What the tiny model says is
// noise, so the statuses themselves are not checked.
func TestBenchRealOnRealOllama(t *testing.T) {
	srv := ollamatest.Shared(t)
	const runs, bound = 3, 60 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), runs*bound+2*time.Minute)
	defer cancel()
	env, err := newBenchEnv(ctx, config.Default(), srv.URL, 1, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer env.close()
	res, err := env.benchReal(ctx, RealOptions{Runs: runs, Timeout: bound, Model: ollamatest.Plain})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != runs {
		t.Fatalf("runs = %d, want %d", len(res.Runs), runs)
	}
	set := realRequests()
	for i, r := range res.Runs {
		if r.N != i+1 || r.Kind != set[i].Kind {
			t.Errorf("run %d: N %d kind %q, want %d %q", i, r.N, r.Kind, i+1, set[i].Kind)
		}
		if r.Stuck || !r.EndedClean() || r.Wall <= 0 || r.Wall > bound {
			t.Errorf("run %d (%s) did not end cleanly within %s: status %q stuck %v wall %s reason %q", r.N, r.Kind, bound, r.Status, r.Stuck, r.Wall, r.Reason)
		}
		// Every one of these requests calls a model (planner, replan or
		// synthesizer), and the server cannot be busy longer than the run
		// (the millisecond clock of the records allows a little).
		if r.Calls == 0 || r.Busy <= 0 || r.Busy > r.Wall+2*time.Millisecond {
			t.Errorf("run %d (%s): calls %d busy %s wall %s", r.N, r.Kind, r.Calls, r.Busy, r.Wall)
		}
	}
	var b bytes.Buffer
	res.Render(&b)
	out := b.String()
	for _, want := range []string{"## Real Ollama: agentd overhead per run", "Ollama 0.", "planner tiny", "#", "kind", "status", "ratio", "reason",
		set[0].Kind, set[1].Kind, set[2].Kind, "- median ratio ", "- max ratio ", "- runs ending with a status and a reason within 1m0s: 3/3 = 100% (target 100%: met)",
		"- runs stuck past the bound: 0 (target 0: met)", "figure: " + metOrNot(res.Met())} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	t.Log("\n" + out)
}

// TestOneCallOnRealOllama: a one-call run and its own request replayed
// directly, side by side, against the real server; each run made exactly
// one model call and ended done (RunOneCall refuses otherwise), and the
// report states the overhead and the target.
func TestOneCallOnRealOllama(t *testing.T) {
	srv := ollamatest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env, err := newBenchEnv(ctx, config.Default(), srv.URL, 1, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer env.close()
	res, err := env.oneCall(ctx, OneCallOptions{Runs: oneCallRuns(), Model: ollamatest.Plain})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != oneCallRuns() || len(res.Calls) != oneCallRuns() || res.BodyBytes == 0 {
		t.Fatalf("pairs %d/%d, body %d bytes", len(res.Runs), len(res.Calls), res.BodyBytes)
	}
	var b strings.Builder
	res.Render(&b)
	if !strings.Contains(b.String(), "agentd adds:") || !strings.Contains(b.String(), "target ≤ 0.50 ms") {
		t.Errorf("report:\n%s", b.String())
	}
	t.Logf("\n%s", b.String())
}

// oneCallRuns is 10, or $AGENTD_ONECALL_RUNS for profiling.
func oneCallRuns() int {
	if n, err := strconv.Atoi(os.Getenv("AGENTD_ONECALL_RUNS")); err == nil && n > 0 {
		return n
	}
	return 10
}
