package daemon

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/ollamatest"
	"github.com/agentd/agentd/internal/run"
	"github.com/agentd/agentd/internal/vram"
)

// The conformance suite: the whole daemon, through its public HTTP API,
// against the real Ollama server (internal/ollamatest), with every built-in
// tool and config tools enabled. The tiny model says noise, so what is
// asserted is what must hold whatever a model says: every run ends (done,
// partial, failed or review) within a bound, with a reason a person can
// read; the server never sees a schema it cannot turn into a grammar; and
// every path a user takes reaches the server and comes back.

// runBound is how long one run may take on a loaded 2-core machine before
// it counts as stuck.
const runBound = 4 * time.Minute

type realAgent struct {
	t     *testing.T
	d     *Daemon
	url   string
	token string
	srv   *ollamatest.Server
}

// realConfig enables every built-in tool and a config HTTP tool, with every
// model role on the tiny model: the plain one where tool calls must go
// through schema-constrained selection, the tools-capable one for native
// tool calls.
func realConfig(t *testing.T, ollamaURL string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	files := filepath.Join(dir, "files")
	docs := filepath.Join(dir, "docs")
	for _, d := range []string{files, docs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.WriteFile(filepath.Join(files, "note.txt"), []byte("the pump in bay 3 was serviced on 2026-11-02\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(docs, "pumps.md"), []byte("# Pumps\n\nBay 3 pump: service every 90 days. Spare seals in cabinet B.\n"), 0o644))
	dbPath := filepath.Join(dir, "stock.db")
	sdb, err := sql.Open("sqlite", dbPath)
	must(t, err)
	_, err = sdb.Exec(`CREATE TABLE stock(sku TEXT, qty INTEGER); INSERT INTO stock VALUES ('W-100', 7), ('W-200', 0);`)
	must(t, err)
	must(t, sdb.Close())
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"sku": %q, "warehouse": "east", "qty": 7}`, r.URL.Query().Get("sku"))
	}))
	t.Cleanup(api.Close)

	cfg := config.Default()
	cfg.Storage.StateDir = filepath.Join(dir, "state")
	cfg.VRAM.Probe = "none"
	cfg.Ollama.Endpoints = []config.EndpointConfig{{Name: "real", URL: ollamaURL, ParallelSlots: 1}}
	cfg.Ollama.RequestTimeout = config.Duration(runBound)
	cfg.Ollama.RetryBackoff = config.Duration(50 * time.Millisecond)
	cfg.Models = config.ModelsConfig{Router: ollamatest.Plain, Planner: ollamatest.Plain, Fast: ollamatest.Tools,
		Standard: ollamatest.Plain, Summarizer: ollamatest.Plain, Validator: ollamatest.Plain, Embedding: ollamatest.Plain,
		KeepAlive: config.Duration(10 * time.Minute)}
	cfg.Planner.Timeout = config.Duration(runBound)
	cfg.Executor.StepTimeout = config.Duration(runBound)
	cfg.Tools.Files.Roots = []string{files}
	cfg.Tools.Docs.Folders = []string{docs}
	cfg.Tools.SQLite.Databases = []config.NamedPath{{Name: "stock", Path: dbPath}}
	cfg.Tools.HTTP.Enabled = true
	cfg.Tools.HTTP.AllowHosts = []string{"127.0.0.1"}
	cfg.Tools.HTTPTool = []config.HTTPToolConfig{{Name: "stock_api", Description: "Stock level of a SKU.", Method: "GET",
		URL: api.URL + "/stock?sku={sku}", Idempotent: true, ArgsSchema: map[string]any{"type": "object",
			"properties": map[string]any{"sku": map[string]any{"type": "string", "pattern": "^[A-Z]-\\d+$", "maxLength": 5000}},
			"required":   []any{"sku"}}}}
	cfg.Tools.Command = []config.CommandToolConfig{{Name: "echo_args", Description: "Echoes its arguments.",
		Argv: []string{echoTool(t), "echo"}, Idempotent: true, ArgsSchema: map[string]any{"type": "object",
			"properties": map[string]any{"text": map[string]any{"type": "string", "maxLength": 9000, "pattern": "^\\S+$"}},
			"required":   []any{"text"}}}}
	cfg.Tools.Approval = map[string]string{"stock_api": "required"}
	step := func(id, tool string, args map[string]any) config.WorkflowStep {
		return config.WorkflowStep{ID: id, Tool: tool, Args: args}
	}
	cfg.Workflows = []config.WorkflowConfig{
		{Name: "every_tool", Description: "Every built-in tool once.", Answer: "Summarise the results.", Steps: []config.WorkflowStep{
			step("sum", "calc", map[string]any{"expression": "17*3"}),
			step("time", "now", map[string]any{"timezone": "UTC"}),
			step("ls", "list_dir", map[string]any{"path": "."}),
			step("note", "read_file", map[string]any{"path": "note.txt"}),
			step("docs", "search_docs", map[string]any{"query": "bay 3 pump service"}),
			step("rows", "sqlite_query", map[string]any{"sql": "SELECT sku, qty FROM stock ORDER BY sku"}),
			step("echo", "echo_args", map[string]any{"text": "bay-3"}),
		}},
		{Name: "native_tools", Description: "A task step with native tool calls.", Steps: []config.WorkflowStep{
			{ID: "t", Task: "Compute 17 times 3 with the calculator.", Tools: []string{"calc"}, Tier: "fast"}}},
		{Name: "selected_tools", Description: "A task step with schema-constrained tool selection.", Steps: []config.WorkflowStep{
			{ID: "t", Task: "Look up the stock of SKU W-100.", Tools: []string{"sqlite_query", "calc"}, Tier: "standard"}}},
		{Name: "approval", Description: "A tool that needs a person's approval.", Steps: []config.WorkflowStep{
			step("stock", "stock_api", map[string]any{"sku": "W-100"})}},
		{Name: "scratch", Description: "The scratchpad loop.", Mode: "scratchpad", Steps: []config.WorkflowStep{
			step("x", "calc", map[string]any{"expression": "1+1"})}},
	}
	return cfg
}

var (
	echoToolOnce sync.Once
	echoToolPath string
	echoToolErr  error
)

// echoTool builds the command tools' test child (internal/tools/testdata)
// once per test binary: a config command tool is a real child process.
func echoTool(t *testing.T) string {
	t.Helper()
	echoToolOnce.Do(func() {
		dir, err := os.MkdirTemp("", "agentd-echotool-")
		if err != nil {
			echoToolErr = err
			return
		}
		echoToolPath = filepath.Join(dir, "echotool")
		out, err := osexec.Command("go", "build", "-o", echoToolPath, "../tools/testdata/echotool").CombinedOutput()
		if err != nil {
			echoToolErr = fmt.Errorf("build echotool: %v\n%s", err, out)
		}
	})
	if echoToolErr != nil {
		t.Fatal(echoToolErr)
	}
	return echoToolPath
}

func startReal(t *testing.T, srv *ollamatest.Server, cfg *config.Config) *realAgent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	d, err := New(ctx, cfg, Options{Listener: ln}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	tok, err := os.ReadFile(d.paths.TokenFile)
	must(t, err)
	a := &realAgent{t: t, d: d, url: "http://" + ln.Addr().String(), token: strings.TrimSpace(string(tok)), srv: srv}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(a.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return a
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("daemon not ready")
	return nil
}

func (a *realAgent) call(method, path string, body any, out any) int {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.url+path, r)
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

type apiRun struct {
	ID     string     `json:"id"`
	Status run.Status `json:"status"`
	Error  string     `json:"error"`
	Answer string     `json:"answer"`
}

func (a *realAgent) submit(body map[string]any) string {
	a.t.Helper()
	var r apiRun
	if code := a.call(http.MethodPost, "/api/v1/runs", body, &r); code/100 != 2 || r.ID == "" {
		a.t.Fatalf("submit %v: %d %+v", body, code, r)
	}
	return r.ID
}

func (a *realAgent) get(id string) apiRun {
	var detail struct {
		Run apiRun `json:"run"`
		apiRun
	}
	a.call(http.MethodGet, "/api/v1/runs/"+id, nil, &detail)
	if detail.Run.ID != "" {
		return detail.Run
	}
	return detail.apiRun
}

// wait polls the run until it ends, approving what waits for approval.
func (a *realAgent) wait(id string) apiRun {
	a.t.Helper()
	deadline := time.Now().Add(runBound)
	for time.Now().Before(deadline) {
		r := a.get(id)
		switch r.Status {
		case run.Done, run.Partial, run.Failed, run.Review, run.Canceled:
			return r
		case run.WaitingApproval:
			var list []struct {
				RunID  string `json:"run_id"`
				StepID string `json:"step_id"`
			}
			var wrapped struct {
				Approvals []struct {
					RunID  string `json:"run_id"`
					StepID string `json:"step_id"`
				} `json:"approvals"`
			}
			var raw json.RawMessage
			a.call(http.MethodGet, "/api/v1/approvals", nil, &raw)
			if json.Unmarshal(raw, &list) != nil || len(list) == 0 {
				_ = json.Unmarshal(raw, &wrapped)
				for _, w := range wrapped.Approvals {
					list = append(list, struct {
						RunID  string `json:"run_id"`
						StepID string `json:"step_id"`
					}{w.RunID, w.StepID})
				}
			}
			for _, p := range list {
				if p.RunID == id {
					a.call(http.MethodPost, "/api/v1/approvals/"+p.RunID+"/"+p.StepID, map[string]any{"decision": "approve"}, nil)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.t.Fatalf("run %s did not end within %s: %+v", id, runBound, a.get(id))
	return apiRun{}
}

// ended checks that a run ended with a status and a reason a person reads.
func (a *realAgent) ended(name string, r apiRun) {
	a.t.Helper()
	switch r.Status {
	case run.Done:
		if strings.TrimSpace(r.Answer) == "" {
			a.t.Errorf("%s: done with an empty answer", name)
		}
	case run.Partial, run.Failed, run.Review:
		if strings.TrimSpace(r.Error) == "" && strings.TrimSpace(r.Answer) == "" {
			a.t.Errorf("%s: ended %s with no reason", name, r.Status)
		}
		for _, bad := range []string{"panic", "runtime error", "nil pointer"} {
			if strings.Contains(r.Error, bad) {
				a.t.Errorf("%s: %s: %s", name, r.Status, r.Error)
			}
		}
	default:
		a.t.Errorf("%s: ended %s (%s)", name, r.Status, r.Error)
	}
}

// noGrammarFailures: the server never met a schema it could not turn into
// a grammar, and never died.
func (a *realAgent) noGrammarFailures() {
	a.t.Helper()
	if !a.srv.Up() {
		a.t.Error("the Ollama server died")
	}
	log := a.srv.LogText()
	for _, bad := range []string{"failed to parse grammar", "invalid JSON schema", "model runner has unexpectedly stopped"} {
		if strings.Contains(log, bad) {
			a.t.Errorf("the Ollama server logged %q", bad)
		}
	}
}

func TestRealEveryPath(t *testing.T) {
	srv := ollamatest.Start(t)
	a := startReal(t, srv, realConfig(t, srv.URL))
	// The docs folder is indexed with real embeddings in the background;
	// until then search_docs says so.
	waitUntil(t, "the docs folder is indexed", func() bool {
		files, err := a.d.Store.DocFiles(context.Background())
		return err == nil && len(files) > 0
	})

	cases := []struct {
		name string
		body map[string]any
		// wantDone: paths whose outcome does not depend on what the model
		// says (tool steps only; the summarizer's noise is still an answer).
		wantDone bool
	}{
		{"every built-in tool, then the summarizer", map[string]any{"request": "status of bay 3", "workflow": "every_tool"}, true},
		{"approval", map[string]any{"request": "stock of W-100", "workflow": "approval"}, true},
		{"task step with native tool calls", map[string]any{"request": "17 times 3", "workflow": "native_tools"}, false},
		{"task step with schema-constrained selection", map[string]any{"request": "stock of W-100", "workflow": "selected_tools"}, false},
		{"scratchpad", map[string]any{"request": "what is 1+1?", "workflow": "scratch"}, false},
		{"the planner, every tool in its schema", map[string]any{"request": "What is 17% of 2,340?"}, false},
		{"the planner, replying in a hurry", map[string]any{"request": "hi there"}, false},
	}
	ids := make([]string, len(cases))
	for i, c := range cases {
		ids[i] = a.submit(c.body)
	}
	for i, c := range cases {
		r := a.wait(ids[i])
		t.Logf("%s: %s %q", c.name, r.Status, oneLineReason(r))
		a.ended(c.name, r)
		if c.wantDone && r.Status != run.Done {
			t.Errorf("%s: %s (%s), want done: its steps do not depend on the model's words", c.name, r.Status, r.Error)
		}
		calls, err := a.d.Store.RunModelCalls(context.Background(), ids[i])
		must(t, err)
		if c.name != "approval" && len(calls) == 0 {
			t.Errorf("%s: no model call recorded", c.name)
		}
	}
	// The docs tool found the document through real embeddings.
	steps, err := a.d.Store.RunSteps(context.Background(), ids[0])
	must(t, err)
	for _, s := range steps {
		if s.StepID == "docs" && !strings.Contains(s.Output, "pumps.md") {
			t.Errorf("search_docs output %q does not name the document", s.Output)
		}
		if s.StepID == "rows" && !strings.Contains(s.Output, "W-100") {
			t.Errorf("sqlite_query output %q", s.Output)
		}
		if s.StepID == "echo" && !strings.Contains(s.Output, "bay-3") {
			t.Errorf("the command tool's output %q", s.Output)
		}
	}
	a.noGrammarFailures()
}

func oneLineReason(r apiRun) string {
	s := r.Error
	if s == "" {
		s = r.Answer
	}
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(runBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRealOpenAIEndpoint: agentd's OpenAI-compatible endpoint, streaming
// and not, runs a workflow on the real server and answers in OpenAI's
// shapes.
func TestRealOpenAIEndpoint(t *testing.T) {
	srv := ollamatest.Start(t)
	a := startReal(t, srv, realConfig(t, srv.URL))
	var resp struct {
		Object  string `json:"object"`
		Choices []struct {
			Message struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	code := a.call(http.MethodPost, "/v1/chat/completions", map[string]any{"model": "agentd:native_tools",
		"messages": []map[string]string{{"role": "user", "content": "17 times 3"}}}, &resp)
	if code != http.StatusOK || resp.Object != "chat.completion" || len(resp.Choices) != 1 ||
		resp.Choices[0].Message.Role != "assistant" || resp.Choices[0].Message.Content == "" {
		t.Errorf("non-streaming: %d %+v", code, resp)
	}

	b, _ := json.Marshal(map[string]any{"model": "agentd:every_tool", "stream": true,
		"messages": []map[string]string{{"role": "user", "content": "status of bay 3"}}})
	req, _ := http.NewRequest(http.MethodPost, a.url+"/v1/chat/completions", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+a.token)
	sresp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer sresp.Body.Close()
	body, _ := io.ReadAll(sresp.Body)
	text := string(body)
	if sresp.StatusCode != http.StatusOK || !strings.Contains(sresp.Header.Get("Content-Type"), "text/event-stream") ||
		!strings.Contains(text, `"chat.completion.chunk"`) || !strings.HasSuffix(strings.TrimSpace(text), "data: [DONE]") {
		t.Errorf("streaming: %d %s\n%s", sresp.StatusCode, sresp.Header.Get("Content-Type"), tailText(text, 600))
	}
	a.noGrammarFailures()
}

// TestRealMissingModelAndKilledServer: a model that is not pulled fails
// the run with the command that fixes it; a server killed in the middle of
// a run fails that run with a reason; once the server is back, agentd runs
// again without being restarted.
func TestRealMissingModelAndKilledServer(t *testing.T) {
	srv := ollamatest.Start(t)
	cfg := realConfig(t, srv.URL)
	cfg.Workflows = append(cfg.Workflows,
		config.WorkflowConfig{Name: "missing", Description: "A step on a model that is not pulled.", Steps: []config.WorkflowStep{
			{ID: "t", Task: "Say hello.", Tier: "standard"}}},
		config.WorkflowConfig{Name: "long", Description: "A long task.", Steps: []config.WorkflowStep{
			{ID: "t", Task: "Write a long story.", Tier: "fast"}}})
	cfg.Models.Standard = "not-pulled"
	a := startReal(t, srv, cfg)

	r := a.wait(a.submit(map[string]any{"request": "hello", "workflow": "missing"}))
	a.ended("missing model", r)
	if r.Status == run.Done || !strings.Contains(r.Error+r.Answer, "ollama pull not-pulled") {
		t.Errorf("missing model: %s %q, want the run not done and `ollama pull not-pulled` in its reason", r.Status, r.Error+r.Answer)
	}

	id := a.submit(map[string]any{"request": "a story", "workflow": "long"})
	waitUntil(t, "the long task is running", func() bool {
		steps, _ := a.d.Store.RunSteps(context.Background(), id)
		return len(steps) == 1 && steps[0].Status == run.StepRunning
	})
	time.Sleep(300 * time.Millisecond) // into the model's reply
	srv.Kill()
	r = a.wait(id)
	a.ended("server killed mid-run", r)
	t.Logf("server killed mid-run: %s %q", r.Status, oneLineReason(r))

	must(t, srv.Restart())
	r = a.wait(a.submit(map[string]any{"request": "status of bay 3", "workflow": "every_tool"}))
	if r.Status != run.Done {
		t.Errorf("after the server came back: %s %q, want done without restarting agentd", r.Status, r.Error)
	}
}

func tailText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// TestRealOpenAIBackend: a daemon whose only endpoint is OpenAI-compatible
// (the real server's /v1) runs a workflow of tool steps and the summarizer
// to done, embeds its docs there, records its model calls there, and
// reports the endpoint and its models as external.
func TestRealOpenAIBackend(t *testing.T) {
	srv := ollamatest.Start(t)
	cfg := realConfig(t, srv.URL)
	cfg.Ollama.Endpoints = []config.EndpointConfig{{Name: "real-v1", URL: srv.URL + "/v1", Kind: config.KindOpenAI,
		Models: []string{ollamatest.Plain, ollamatest.Tools}, ParallelSlots: 1, MaxQueue: 512}}
	must(t, cfg.Validate())
	a := startReal(t, srv, cfg)
	waitUntil(t, "the docs folder is indexed through /v1/embeddings", func() bool {
		files, err := a.d.Store.DocFiles(context.Background())
		return err == nil && len(files) > 0
	})
	id := a.submit(map[string]any{"request": "status of bay 3", "workflow": "every_tool"})
	r := a.wait(id)
	if r.Status != run.Done {
		t.Fatalf("run %s (%s), want done", r.Status, r.Error)
	}
	calls, err := a.d.Store.RunModelCalls(context.Background(), id)
	must(t, err)
	if len(calls) == 0 {
		t.Fatal("no model call recorded")
	}
	// Token counts are checked in internal/llm (TestRealOpenAIChat): here
	// the tiny model's only call may be one the server broke off, which
	// carries none.
	for _, c := range calls {
		if c.Endpoint != "real-v1" {
			t.Errorf("model call %+v, want on real-v1", c)
		}
	}
	st := a.d.status(context.Background()).(Status)
	if len(st.Ollama) != 1 || !st.Ollama[0].External || st.Ollama[0].Name != "real-v1" {
		t.Errorf("status endpoints = %+v", st.Ollama)
	}
	snap, ok := st.Residency.(vram.ResidencySnapshot)
	if !ok {
		t.Fatalf("residency = %T", st.Residency)
	}
	for _, m := range snap.Models {
		if !m.External || m.Endpoint != "real-v1" {
			t.Errorf("residency model %+v, want external on real-v1", m)
		}
	}
	if len(snap.Missing) != 0 {
		t.Errorf("missing = %+v: external models are not Ollama's to pull", snap.Missing)
	}
	a.noGrammarFailures()
}
