package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/scenarios"
)

// TestBenchSuiteTinyRun runs two scenarios in all three modes on a fast
// simulator and checks the table and the figures behind it.
func TestBenchSuiteTinyRun(t *testing.T) {
	var list []scenarios.Scenario
	for _, n := range []string{scenarios.NameOrder, scenarios.NameTemplate} {
		sc, _ := scenarios.Find(n)
		list = append(list, sc)
	}
	res, err := runSuite(context.Background(), config.Default(), suiteOptions{TimeScale: 0.01, Scenarios: list, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 6 {
		t.Fatalf("rows = %d, want 2 scenarios x 3 modes", len(res.Rows))
	}
	rows := map[string]modeRow{}
	for _, r := range res.Rows {
		rows[r.Scenario+"/"+r.Mode] = r
		if r.Status != "done" || r.Wall <= 0 || r.Calls == 0 || r.CostUSD <= 0 {
			t.Errorf("%s/%s: %+v", r.Scenario, r.Mode, r)
		}
		if r.Score.StepsOK != r.Score.StepsTotal || r.Score.FactsOK != r.Score.FactsTotal {
			t.Errorf("%s/%s score %+v", r.Scenario, r.Mode, r.Score)
		}
	}
	// Order: agentd routes (classify), plans and synthesizes, and its four
	// tool steps make no model call; sequential sends each step to the
	// model; ReAct takes a turn per tool and one to answer.
	if got := rows["order_processing/agentd"].Calls; got != 3 {
		t.Errorf("agentd model calls on the order = %d, want 3", got)
	}
	if got := rows["order_processing/sequential"].Calls; got != 6 {
		t.Errorf("sequential model calls on the order = %d, want 6 (plan, 4 steps, summary)", got)
	}
	if got := rows["order_processing/react"].Calls; got != 5 {
		t.Errorf("react model calls on the order = %d, want 5", got)
	}
	if a := rows["order_processing/agentd"]; a.Bound <= 0 || a.Bound > a.Wall*2 {
		t.Errorf("critical-path bound %s for wall %s", a.Bound, a.Wall)
	}
	var b bytes.Buffer
	res.Render(&b)
	out := b.String()
	for _, want := range []string{"scenario", "crit.path", "order_processing", "low_stock_template", "sequential", "react",
		"Targets:", "model calls agentd 3 vs ReAct 5 (40% fewer; target ≥50%: NOT met)", "gpt-4.1-mini"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestRenderTargets renders fixed rows and checks the target arithmetic.
func TestRenderTargets(t *testing.T) {
	res := &suiteResult{Backend: "test", PriceName: "m", Parallel: map[string]bool{"p": true}, Rows: []modeRow{
		{Scenario: "p", Mode: modeAgentd, Status: "done", Wall: 10 * time.Second, Bound: 9500 * time.Millisecond, Planning: 4 * time.Second, Calls: 4,
			Tokens: map[string]tokenCount{"a": {1500, 200}}, Score: scenarios.Score{StepsOK: 2, StepsTotal: 2, FactsOK: 1, FactsTotal: 2}},
		{Scenario: "p", Mode: modeSequential, Status: "done", Wall: 25 * time.Second, Planning: 4 * time.Second, Calls: 12},
		{Scenario: "p", Mode: modeReAct, Status: "partial", Err: "no final answer", Wall: 30 * time.Second, Calls: 10},
	}}
	var b bytes.Buffer
	res.Render(&b)
	out := b.String()
	for _, want := range []string{
		"(+5.3%; target within 10%: met)",
		"sequential 25.00s / agentd 10.00s = 2.50x faster (target ≥2x: met); after the shared planner call (4.00s): 21.00s / 6.00s = 3.50x",
		"model calls agentd 4 vs ReAct 10 (60% fewer; target ≥50%: met)",
		"note: p/react ended partial: no final answer",
		"1.5k/200", "1/2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestDemoCommand starts `agentd demo --submit` as a process: it prints the
// dashboard URL and token, reports demo in its status, runs the scenarios,
// and stops cleanly on SIGTERM.
func TestDemoCommand(t *testing.T) {
	addr := freePort(t)
	state := filepath.Join(t.TempDir(), "demo")
	cmd := exec.Command(agentdBin, "demo", "--state", state, "--listen", addr, "--submit", "--time-scale", "0.005")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	token := ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "dashboard:") && !strings.Contains(line, "http://"+addr+"/") {
			t.Errorf("dashboard line %q does not name %s", line, addr)
		}
		if m := regexp.MustCompile(`^token:\s+(\S+)`).FindStringSubmatch(line); m != nil {
			token = m[1]
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if token == "" {
		t.Fatal("demo printed no token")
	}
	get := func(path string, v any) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(v)
		return resp.StatusCode
	}
	deadline := time.Now().Add(30 * time.Second)
	var st struct {
		Demo bool `json:"demo"`
	}
	for get("/api/v1/status", &st) != http.StatusOK && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !st.Demo {
		t.Error("status.demo is not true in the demo")
	}
	// Every scenario was submitted; all but the order (waiting for a
	// person's approval) finish on their own.
	finished := 0
	for time.Now().Before(deadline) {
		var runs []struct {
			Status string `json:"status"`
		}
		var wrapped struct {
			Runs []struct {
				Status string `json:"status"`
			} `json:"runs"`
		}
		var raw json.RawMessage
		get("/api/v1/runs", &raw)
		if json.Unmarshal(raw, &runs) != nil {
			_ = json.Unmarshal(raw, &wrapped)
			runs = wrapped.Runs
		}
		finished = 0
		for _, r := range runs {
			if r.Status == "done" {
				finished++
			}
		}
		if len(runs) == len(scenarios.All()) && finished == len(scenarios.All())-1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if finished != len(scenarios.All())-1 {
		mu.Lock()
		t.Fatalf("%d demo runs done, want %d\n%s", finished, len(scenarios.All())-1, logs.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("demo exit: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "DEMO MODE") {
		t.Errorf("no DEMO banner in the logs:\n%s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
