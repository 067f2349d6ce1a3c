package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/fallback"
	"github.com/agentd/agentd/internal/ollamasim"
	ollama "github.com/ollama/ollama/api"
)

// jobPlans is a simulator script for agentd's planner: a planning request
// (format set) whose user message names "job-<name>" gets plans[name] with
// every JOB replaced by the job's token. Other requests get the
// simulator's default output.
type jobPlans map[string]string

var jobToken = regexp.MustCompile(`job-([a-z0-9]+)`)

func (p jobPlans) Respond(req *ollama.ChatRequest) (ollamasim.Reply, bool) {
	if len(req.Format) == 0 {
		return ollamasim.Reply{}, false
	}
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role != "user" {
			continue
		}
		m := jobToken.FindStringSubmatch(req.Messages[i].Content)
		if m == nil {
			return ollamasim.Reply{}, false
		}
		for kind, body := range p {
			if strings.HasPrefix(m[1], kind) {
				return ollamasim.Reply{Content: strings.ReplaceAll(body, "JOB", m[0])}, true
			}
		}
		return ollamasim.Reply{}, false
	}
	return ollamasim.Reply{}, false
}

// startTestSim runs an Ollama simulator in this test process for the test's
// duration; it outlives any daemon the test kills.
func startTestSim(t *testing.T, script ollamasim.Script) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sim := ollamasim.New(ollamasim.Config{Seed: 1, NumParallel: 8, Logger: slog.New(slog.DiscardHandler), Script: script})
	url, err := sim.Start(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = sim.Close() })
	return url
}

// simDaemonConfig is a config for a daemon on addr with its own state dir and
// the simulator behind its Ollama endpoint; extra is appended.
func simDaemonConfig(t *testing.T, addr, simURL, extra string) (cfgPath, stateDir string) {
	t.Helper()
	state := t.TempDir()
	return writeConfig(t, fmt.Sprintf(`
[server]
listen = %q
shutdown_timeout = "5s"
[storage]
state_dir = %q
[vram]
probe = "none"
[planner]
mode = "local"
[[ollama.endpoints]]
name = "sim"
url = %q
parallel_slots = 4
max_queue = 64
%s
`, addr, state, simURL, extra)), state
}

var (
	countToolOnce sync.Once
	countToolPath string
	countToolErr  error
)

// countTool builds testdata/counttool next to the agentd binary.
func countTool(t *testing.T) string {
	t.Helper()
	countToolOnce.Do(func() {
		countToolPath = filepath.Join(filepath.Dir(agentdBin), "counttool")
		out, err := exec.Command("go", "build", "-o", countToolPath, "./testdata/counttool").CombinedOutput()
		if err != nil {
			countToolErr = fmt.Errorf("build counttool: %v\n%s", err, out)
		}
	})
	if countToolErr != nil {
		t.Fatal(countToolErr)
	}
	return countToolPath
}

// commandTool declares a counttool-backed command tool in TOML.
func commandTool(bin, logFile, name string, idempotent bool, approval string, sleep time.Duration) string {
	return fmt.Sprintf(`
[[tools.command]]
name = %q
description = "Record the %s step of a job"
argv = [%q, "-log", %q, "-name", %q, "-sleep", %q]
idempotent = %v
approval = %q
concurrency = 8
timeout = "30s"
args_schema = { type = "object", required = ["job", "step"], properties = { job = { type = "string" }, step = { type = "string" } } }
`, name, name, bin, logFile, name, sleep.String(), idempotent, approval)
}

const calcPlan = `{"goal":"compute for JOB","steps":[
 {"id":"sum","tool":"calc","args":{"expression":"17*3"}},
 {"id":"explain","task":"Explain what ${sum} means for JOB","tools":["calc"],"tier":"fast","depends_on":["sum"]},
 {"id":"check","tool":"calc","args":{"expression":"51-1"},"depends_on":["sum","explain"]}
],"answer":"Report ${sum}"}`

func TestPlanCommandOnSimulator(t *testing.T) {
	simURL := startTestSim(t, jobPlans{"calc": calcPlan})
	cfg, state := simDaemonConfig(t, freePort(t), simURL, "")

	out, code := run(t, nil, "plan", "what is 17 times 3 for job-calc1", "--config", cfg)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"Route:    local", "Why:", "local planner chosen by config",
		"sum [tool] tool calc", `args: {"expression":"17*3"}`,
		"explain [task] tier fast", "task: Explain what ${sum} means for job-calc1", "tools: calc",
		"check [tool] tool calc", "also after: sum", "Answer:   Report ${sum}", "Nothing was run.",
		"1 planner call", "3 steps",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	// The tree: explain hangs under sum, check under explain.
	if !regexp.MustCompile(`(?s)└─ sum.*\n   └─ explain.*\n      └─ check`).MatchString(out) {
		t.Errorf("steps are not drawn as a tree:\n%s", out)
	}
	// A preview touches no state: no database, no lock, no token.
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("plan wrote to the state dir: %v", ents)
	}

	out, code = run(t, nil, "plan", "--json", "--config", cfg, "what is 17 times 3 for job-calc2")
	var got planOutput
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("plan --json: exit %d\n%s", code, out)
	}
	if got.Route != "local" || got.Plan == nil || len(got.Plan.Steps) != 3 || got.Plan.Steps[1].Kind() != "task" ||
		got.PlannerCalls != 1 || len(got.Reasons) == 0 || got.Error != "" {
		t.Errorf("plan --json = %+v", got)
	}

	// A known workflow: the template is the plan, no planner call.
	wcfg, _ := simDaemonConfig(t, freePort(t), simURL, `
[[workflows]]
name = "daily_sum"
keywords = ["daily sum"]
answer = "Report ${total}"
[[workflows.steps]]
id = "total"
tool = "calc"
args = { expression = "2+2" }
`)
	out, code = run(t, nil, "plan", "--config", wcfg, "--json", "run the daily sum please")
	got = planOutput{}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("plan (workflow): exit %d\n%s", code, out)
	}
	if got.Route != "template" || got.Workflow != "daily_sum" || got.Source != "template" || got.PlannerCalls != 0 ||
		got.Plan == nil || len(got.Plan.Steps) != 1 || got.Plan.Steps[0].Tool != "calc" {
		t.Errorf("plan (workflow) = %+v", got)
	}
	out, code = run(t, nil, "plan", "--config", wcfg, "--workflow", "nightly", "anything")
	if code != 1 || !strings.Contains(out, `no workflow is named "nightly"`) {
		t.Errorf("plan --workflow unknown: exit %d\n%s", code, out)
	}
}

func TestPlanCommandOperatorErrors(t *testing.T) {
	simURL := startTestSim(t, jobPlans{"calc": calcPlan})
	tests := []struct {
		name, url, extra string
		code             int
		want             []string
	}{
		{"ollama down", "http://127.0.0.1:1", "", 1, []string{"ollama not reachable at http://127.0.0.1:1", "is `ollama serve` running?"}},
		{"model missing", simURL, "[models]\nplanner = \"nosuch:7b\"\n", 1, []string{"ollama pull nosuch:7b"}},
		{"no request", simURL, "", 2, []string{"usage: agentd plan"}},
		{"bad planner", simURL, "", 2, []string{"--planner is \"cloud\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := simDaemonConfig(t, freePort(t), tt.url, tt.extra)
			args := []string{"plan", "--config", cfg, "compute job-calc3"}
			switch tt.name {
			case "no request":
				args = args[:3]
			case "bad planner":
				args = append(args, "--planner", "cloud")
			}
			out, code := run(t, nil, args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

const shipPlan = `{"goal":"ship JOB","steps":[
 {"id":"ship","tool":"ship_order","args":{"job":"JOB","step":"ship"}}
],"answer":"Say JOB shipped"}`

func TestClientCommandsAgainstDaemon(t *testing.T) {
	bin := countTool(t)
	logFile := filepath.Join(t.TempDir(), "calls.jsonl")
	badPlan := `{"goal":"JOB","steps":[{"id":"a","tool":"no_such_tool","args":{}}],"answer":"x"}`
	simURL := startTestSim(t, jobPlans{"calc": calcPlan, "ship": shipPlan, "bad": badPlan})
	addr := freePort(t)
	cfg, state := simDaemonConfig(t, addr, simURL, commandTool(bin, logFile, "ship_order", false, "required", 10*time.Millisecond))
	startDaemon(t, cfg, addr)
	c := []string{"--config", cfg}
	runOK := func(args ...string) string {
		t.Helper()
		out, code := run(t, nil, append(args, c...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, out)
		}
		return out
	}

	// submit --wait prints the run and its answer; exit 0 when done.
	out := runOK("submit", "--wait", "compute 17*3 for job-calc1")
	m := regexp.MustCompile(`run (\S+) done`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("submit --wait: %s", out)
	}
	calcID := m[1]

	// A run that fails: exit 1, its status and where to look.
	out, code := run(t, nil, append([]string{"submit", "--wait", "do job-bad1"}, c...)...)
	if code != 1 || !regexp.MustCompile(`ended failed: .*— see `+"`agentd run r_").MatchString(out) {
		t.Errorf("submit --wait of a failing run: exit %d\n%s", code, out)
	}

	// run ID shows steps with kinds, tools and statuses.
	out = runOK("run", calcID)
	for _, want := range []string{"Run:      " + calcID, "Status:   done", "sum", "calc", "explain", "task", "check", "Tool calls:", "Answer:"} {
		if !strings.Contains(out, want) {
			t.Errorf("run %s lacks %q:\n%s", calcID, want, out)
		}
	}
	if !regexp.MustCompile(`check\s+tool\s+calc\s+done\s+1\s+sum,explain`).MatchString(out) {
		t.Errorf("run: step row for check is wrong:\n%s", out)
	}

	// submit without --wait answers at once with the id; the step waits
	// for approval; approve lets it run.
	out = runOK("submit", "ship it: job-ship1")
	shipID := strings.Fields(out)[0]
	pollUntil(t, "approval of "+shipID, func() bool { return strings.Contains(runOK("approvals"), shipID) })
	out = runOK("approve", shipID, "ship", "--reason", "checked by the test")
	if !strings.Contains(out, "approved step ship of run "+shipID) {
		t.Errorf("approve: %s", out)
	}
	pollUntil(t, shipID+" done", func() bool { return strings.Contains(runOK("run", shipID), "Status:   done") })
	if b, _ := os.ReadFile(logFile); strings.Count(string(b), "job-ship1") != 1 {
		t.Errorf("approved tool ran %d times, want 1:\n%s", strings.Count(string(b), "job-ship1"), b)
	}
	// Deciding again is a conflict or gone: the API's reason, exit 1.
	out, code = run(t, nil, append([]string{"deny", shipID, "ship"}, c...)...)
	if code != 1 || !strings.Contains(out, "step ship of run "+shipID+" is not waiting for approval (404") {
		t.Errorf("second decision: exit %d\n%s", code, out)
	}

	// Deny: the tool never runs.
	out = runOK("submit", "ship job-ship2", "--json")
	var denied struct{ ID string }
	if err := json.Unmarshal([]byte(out), &denied); err != nil || denied.ID == "" {
		t.Fatalf("submit --json: %v\n%s", err, out)
	}
	pollUntil(t, "approval of "+denied.ID, func() bool { return strings.Contains(runOK("approvals"), denied.ID) })
	runOK("deny", denied.ID, "ship", "--reason", "not today")
	pollUntil(t, denied.ID+" settled", func() bool {
		o := runOK("run", denied.ID)
		return !strings.Contains(o, "Status:   waiting_approval") && !strings.Contains(o, "Status:   running")
	})
	if b, _ := os.ReadFile(logFile); strings.Contains(string(b), "job-ship2") {
		t.Errorf("denied tool ran:\n%s", b)
	}

	// Cancel a run that waits for approval; cancelling it again is 409.
	out = runOK("submit", "ship job-ship3")
	cancelID := strings.Fields(out)[0]
	pollUntil(t, "approval of "+cancelID, func() bool { return strings.Contains(runOK("approvals"), cancelID) })
	if out := runOK("cancel", cancelID); !strings.Contains(out, "canceled run "+cancelID) {
		t.Errorf("cancel: %s", out)
	}
	pollUntil(t, cancelID+" canceled", func() bool { return strings.Contains(runOK("run", cancelID), "Status:   canceled") })
	out, code = run(t, nil, append([]string{"cancel", cancelID}, c...)...)
	if code != 1 || !strings.Contains(out, "run "+cancelID+" cannot be canceled (409: run already finished (canceled))") {
		t.Errorf("cancel of a finished run: exit %d\n%s", code, out)
	}

	// runs: a table, filtered and limited.
	out = runOK("runs", "--status", "done")
	if !strings.HasPrefix(out, "ID") || !strings.Contains(out, calcID) || !strings.Contains(out, shipID) || strings.Contains(out, cancelID) {
		t.Errorf("runs --status done:\n%s", out)
	}
	if out := runOK("runs", "--limit", "1"); strings.Count(strings.TrimSpace(out), "\n") != 1 || !strings.Contains(out, cancelID) {
		t.Errorf("runs --limit 1 (newest first):\n%s", out)
	}

	// Errors the operator can act on.
	token, _ := os.ReadFile(filepath.Join(state, "api.token"))
	errCases := []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"unknown run", nil, []string{"run", "no-such-run"}, 1, "no-such-run"},
		{"bad status", nil, []string{"runs", "--status", "bogus"}, 1, "not a run status"},
		{"bad token flag", nil, []string{"runs", "--token", "wrong"}, 1, "`agentd token`"},
		{"bad token env", []string{"AGENTD_TOKEN=wrong"}, []string{"runs"}, 1, "refused the API token (401)"},
		{"good token env, no token file", []string{"AGENTD_TOKEN=" + strings.TrimSpace(string(token))},
			[]string{"runs", "--config", writeConfig(t, fmt.Sprintf("[server]\nlisten = %q\n[storage]\nstate_dir = %q\n", addr, t.TempDir()))}, 0, calcID},
		{"no token file", nil, []string{"runs", "--config", writeConfig(t, fmt.Sprintf("[server]\nlisten = %q\n[storage]\nstate_dir = %q\n", addr, t.TempDir()))}, 1, "start agentd once"},
		{"approve usage", nil, []string{"approve", shipID}, 2, "usage: agentd approve"},
		{"unknown approval", nil, []string{"approve", calcID, "sum"}, 1, calcID},
	}
	for _, tt := range errCases {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if !strings.Contains(strings.Join(args, " "), "--config") {
				args = append(args, c...)
			}
			out, code := run(t, tt.env, args...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d (want %d), output lacks %q:\n%s", code, tt.code, tt.want, out)
			}
		})
	}
}

func TestClientCommandsWithoutDaemon(t *testing.T) {
	addr := freePort(t)
	cfg, _ := baseConfig(t, addr)
	for _, args := range [][]string{{"runs", "--token", "x"}, {"submit", "--token", "x", "hello"}, {"cancel", "--token", "x", "r1"}} {
		out, code := run(t, nil, append(args, "--config", cfg)...)
		want := "agentd is not answering on http://" + addr + " — start it with `agentd serve` or `sudo systemctl start agentd`"
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
}

func TestExportCommands(t *testing.T) {
	addr := freePort(t)
	cfg, state := baseConfig(t, addr)
	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(state, "agentd.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ledger := fallback.NewLedger(store, nil)
	for i, dest := range []string{"api.openai.com", "api.anthropic.com"} {
		id, err := ledger.Begin(ctx, fallback.Egress{RunID: fmt.Sprintf("r%d", i), Destination: dest, Provider: "openai",
			Model: "gpt-4.1-mini", Purpose: "plan", Body: []byte("redacted body"), Redactions: map[string]int{"EMAIL": 1}})
		if err != nil {
			t.Fatal(err)
		}
		if err := ledger.Finish(ctx, id, 100, "ok"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []db.FinetuneCandidate{
		{RunID: "r0", SystemPrompt: "You plan.", Request: "plan this", RemotePlan: `{"goal":"g","steps":[]}`, Reason: "local_failed"},
		{RunID: "r1", Request: "refused at a cap", Reason: "cap"},
	} {
		if _, err := store.InsertFinetune(ctx, &c); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()
	// Beside a running daemon that holds the database.
	startDaemon(t, cfg, addr)

	out, code := run(t, nil, "export", "egress", "--since", "7d", "--config", cfg)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("export egress: exit %d\n%s", code, out)
	}
	var rec db.EgressRecord
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil || rec.Destination != "api.anthropic.com" || rec.SHA256 != fallback.BodyHash([]byte("redacted body")) {
		t.Errorf("jsonl record: %v %+v", err, rec)
	}

	csvPath := filepath.Join(t.TempDir(), "egress.csv")
	out, code = run(t, nil, "export", "egress", "--since", "2026-01-01", "--format", "csv", "--out", csvPath, "--config", cfg)
	if code != 0 || !strings.Contains(out, "wrote 2 egress records to "+csvPath) {
		t.Fatalf("export egress csv: exit %d\n%s", code, out)
	}
	f, _ := os.Open(csvPath)
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 3 || rows[0][0] != "id" || rows[1][3] != "api.openai.com" || rows[1][10] != "EMAIL=1" {
		t.Errorf("csv: %v %q", err, rows)
	}
	if st, err := os.Stat(csvPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("export file mode: %v %v", st, err)
	}

	out, code = run(t, nil, "export", "egress", "--since", time.Now().Add(time.Hour).Format(time.RFC3339), "--config", cfg)
	if code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("export egress from the future: exit %d %q", code, out)
	}

	out, code = run(t, nil, "export", "finetune", "--config", cfg)
	var line struct {
		Messages []struct{ Role, Content string }
	}
	if code != 0 || strings.Count(strings.TrimSpace(out), "\n") != 0 || json.Unmarshal([]byte(out), &line) != nil ||
		len(line.Messages) != 3 || line.Messages[2].Role != "assistant" || !strings.Contains(line.Messages[2].Content, `"goal"`) {
		t.Errorf("export finetune: exit %d\n%s", code, out)
	}

	for _, args := range [][]string{
		{"export"}, {"export", "ledger"}, {"export", "egress", "--since", "last tuesday"}, {"export", "egress", "--format", "xml"},
	} {
		if out, code := run(t, nil, append(args, "--config", cfg)...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, out)
		}
	}
	missing := writeConfig(t, fmt.Sprintf("[storage]\nstate_dir = %q\n", t.TempDir()))
	if out, code := run(t, nil, "export", "finetune", "--config", missing); code != 1 || !strings.Contains(out, "no database at") {
		t.Errorf("export without a database: exit %d\n%s", code, out)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"", time.Time{}, false},
		{"2026-01-01", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"2026-01-02T03:04:05Z", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), false},
		{"7d", now.AddDate(0, 0, -7), false},
		{"2w", now.AddDate(0, 0, -14), false},
		{"36h", now.Add(-36 * time.Hour), false},
		{"yesterday", time.Time{}, true},
		{"-3d", time.Time{}, true},
		{"2026-13-01", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := parseSince(tt.in, now)
		if (err != nil) != tt.bad || !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestParseMixed(t *testing.T) {
	m := &Main{Stderr: &strings.Builder{}}
	fs, _ := m.flags("x")
	j := fs.Bool("json", false, "")
	r := fs.String("reason", "", "")
	pos, err := parseMixed(fs, []string{"run1", "--json", "step1", "--reason", "ok then", "--", "--literal"})
	if err != nil || !*j || *r != "ok then" || strings.Join(pos, "|") != "run1|step1|--literal" {
		t.Errorf("parseMixed = %q %v json=%v reason=%q", pos, err, *j, *r)
	}
}

// pollUntil polls cond for up to 20 s (generous: a loaded 2-core machine).
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// A blank request says what is missing and how to give it, before any
// daemon is asked.
func TestSubmitEmptyRequestSaysWhatToDo(t *testing.T) {
	out, code := run(t, nil, "submit", "")
	if code != 2 || !strings.Contains(out, "the request is empty") || !strings.Contains(out, "--workflow") {
		t.Errorf("exit %d, output %q", code, out)
	}
}

// The CLI finds the running daemon by itself: with the demo running on its
// own state dir and token, `agentd token` prints the demo's token and
// `agentd runs` is accepted, with no --addr or --token; once the demo stops,
// the commands say what to start.
func TestCLIFindsTheRunningDemo(t *testing.T) {
	home := t.TempDir()
	addr := freePort(t)
	// The config the CLI finds names another state dir and port, as a
	// normal install's would.
	other := writeConfig(t, fmt.Sprintf("[server]\nlisten = %q\n[storage]\nstate_dir = %q\n", freePort(t), t.TempDir()))
	env := []string{"HOME=" + home, "XDG_STATE_HOME=" + filepath.Join(home, "state"), "AGENTD_CONFIG=" + other, "AGENTD_TOKEN="}
	demo := exec.Command(agentdBin, "demo", "--listen", addr, "--time-scale", "0")
	demo.Env = append(os.Environ(), env...)
	logs := &strings.Builder{}
	demo.Stdout, demo.Stderr = logs, logs
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = demo.Process.Kill(); _, _ = demo.Process.Wait() })
	pollUntil(t, "the demo's discovery file", func() bool {
		_, err := os.Stat(filepath.Join(home, "state", "agentd-demo", "daemon.json"))
		return err == nil
	})

	want, err := os.ReadFile(filepath.Join(home, "state", "agentd-demo", "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	out, code := run(t, env, "token")
	if code != 0 || !strings.HasPrefix(out, "agentd token: the running DEMO's token (http://"+addr+",") || !strings.Contains(out, strings.TrimSpace(string(want))) {
		t.Errorf("token: exit %d, want the demo's token %s:\n%s", code, want, out)
	}
	if out, code := run(t, env, "runs"); code != 0 {
		t.Errorf("runs against the demo: exit %d\n%s", code, out)
	}

	if err := demo.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	_, _ = demo.Process.Wait()
	if _, err := os.Stat(filepath.Join(home, "state", "agentd-demo", "daemon.json")); !os.IsNotExist(err) {
		t.Errorf("discovery file left after a clean stop (%v):\n%s", err, logs)
	}
	out, code = run(t, env, "runs")
	if code != 1 || !strings.Contains(out, "agentd is not answering") || !strings.Contains(out, "agentd demo") {
		t.Errorf("runs with nothing running: exit %d\n%s", code, out)
	}
}
