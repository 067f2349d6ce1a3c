package scenarios_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/run"
	"github.com/agentd/agentd/internal/scenarios"
)

// TestDashboardDrivesTheRealEngine logs in to the dashboard of a real
// daemon (executor, planner, tools, simulator), submits the order scenario
// from the form, watches its plan graph turn done live, and approves the
// paused confirm step from the approvals page: the event payloads the real
// engine publishes are the ones the dashboard draws.
func TestDashboardDrivesTheRealEngine(t *testing.T) {
	chrome := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			chrome = p
			break
		}
	}
	if chrome == "" {
		if os.Getenv("CI") == "true" || os.Getenv("AGENTD_BROWSER_TESTS") == "1" {
			t.Fatal("chromium not found: apt-get install -y chromium")
		}
		t.Skip("chromium not found: install it (apt-get install -y chromium) to run browser tests")
	}
	var order scenarios.Scenario
	for _, sc := range scenarios.All() {
		if sc.Expect.Approval != "" {
			order = sc
		}
	}
	if order.Name == "" {
		t.Fatal("no scenario waits for an approval")
	}
	h := start(t)
	tok, err := os.ReadFile(h.d.Paths().TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + h.d.Addr().String() + "/"

	actx, cancelA := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(chrome),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1366, 768))
	defer cancelA()
	ctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(name string) {
		buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Logf("screenshot %s: %v", name, err)
			return
		}
		dir := filepath.Join("..", "..", "screenshots")
		_ = os.MkdirAll(dir, 0o755)
		_ = os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644)
	}
	wait := func(what, sel string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
			shot("failed-" + strings.NewReplacer(" ", "-", ",", "").Replace(what))
			if rs, _ := h.d.Store.ListRuns(context.Background(), db.RunFilter{Limit: 1}); len(rs) == 1 {
				t.Logf("run in the store: %s answer %q error %q", rs[0].Status, rs[0].Answer, rs[0].Error)
				evs, _ := h.d.Store.RunEvents(context.Background(), rs[0].ID, 200)
				for _, e := range evs {
					t.Logf("event %d %s %s", e.Seq, e.Type, e.Data)
				}
			}
			t.Fatalf("waiting for %s (%s): %v", what, sel, err)
		}
	}

	do("open dashboard", chromedp.Navigate(base))
	wait("login form", "#login-token")
	do("log in", chromedp.SendKeys(chromedp.CSS("#login-token"), strings.TrimSpace(string(tok))), chromedp.Click(chromedp.CSS("#login-submit")))
	wait("navigation after login", "#nav a[data-nav=runs]")
	wait("demo banner", "#demo-banner")

	do("open submit form", chromedp.Navigate(base+"#/submit"))
	wait("submit form", "#submit-request")
	do("submit the order", chromedp.SendKeys(chromedp.CSS("#submit-request"), order.Request), chromedp.Click(chromedp.CSS("#submit-go")))
	first := order.Plan.Steps[0].ID
	wait("the plan graph", `g.node[data-step="`+first+`"]`)
	wait("first step done, live", `g.node[data-step="`+first+`"][data-status="done"]`)
	wait("confirm paused for approval, live", `g.node[data-step="`+order.Expect.Approval+`"][data-status="waiting_approval"]`)
	shot("real-engine-run-waiting")

	runs, err := h.d.Store.ListRuns(ctx, db.RunFilter{Limit: 1})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs: %v, %v", runs, err)
	}
	id := runs[0].ID
	if runs[0].Source != "dashboard" {
		t.Errorf("run source %q, want dashboard", runs[0].Source)
	}
	do("open approvals", chromedp.Navigate(base+"#/approvals"))
	key := id + "/" + order.Expect.Approval
	wait("approval card", `button[data-approve="`+key+`"]`)
	wait("the review queue, empty", "#reviews p.muted")
	shot("real-engine-approvals")
	do("approve", chromedp.SendKeys(chromedp.CSS(`[data-approval="`+key+`"] input.reason`), "stock checked by hand"),
		chromedp.Click(chromedp.CSS(`button[data-approve="`+key+`"]`)))
	do("open the run", chromedp.Navigate(base+"#/run/"+id))
	wait("confirm done after approval", `g.node[data-step="`+order.Expect.Approval+`"][data-status="done"]`)
	wait("the answer", "#run-answer")
	shot("real-engine-run-done")

	final, err := h.d.Engine.Wait(ctx, id)
	if err != nil || final.Status != run.Done {
		t.Fatalf("run ended %v (%v)", final, err)
	}
	aps, _ := h.d.Store.RunApprovals(ctx, id)
	if len(aps) != 1 || aps[0].Status != "approved" || aps[0].DecidedBy != "dashboard" || aps[0].Reason != "stock checked by hand" {
		t.Errorf("approvals = %+v", aps)
	}
}
