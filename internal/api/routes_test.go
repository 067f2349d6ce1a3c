package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/run"
)

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, b, err)
	}
	return v
}

func TestEndpointsNeedTheToken(t *testing.T) {
	env := newTestEnv(t)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/v1/runs", `{"request":"x"}`},
		{"GET", "/api/v1/runs", ""},
		{"GET", "/api/v1/runs/run001", ""},
		{"POST", "/api/v1/runs/run001/cancel", ""},
		{"GET", "/api/v1/approvals", ""},
		{"POST", "/api/v1/approvals/run001/send", `{"decision":"approve"}`},
		{"GET", "/api/v1/egress", ""},
		{"GET", "/api/v1/budgets", ""},
		{"GET", "/api/v1/residency", ""},
		{"GET", "/api/v1/link", ""},
		{"GET", "/api/v1/history/gpu", ""},
		{"GET", "/api/v1/events", ""},
		{"GET", "/api/v1/session", ""},
		{"GET", "/api/v1/status", ""},
		{"GET", "/metrics", ""},
		{"GET", "/v1/models", ""},
		{"POST", "/v1/chat/completions", `{"model":"agentd"}`},
	} {
		t.Run(c.method+c.path, func(t *testing.T) {
			resp, b := env.do(c.method, c.path, c.body, false)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401; body %s", resp.StatusCode, b)
			}
			e := decode[ErrorBody](t, b)
			if e.Error.Message == "" {
				t.Errorf("401 without a reason: %s", b)
			}
		})
	}
	if len(env.engine.submitted) != 0 {
		t.Errorf("an unauthenticated submit reached the engine: %v", env.engine.submitted)
	}
}

func TestDashboardAssetsArePublic(t *testing.T) {
	env := newTestEnv(t)
	resp, b := env.do("GET", "/", "", false)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "<!doctype html>") {
		t.Fatalf("GET / = %d %q", resp.StatusCode, b[:min(len(b), 80)])
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP = %q", csp)
	}
	// Browsers refuse a module script served with another MIME type.
	resp, _ = env.do("GET", "/js/app.js", "", false)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("app.js: %d %q", resp.StatusCode, ct)
	}
}

func TestSubmit(t *testing.T) {
	env := newTestEnv(t)
	cases := []struct {
		name, body string
		status     int
		code       string
	}{
		{"plain", `{"request":"summarize the logs"}`, 201, ""},
		{"all fields", `{"request":"x","workflow":"triage","planner":"local","sensitive":true,"priority":5,"async":true}`, 201, ""},
		{"wait true", `{"request":"x","wait":true}`, 201, ""},
		{"wait seconds", `{"request":"x","wait":5}`, 201, ""},
		{"empty body", ``, 400, "bad_json"},
		{"not json", `request=x`, 400, "bad_json"},
		{"unknown field", `{"request":"x","colour":"red"}`, 400, "bad_json"},
		{"empty request", `{"request":"  "}`, 400, "missing_request"},
		{"bad planner", `{"request":"x","planner":"cloud"}`, 400, "bad_planner"},
		{"bad priority", `{"request":"x","priority":1000}`, 400, "bad_priority"},
		{"bad wait", `{"request":"x","wait":"soon"}`, 400, "bad_wait"},
		{"negative wait", `{"request":"x","wait":-1}`, 400, "bad_wait"},
		{"engine refuses", `{"request":"x","workflow":"nope"}`, 400, "invalid"},
		{"too large", `{"request":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "too_large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, b := env.do("POST", "/api/v1/runs", c.body, true)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, c.status, b)
			}
			if c.status != 201 {
				e := decode[ErrorBody](t, b)
				if e.Error.Code != c.code || e.Error.Message == "" {
					t.Errorf("error %+v, want code %q with a message", e.Error, c.code)
				}
				return
			}
			r := decode[run.Run](t, b)
			if r.ID == "" || resp.Header.Get("Location") != "/api/v1/runs/"+r.ID {
				t.Errorf("run %+v, Location %q", r, resp.Header.Get("Location"))
			}
			if strings.Contains(c.body, "wait") && r.Status != run.Done {
				t.Errorf("waited, yet status %s", r.Status)
			}
		})
	}
	sub := env.engine.submitted[1]
	if sub.Workflow != "triage" || sub.Planner != "local" || !sub.Sensitive || sub.Priority != 5 || !sub.Async || sub.Source != "api" {
		t.Errorf("engine got %+v", sub)
	}
	if env.engine.submitted[0].Planner != "auto" {
		t.Errorf("default planner = %q, want auto", env.engine.submitted[0].Planner)
	}
}

func TestSubmitWaitTimesOutWithTheRunAsItStands(t *testing.T) {
	env := newTestEnv(t)
	env.engine.stepDelay = 2 * time.Second
	start := time.Now()
	resp, b := env.do("POST", "/api/v1/runs", `{"request":"slow","wait":0.2}`, true)
	if resp.StatusCode != 201 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	if r := decode[run.Run](t, b); r.Status.Terminal() {
		t.Errorf("status %s: should still be running", r.Status)
	}
	if time.Since(start) > 1500*time.Millisecond {
		t.Errorf("wait 0.2 took %v", time.Since(start))
	}
}

func TestSubmitQueueFull(t *testing.T) {
	env := newTestEnv(t)
	env.engine.full = true
	resp, b := env.do("POST", "/api/v1/runs", `{"request":"x"}`, true)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	if resp.Header.Get("Retry-After") != "5" {
		t.Errorf("Retry-After = %q", resp.Header.Get("Retry-After"))
	}
	if e := decode[ErrorBody](t, b); e.Error.Code != "queue_full" || !strings.Contains(e.Error.Message, "retry") {
		t.Errorf("error %+v", e.Error)
	}
}

func TestListRunsPaginationAndFilter(t *testing.T) {
	env := newTestEnv(t)
	for range 5 {
		resp, b := env.do("POST", "/api/v1/runs", `{"request":"x","wait":true}`, true)
		if resp.StatusCode != 201 {
			t.Fatal(string(b))
		}
	}
	env.engine.stepDelay = time.Hour
	env.do("POST", "/api/v1/runs", `{"request":"stuck"}`, true)

	var ids []string
	before := ""
	for page := 0; page < 5; page++ {
		resp, b := env.do("GET", "/api/v1/runs?limit=2&before="+before, "", true)
		if resp.StatusCode != 200 {
			t.Fatalf("page %d: %d %s", page, resp.StatusCode, b)
		}
		p := decode[RunPage](t, b)
		for _, r := range p.Runs {
			ids = append(ids, r.ID)
		}
		if p.NextBefore == "" {
			break
		}
		before = p.NextBefore
	}
	want := []string{"run006", "run005", "run004", "run003", "run002", "run001"}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("paged ids %v, want %v", ids, want)
	}

	_, b := env.do("GET", "/api/v1/runs?status=done", "", true)
	if p := decode[RunPage](t, b); len(p.Runs) != 5 {
		t.Errorf("status=done gave %d runs, want 5", len(p.Runs))
	}
	_, b = env.do("GET", "/api/v1/runs?status=running,queued,planning", "", true)
	if p := decode[RunPage](t, b); len(p.Runs) != 1 || p.Runs[0].ID != "run006" {
		t.Errorf("active runs %+v", p.Runs)
	}
	for _, q := range []string{"limit=0", "limit=201", "limit=x", "status=bogus"} {
		resp, b := env.do("GET", "/api/v1/runs?"+q, "", true)
		if resp.StatusCode != 400 || decode[ErrorBody](t, b).Error.Message == "" {
			t.Errorf("%s: %d %s", q, resp.StatusCode, b)
		}
	}
}

func TestGetRunDetail(t *testing.T) {
	env := newTestEnv(t)
	env.do("POST", "/api/v1/runs", `{"request":"x","wait":true}`, true)
	resp, b := env.do("GET", "/api/v1/runs/run001", "", true)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	d := decode[RunDetail](t, b)
	if d.Run.ID != "run001" || len(d.Steps) != len(fakePlan) || len(d.ModelCalls) != 2 || len(d.Plan) == 0 {
		t.Errorf("detail: run %v, %d steps, %d model calls, plan %s", d.Run.ID, len(d.Steps), len(d.ModelCalls), d.Plan)
	}
	resp, b = env.do("GET", "/api/v1/runs/nope", "", true)
	if resp.StatusCode != 404 || decode[ErrorBody](t, b).Error.Code != "not_found" {
		t.Errorf("missing run: %d %s", resp.StatusCode, b)
	}
}

func TestCancel(t *testing.T) {
	env := newTestEnv(t)
	env.engine.stepDelay = time.Hour
	env.do("POST", "/api/v1/runs", `{"request":"x"}`, true)
	resp, b := env.do("POST", "/api/v1/runs/run001/cancel", "", true)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if len(env.engine.canceled) != 1 || env.engine.canceled[0] != "run001 by api" {
		t.Errorf("engine canceled %v", env.engine.canceled)
	}
	if _, err := env.engine.Wait(t.Context(), "run001"); err != nil {
		t.Fatal(err)
	}
	resp, b = env.do("POST", "/api/v1/runs/run001/cancel", "", true)
	if resp.StatusCode != 409 || decode[ErrorBody](t, b).Error.Code != "conflict" {
		t.Errorf("cancel of a finished run: %d %s", resp.StatusCode, b)
	}
	resp, _ = env.do("POST", "/api/v1/runs/nope/cancel", "", true)
	if resp.StatusCode != 404 {
		t.Errorf("cancel of a missing run: %d", resp.StatusCode)
	}
}

func TestApprovals(t *testing.T) {
	env := newTestEnv(t)
	env.engine.noApproval = false
	env.do("POST", "/api/v1/runs", `{"request":"mail the report"}`, true)
	var list struct{ Approvals []Approval }
	deadline := time.Now().Add(5 * time.Second)
	for len(list.Approvals) == 0 && time.Now().Before(deadline) {
		_, b := env.do("GET", "/api/v1/approvals", "", true)
		list = decode[struct{ Approvals []Approval }](t, b)
		time.Sleep(10 * time.Millisecond)
	}
	if len(list.Approvals) != 1 || list.Approvals[0].StepID != "send" || list.Approvals[0].Request != "mail the report" {
		t.Fatalf("pending approvals %+v", list.Approvals)
	}
	for _, c := range []struct {
		path, body string
		status     int
	}{
		{"/api/v1/approvals/run001/send", `{"decision":"maybe"}`, 400},
		{"/api/v1/approvals/run001/send", `{}`, 400},
		{"/api/v1/approvals/run001/nope", `{"decision":"approve"}`, 404},
		{"/api/v1/approvals/run001/send", `{"decision":"approve","reason":"looks right"}`, 200},
		{"/api/v1/approvals/run001/send", `{"decision":"deny"}`, 409},
	} {
		resp, b := env.do("POST", c.path, c.body, true)
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d %s, want %d", c.path, c.body, resp.StatusCode, b, c.status)
		}
	}
	if len(env.engine.decisions) != 1 || env.engine.decisions[0] != "run001/send approved by api" {
		t.Errorf("decisions %v", env.engine.decisions)
	}
	if r, err := env.engine.Wait(t.Context(), "run001"); err != nil || r.Status != run.Done {
		t.Errorf("run after approval: %+v %v", r, err)
	}
}

func TestEgressPagination(t *testing.T) {
	env := newTestEnv(t)
	var ids []int64
	before := ""
	for range 10 {
		resp, b := env.do("GET", "/api/v1/egress?limit=3"+before, "", true)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		p := decode[struct {
			Records []struct {
				ID       int64  `json:"id"`
				SHA256   string `json:"sha256"`
				BytesOut int64  `json:"bytes_out"`
			}
			NextBefore int64 `json:"next_before"`
		}](t, b)
		for _, r := range p.Records {
			ids = append(ids, r.ID)
		}
		if p.NextBefore == 0 {
			break
		}
		before = "&before=" + strconv.FormatInt(p.NextBefore, 10)
	}
	if len(ids) != 7 || ids[0] != 7 || ids[6] != 1 {
		t.Errorf("paged egress ids %v, want 7..1", ids)
	}
	resp, b := env.do("GET", "/api/v1/egress?before=abc", "", true)
	if resp.StatusCode != 400 || decode[ErrorBody](t, b).Error.Code != "bad_before" {
		t.Errorf("bad cursor: %d %s", resp.StatusCode, b)
	}
}

func TestBudgetsResidencyLink(t *testing.T) {
	env := newTestEnv(t)
	_, b := env.do("GET", "/api/v1/budgets", "", true)
	rep := decode[BudgetReport](t, b)
	if len(rep.Caps) != 3 || rep.Caps[1].Alert != 80 || rep.Savings.SavedUSD != 8.5 {
		t.Errorf("budgets %+v", rep)
	}
	_, b = env.do("GET", "/api/v1/residency", "", true)
	if m := decode[struct{ Models []LoadedModel }](t, b); len(m.Models) != 2 {
		t.Errorf("residency %s", b)
	}
	_, b = env.do("GET", "/api/v1/link", "", true)
	if l := decode[LinkStatus](t, b); l.State != "constrained" {
		t.Errorf("link %s", b)
	}
}

func TestGPUHistory(t *testing.T) {
	env := newTestEnv(t)
	resp, b := env.do("GET", "/api/v1/history/gpu?minutes=60", "", true)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if p := decode[struct{ Points []GPUPoint }](t, b); len(p.Points) != 60 || *p.Points[0].MemTotalBytes != 20e9 {
		t.Errorf("%d points", len(p.Points))
	}
	if ago := time.Since(env.deps.History.(*fakeHistory).asked()); ago < 59*time.Minute || ago > 61*time.Minute {
		t.Errorf("asked for history since %v ago, want 60m", ago)
	}
	for _, q := range []string{"0", "1441", "x"} {
		resp, b := env.do("GET", "/api/v1/history/gpu?minutes="+q, "", true)
		if resp.StatusCode != 400 || decode[ErrorBody](t, b).Error.Code != "bad_minutes" {
			t.Errorf("minutes=%s: %d %s", q, resp.StatusCode, b)
		}
	}
}

func TestOptionalDepsMissing(t *testing.T) {
	env := newTestEnv(t, func(_ *Config, d *Deps) {
		d.Ledger, d.Budgets, d.Residency, d.Link, d.History = nil, nil, nil, nil, nil
	})
	for _, p := range []string{"/api/v1/egress", "/api/v1/budgets", "/api/v1/residency", "/api/v1/history/gpu"} {
		resp, b := env.do("GET", p, "", true)
		if resp.StatusCode != 404 || !strings.Contains(decode[ErrorBody](t, b).Error.Message, "not") {
			t.Errorf("%s: %d %s", p, resp.StatusCode, b)
		}
	}
	_, b := env.do("GET", "/api/v1/link", "", true)
	if l := decode[LinkStatus](t, b); l.State != "disabled" {
		t.Errorf("link without a reporter: %s", b)
	}
}

func TestLoginSetsAStrictCookie(t *testing.T) {
	env := newTestEnv(t)
	resp, b := env.do("POST", "/api/v1/login", `{"token":"wrong-token-wrong-token"}`, false)
	if resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Fatalf("bad token: %d %s cookies %v", resp.StatusCode, b, resp.Cookies())
	}
	resp, b = env.do("POST", "/api/v1/login", `{"token":"`+env.token+`"}`, false)
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, b)
	}
	var c *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == SessionCookie {
			c = k
		}
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.Path != "/" {
		t.Fatalf("cookie %+v", c)
	}
	// The cookie authenticates, and the dashboard is recorded as the actor
	// (a write with the cookie comes from the dashboard's own page, as JSON).
	req, _ := http.NewRequest("POST", env.url+"/api/v1/runs", strings.NewReader(`{"request":"from the dashboard"}`))
	req.Header.Set("Origin", env.url)
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(c)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 201 || len(env.engine.submitted) != 1 || env.engine.submitted[0].Source != "dashboard" {
		t.Errorf("cookie submit: %d source %q", r2.StatusCode, env.engine.submitted[0].Source)
	}
	resp, _ = env.do("POST", "/api/v1/logout", "", false)
	for _, k := range resp.Cookies() {
		if k.Name == SessionCookie && k.MaxAge >= 0 {
			t.Errorf("logout left the cookie: %+v", k)
		}
	}
}

func TestNoAuthMode(t *testing.T) {
	env := newTestEnv(t, func(c *Config, _ *Deps) { c.AuthRequired = false })
	resp, b := env.do("GET", "/api/v1/runs", "", false)
	if resp.StatusCode != 200 {
		t.Errorf("auth none: %d %s", resp.StatusCode, b)
	}
}

func TestRegisterRoutesNeedsItsDependencies(t *testing.T) {
	env := newTestEnv(t)
	if err := RegisterRoutes(env.srv, Deps{}); err == nil {
		t.Error("RegisterRoutes accepted empty Deps")
	}
}

// Errors are JSON everywhere under /api/, and say what is wrong in the
// client's terms: no route, a wrong method with the allowed ones, a field
// of the wrong type (not a Go struct name), a missing run said once.
func TestErrorsSpeakJSON(t *testing.T) {
	env := newTestEnv(t)
	defer env.stop()
	tests := []struct {
		method, path, body string
		status             int
		code, want, avoid  string
	}{
		{"GET", "/api/v1/nothing-here", "", 404, "no_route", "no API route GET /api/v1/nothing-here", ""},
		{"DELETE", "/api/v1/runs", "", 405, "method_not_allowed", "use GET or POST", ""},
		{"POST", "/api/v1/runs", `{"request": 42}`, 400, "bad_json", `field "request" must be a string, not number`, "submitBody"},
		{"POST", "/api/v1/runs", `{"request": "x", "bogus": 1}`, 400, "bad_json", `unknown field "bogus"`, "json:"},
		{"POST", "/api/v1/runs", `{"request": `, 400, "bad_json", "", "Go"},
		{"GET", "/api/v1/runs/r_missing", "", 404, "not_found", "run r_missing: not found", "r_missing: run r_missing"},
	}
	for _, tt := range tests {
		resp, body := env.do(tt.method, tt.path, tt.body, true)
		var e ErrorBody
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("%s %s: %d, body is not JSON: %s", tt.method, tt.path, resp.StatusCode, body)
			continue
		}
		if resp.StatusCode != tt.status || e.Error.Code != tt.code || !strings.Contains(e.Error.Message, tt.want) ||
			(tt.avoid != "" && strings.Contains(e.Error.Message, tt.avoid)) {
			t.Errorf("%s %s %s: %d %s %q; want %d %s containing %q", tt.method, tt.path, tt.body, resp.StatusCode, e.Error.Code, e.Error.Message, tt.status, tt.code, tt.want)
		}
	}
}
