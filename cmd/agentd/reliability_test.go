package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// payPlan: fetch, then charge (not idempotent) and audit in parallel, then
// notify. Every tool is a real child process that logs its invocation.
const payPlan = `{"goal":"settle JOB","steps":[
 {"id":"fetch","tool":"fetch_record","args":{"job":"JOB","step":"fetch"}},
 {"id":"charge","tool":"charge_card","args":{"job":"JOB","step":"charge"},"depends_on":["fetch"]},
 {"id":"audit","tool":"audit_log","args":{"job":"JOB","step":"audit"},"depends_on":["fetch"]},
 {"id":"notify","tool":"fetch_record","args":{"job":"JOB","step":"notify"},"depends_on":["charge","audit"]}
],"answer":"Say JOB is settled"}`

// Tool durations: long enough that kills land inside tool calls.
var crashTools = []struct {
	name       string
	idempotent bool
	sleep      time.Duration
}{
	{"fetch_record", true, 150 * time.Millisecond},
	{"charge_card", false, 300 * time.Millisecond},
	{"audit_log", true, 200 * time.Millisecond},
}

// TestCrashLoopNeverLosesOrRepeatsWork is the crash test: the real agentd,
// real command tools as child processes, SIGKILL at random moments at
// least 20 times while runs are in flight, restarting on the same state
// dir and port each time. At the end every run is done or waits in review
// (none lost, none stuck), and the non-idempotent tool never ran twice for
// the same run and step. Set AGENTD_CRASH_SEED to replay a sequence.
func TestCrashLoopNeverLosesOrRepeatsWork(t *testing.T) {
	seed := uint64(20260101)
	if s := os.Getenv("AGENTD_CRASH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("AGENTD_CRASH_SEED=%q: %v", s, err)
		}
		seed = n
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	const (
		minMidRunKills = 20
		maxKills       = 45
		initialRuns    = 4
		maxRuns        = 80
	)
	start := time.Now()

	bin := countTool(t)
	logFile := filepath.Join(t.TempDir(), "invocations.jsonl")
	var decl strings.Builder
	for _, ct := range crashTools {
		decl.WriteString(commandTool(bin, logFile, ct.name, ct.idempotent, "none", ct.sleep))
	}
	simURL := startTestSim(t, jobPlans{"pay": payPlan})
	addr := freePort(t)
	cfg, state := simDaemonConfig(t, addr, simURL, decl.String()+`
[executor]
max_concurrent_runs = 4
max_concurrent_steps = 4
`)
	d := startDaemon(t, cfg, addr)
	tokenBytes, err := os.ReadFile(filepath.Join(state, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	api := &crashClient{t: t, base: "http://" + addr, token: strings.TrimSpace(string(tokenBytes))}

	jobOf := map[string]string{} // run id -> job token
	var ids []string
	submit := func() {
		job := fmt.Sprintf("job-pay%02d", len(ids)+1)
		var r struct{ ID, Status string }
		if code := api.do("POST", "/api/v1/runs", map[string]any{"request": "settle the invoice of " + job, "planner": "local"}, &r); code != http.StatusCreated {
			t.Fatalf("submit %s: HTTP %d\n%s", job, code, d.logs)
		}
		ids = append(ids, r.ID)
		jobOf[r.ID] = job
	}
	for range initialRuns {
		submit()
	}

	var killTimes []time.Time
	midRun := 0
	for midRun < minMidRunKills && len(killTimes) < maxKills {
		// Kill within about one run's tool time after the last
		// submission, so most kills find work in flight.
		time.Sleep(time.Duration(50+rng.IntN(600)) * time.Millisecond)
		var page struct{ Runs []struct{ ID string } }
		api.do("GET", "/api/v1/runs?limit=200&status=queued,planning,running", nil, &page)
		if err := d.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		killTimes = append(killTimes, time.Now())
		_, _ = d.cmd.Process.Wait()
		if len(page.Runs) > 0 {
			midRun++
		}
		d = startDaemon(t, cfg, addr)
		for i := 0; i < 2 && midRun < minMidRunKills && len(ids) < maxRuns; i++ {
			submit()
		}
	}
	if midRun < minMidRunKills {
		t.Fatalf("only %d of %d kills landed while runs were unfinished; want %d", midRun, len(killTimes), minMidRunKills)
	}

	// Let it finish: every run must settle, none may stay queued or running.
	final := map[string]string{}
	deadline := time.Now().Add(45 * time.Second)
	for {
		settled := 0
		for _, id := range ids {
			var det struct{ Run struct{ Status string } }
			if code := api.do("GET", "/api/v1/runs/"+id, nil, &det); code != http.StatusOK {
				t.Fatalf("run %s (%s) is lost: HTTP %d", id, jobOf[id], code)
			}
			final[id] = det.Run.Status
			switch det.Run.Status {
			case "done", "review", "partial", "failed", "canceled":
				settled++
			}
		}
		if settled == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("runs stuck after the last restart: %v\n%s", final, d.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Nothing was made up either: the daemon holds exactly the runs submitted.
	var all struct{ Runs []struct{ ID string } }
	api.do("GET", "/api/v1/runs?limit=200", nil, &all)
	if len(all.Runs) != len(ids) {
		t.Errorf("the daemon lists %d runs; %d were submitted", len(all.Runs), len(ids))
	}

	inv := readInvocations(t, logFile)
	calls := map[string]int{} // tool|job|step -> invocations
	for _, c := range inv {
		calls[c.Tool+"|"+c.Job+"|"+c.Step]++
	}
	// Kills that landed while a tool child was inside its call.
	sleepOf := map[string]time.Duration{}
	for _, ct := range crashTools {
		sleepOf[ct.name] = ct.sleep
	}
	midTool := 0
	for _, k := range killTimes {
		for _, c := range inv {
			at := time.UnixMilli(c.At)
			if !k.Before(at) && k.Before(at.Add(sleepOf[c.Tool])) {
				midTool++
				break
			}
		}
	}

	outcomes := map[string]int{}
	reviewUncharged := 0 // the crash came after the call was recorded, before the child started
	for _, id := range ids {
		job, status := jobOf[id], final[id]
		outcomes[status]++
		charges := calls["charge_card|"+job+"|charge"]
		if charges > 1 {
			t.Errorf("run %s (%s): the non-idempotent charge_card ran %d times for step charge", id, job, charges)
		}
		switch status {
		case "done":
			if charges != 1 {
				t.Errorf("run %s (%s) is done but charge_card ran %d times", id, job, charges)
			}
			for _, k := range []string{"fetch_record|" + job + "|fetch", "audit_log|" + job + "|audit", "fetch_record|" + job + "|notify"} {
				if calls[k] < 1 {
					t.Errorf("run %s is done but %s never ran", id, k)
				}
			}
		case "review":
			if charges == 0 {
				reviewUncharged++
			}
			// Only an interrupted non-idempotent step may send a run to a
			// person.
			var det struct {
				Steps []struct {
					StepID string `json:"step_id"`
					Status string `json:"status"`
					Error  string `json:"error"`
				}
			}
			api.do("GET", "/api/v1/runs/"+id, nil, &det)
			for _, s := range det.Steps {
				if s.Status == "review" && (s.StepID != "charge" || !strings.Contains(s.Error, "restart")) {
					t.Errorf("run %s: step %s in review for another reason: %s", id, s.StepID, s.Error)
				}
			}
		default:
			t.Errorf("run %s (%s) ended %s; want done, or review after an interrupted charge", id, job, status)
		}
	}
	reruns := 0 // interrupted idempotent steps run again, as they may be
	for k, n := range calls {
		if strings.HasPrefix(k, "charge_card|") && n > 1 {
			t.Errorf("%s invoked %d times", k, n)
		}
		if n > 1 {
			reruns += n - 1
		}
	}
	t.Logf("crash loop (seed %d): %d kills (%d with runs unfinished, %d inside a tool call), %d runs: %v (%d reviews before the charge started), %d tool invocations (%d re-runs of idempotent steps), %s",
		seed, len(killTimes), midRun, midTool, len(ids), outcomes, reviewUncharged, len(inv), reruns, time.Since(start).Round(time.Second))
}

type invocation struct {
	Tool, Job, Step string
	PID             int
	At              int64
}

func readInvocations(t *testing.T, path string) []invocation {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no tool ever ran: %v", err)
	}
	var out []invocation
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var c invocation
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("invocation log line %q: %v", sc.Text(), err)
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

// crashClient calls the API with the token; it returns the HTTP status,
// 0 when the daemon did not answer.
type crashClient struct {
	t     *testing.T
	base  string
	token string
}

func (c *crashClient) do(method, path string, body, out any) int {
	c.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			c.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}
