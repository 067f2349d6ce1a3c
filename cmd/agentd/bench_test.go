package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/scenarios"
)

// testRun adapts a function to what ollamatest.Main runs (TestMain).
type testRun func() int

func (f testRun) Run() int { return f() }

// TestBenchRealNeedsOllama: --real without --ollama is a usage error.
func TestBenchRealNeedsOllama(t *testing.T) {
	out, code := run(t, nil, "bench", "--real")
	if code != 2 || !strings.Contains(out, "--ollama") {
		t.Errorf("exit %d, output %q", code, out)
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
