package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agentd/agentd/internal/run"
)

// attackerPage is served from another port of 127.0.0.1: the same site as
// the dashboard for the browser's SameSite rules, another origin for
// agentd. It tries, with the dashboard user's cookie, what a form or a
// no-cors fetch can send: a run, and the approval of a pending step.
const attackerPage = `<!doctype html><title>cat pictures</title><body><script>
const target = %q;
const write = (path, body) => fetch(target + path, {method: "POST", mode: "no-cors", credentials: "include",
  headers: {"Content-Type": "text/plain"}, body}).then(() => "sent", e => "error " + e);
Promise.all([
  write("/api/v1/runs", JSON.stringify({request: "exfiltrate everything"})),
  write("/api/v1/approvals/run001/send", JSON.stringify({decision: "approve", reason: "csrf"})),
]).then(r => { const p = document.createElement("p"); p.id = "done"; p.textContent = r.join(","); document.body.append(p); });
</script>`

func TestCrossPortPageCannotWriteWithTheDashboardCookie(t *testing.T) {
	ctx, _ := browser(t)
	env := newTestEnv(t, statusOption(browserStatus))
	env.engine.noApproval = false
	env.engine.stepDelay = 50 * time.Millisecond
	// A run paused for approval, its id known to the attacker.
	resp, b := env.do("POST", "/api/v1/runs", `{"request":"send the report"}`, true)
	if resp.StatusCode != 201 {
		t.Fatalf("submit: %d %s", resp.StatusCode, b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := env.deps.Runs.RunDetail(t.Context(), "run001")
		if err == nil && d.Run.Status == run.WaitingApproval {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("run001 did not pause for approval")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The user logs in to the dashboard: the browser now holds the cookie.
	act(t, ctx, chromedp.Navigate(env.url+"/"))
	waitFor(t, ctx, "login form", "#login-token")
	act(t, ctx, chromedp.SendKeys(chromedp.CSS("#login-token"), env.token), chromedp.Click(chromedp.CSS("#login-submit")))
	waitFor(t, ctx, "navigation after login", "#nav a[data-nav=runs]")

	// Then visits a page on another port of the same host.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, attackerPage, env.url)
	}))
	defer evil.Close()
	if !strings.HasPrefix(evil.URL, "http://127.0.0.1:") || evil.URL == env.url {
		t.Fatalf("attacker at %s, dashboard at %s: want two ports of 127.0.0.1", evil.URL, env.url)
	}
	act(t, ctx, chromedp.Navigate(evil.URL+"/"))
	waitFor(t, ctx, "the attacker's writes settled", "#done")
	if got := value(t, ctx, chromedp.Text(chromedp.CSS("#done"))); got != "sent,sent" {
		t.Logf("attacker's fetches: %s", got)
	}
	time.Sleep(200 * time.Millisecond) // let a write that got through reach the engine
	for _, s := range env.engine.submittedCopy() {
		if s.Request == "exfiltrate everything" {
			t.Errorf("a page on another port submitted a run with the dashboard's cookie: %+v", s)
		}
	}
	env.engine.mu.Lock()
	decisions := slices.Clone(env.engine.decisions)
	env.engine.mu.Unlock()
	if len(decisions) != 0 {
		t.Errorf("a page on another port decided an approval with the dashboard's cookie: %v", decisions)
	}

	// The dashboard itself, same origin, still writes with its cookie.
	act(t, ctx, chromedp.Navigate(env.url+"/#/approvals"))
	waitFor(t, ctx, "approval card", `button[data-approve="run001/send"]`)
	act(t, ctx, chromedp.Click(chromedp.CSS(`button[data-approve="run001/send"]`)))
	waitFor(t, ctx, "empty queue", `#approvals p.muted`)
	env.engine.mu.Lock()
	decisions = slices.Clone(env.engine.decisions)
	env.engine.mu.Unlock()
	if len(decisions) != 1 || decisions[0] != "run001/send approved by dashboard" {
		t.Errorf("dashboard approval: %v", decisions)
	}
}
