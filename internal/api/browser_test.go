package api

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agentd/agentd/internal/events"
)

// chromiumPath finds Debian's chromium. Browser tests fail when it is
// missing and AGENTD_BROWSER_TESTS=1 or CI=true (CI installs it: a skip
// there would hide a broken dashboard), and skip with the reason otherwise.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium not found: install it (apt-get install -y chromium) to run the dashboard's browser tests"
	if os.Getenv("AGENTD_BROWSER_TESTS") == "1" || os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg + " (set AGENTD_BROWSER_TESTS=1 to make this a failure)")
	return ""
}

// browser starts a headless chromium with a throwaway profile and collects
// the page's JavaScript errors.
func browser(t *testing.T) (context.Context, *jsErrors) {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 768),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium at %s: %v", path, err)
	}
	errs := &jsErrors{}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			// The login page's session probe is answered 401 by design.
			if m.IsException() || (m.Type == "error" && !strings.Contains(m.Text, "401")) {
				errs.add(fmt.Sprintf("%s: %s", m.Type, m.Text))
			}
		}
	}()
	return ctx, errs
}

type jsErrors struct {
	mu   sync.Mutex
	list []string
}

func (j *jsErrors) add(s string) { j.mu.Lock(); j.list = append(j.list, s); j.mu.Unlock() }
func (j *jsErrors) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.list...)
}

// screenshot saves the whole page as name.png under $AGENTD_SCREENSHOTS
// (a person looks at them; the committed set under screenshots/ is made
// with AGENTD_SCREENSHOTS=$PWD/screenshots), or under the test's temporary
// directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(screenshotDir(t), name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
}

// screenshotDir is $AGENTD_SCREENSHOTS, made if missing, or a temporary
// directory of the test.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("AGENTD_SCREENSHOTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitFor waits for a CSS selector to be visible, naming what was awaited.
func waitFor(t *testing.T, ctx context.Context, what, sel string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%s (%s): %v\n%s", what, sel, err, html[:min(len(html), 3000)])
	}
}

// act runs actions with a deadline.
func act(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(rctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// value runs one action that returns a value.
func value[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(rctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func browserStatus(context.Context) any {
	raw := `{"demo": true, "runs": {"done": 12, "running": 1, "failed": 1},
	  "hardware": {"time": "` + time.Now().UTC().Format(time.RFC3339Nano) + `", "gpu_source": "nvidia",
	    "gpus": [{"source":"nvidia","index":0,"name":"NVIDIA RTX 4000 Ada","memory_total_bytes":20000000000,"memory_used_bytes":9000000000,
	              "utilization_percent":55,"temperature_c":61,"power_draw_w":70}],
	    "host": {"memory_total_bytes":64000000000,"memory_used_bytes":30000000000,"memory_available_bytes":34000000000,
	             "memory_used_percent":46.9,"cpu_percent":23.5,"load":{"load1":1.2,"load5":0.9,"load15":0.7}}}}`
	return json.RawMessage(raw)
}

func TestDashboardInABrowser(t *testing.T) {
	ctx, jsErr := browser(t)
	env := newTestEnv(t, statusOption(browserStatus))
	env.engine.noApproval = false
	env.engine.stepDelay = 700 * time.Millisecond
	// Live hardware and link events, as the monitors will publish them.
	stopSamples := make(chan struct{})
	defer close(stopSamples)
	go func() {
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopSamples:
				return
			case <-tick.C:
			}
			used := 9e9 + float64(i%10)*3e8
			env.bus.Publish(events.GPUSample, "", json.RawMessage(fmt.Sprintf(
				`{"gpus":[{"index":0,"name":"NVIDIA RTX 4000 Ada","memory_total_bytes":2e10,"memory_used_bytes":%g,"utilization_percent":%d}],"host":{"cpu_percent":%d,"memory_used_percent":47}}`,
				used, 40+i%30, 15+i%20)))
			env.bus.Publish(events.LinkState, "", LinkStatus{State: "constrained", RTTMS: 600, ThroughputBPS: float64(40000 + (i%7)*5000)})
		}
	}()
	base := env.url + "/"

	if !t.Run("login", func(t *testing.T) {
		act(t, ctx, chromedp.EmulateViewport(1366, 768), chromedp.Navigate(base))
		waitFor(t, ctx, "login form on an unauthenticated visit", "#login-token")
		screenshot(t, ctx, "desktop-login")
		act(t, ctx, chromedp.SendKeys(chromedp.CSS("#login-token"), "not-the-token"), chromedp.Click(chromedp.CSS("#login-submit")))
		waitFor(t, ctx, "a reason for a wrong token", ".login-msg.bad")
		value(t, ctx, chromedp.Evaluate[any](`document.querySelector("#login-token").value = ""`))
		act(t, ctx, chromedp.SendKeys(chromedp.CSS("#login-token"), env.token), chromedp.Click(chromedp.CSS("#login-submit")))
		waitFor(t, ctx, "navigation after login", "#nav a[data-nav=runs]")
	}) {
		return
	}

	if !t.Run("overview", func(t *testing.T) {
		waitFor(t, ctx, "VRAM gauge", `.gauge[data-name="vram0"]`)
		waitFor(t, ctx, "demo banner", "#demo-banner")
		waitFor(t, ctx, "CPU spill warning for a model partly in system RAM", `tr[data-model="qwen3:4b"] .spill`)
		waitFor(t, ctx, "month budget gauge at its alert level", `.gauge[data-name="usd_month"][data-level="warn"]`)
		waitFor(t, ctx, "live VRAM history", `.chart polyline`)
		pct := value(t, ctx, chromedp.AttributeValue(chromedp.CSS(`.gauge[data-name="vram0"]`), "data-pct")).Value
		savings := value(t, ctx, chromedp.Text(chromedp.CSS("#savings")))
		link := value(t, ctx, chromedp.Text(chromedp.CSS("#link-state")))
		screenshot(t, ctx, "desktop-overview")
		if pct != "45.0" {
			t.Errorf("VRAM gauge at %s%%, want 45.0 (9 of 20 GB)", pct)
		}
		if !strings.Contains(savings, "$8.50") || link != "constrained" {
			t.Errorf("savings %q link %q", savings, link)
		}
	}) {
		return
	}

	if !t.Run("submit and watch the plan run live", func(t *testing.T) {
		act(t, ctx, chromedp.Navigate(base+"#/submit"))
		waitFor(t, ctx, "submit form", "#submit-request")
		act(t, ctx, chromedp.SendKeys(chromedp.CSS("#submit-request"), "Check the pump logs and mail ops a summary"),
			chromedp.Click(chromedp.CSS("#submit-go")))
		waitFor(t, ctx, "the plan's DAG", `g.node[data-step="fetch"]`)
		env.engine.mu.Lock()
		sub := env.engine.submitted[0]
		env.engine.mu.Unlock()
		if sub.Source != "dashboard" || sub.Planner != "auto" || sub.Request != "Check the pump logs and mail ops a summary" {
			t.Errorf("engine got %+v", sub)
		}
		waitFor(t, ctx, "fetch running (live)", `g.node[data-step="fetch"][data-status="running"]`)
		waitFor(t, ctx, "lookup running in parallel", `g.node[data-step="lookup"][data-status="running"]`)
		screenshot(t, ctx, "desktop-run-running")
		waitFor(t, ctx, "fetch done (live)", `g.node[data-step="fetch"][data-status="done"]`)
		waitFor(t, ctx, "send paused for approval", `g.node[data-step="send"][data-status="waiting_approval"]`)
		edges := value(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("#dag path.edge:not(.to-answer)").length`))
		if edges != 4 {
			t.Errorf("DAG has %d edges, want 4", edges)
		}
		// Layers: fetch and lookup side by side in the first column.
		sameColumn := value(t, ctx, chromedp.Evaluate[bool](`(() => { const x = (s) => document.querySelector('g.node[data-step="'+s+'"]').getAttribute("transform").match(/translate\(([\d.]+)/)[1];
			return x("fetch") === x("lookup") && x("analyze") !== x("fetch"); })()`))
		if !sameColumn {
			t.Error("fetch and lookup are not in the same layer")
		}
		waitFor(t, ctx, "timeline bars", `#gantt .tl-bar`)
	}) {
		return
	}

	if !t.Run("approve the paused step", func(t *testing.T) {
		act(t, ctx, chromedp.Navigate(base+"#/approvals"))
		waitFor(t, ctx, "approval card", `button[data-approve="run001/send"]`)
		count := value(t, ctx, chromedp.Text(chromedp.CSS("#approvals-count")))
		screenshot(t, ctx, "desktop-approvals")
		if count != "1" {
			t.Errorf("approvals badge %q, want 1", count)
		}
		act(t, ctx, chromedp.SendKeys(chromedp.CSS(`[data-approval="run001/send"] input.reason`), "checked the recipients"),
			chromedp.Click(chromedp.CSS(`button[data-approve="run001/send"]`)))
		waitFor(t, ctx, "empty queue", `#approvals p.muted`)
		act(t, ctx, chromedp.Navigate(base+"#/run/run001"))
		waitFor(t, ctx, "summarize done after approval", `g.node[data-step="summarize"][data-status="done"]`)
		waitFor(t, ctx, "the answer", "#run-answer")
		// A click on a node opens that step's record.
		act(t, ctx, chromedp.Click(chromedp.CSS(`g.node[data-step="analyze"]`)))
		waitFor(t, ctx, "analyze's details", `details[data-step="analyze"][open] pre.output`)
		txt := value(t, ctx, chromedp.Text(chromedp.CSS(`details[data-step="analyze"]`)))
		for _, want := range []string{"qwen3:4b", "150 tok", "1. first", "output of analyze"} {
			if !strings.Contains(txt, want) {
				t.Errorf("analyze's details lack %q: %s", want, txt)
			}
		}
		screenshot(t, ctx, "desktop-run-done")
		env.engine.mu.Lock()
		decisions := append([]string(nil), env.engine.decisions...)
		env.engine.mu.Unlock()
		if len(decisions) != 1 || decisions[0] != "run001/send approved by dashboard" {
			t.Errorf("decisions %v", decisions)
		}
	}) {
		return
	}

	if !t.Run("runs and egress", func(t *testing.T) {
		act(t, ctx, chromedp.Navigate(base+"#/runs"))
		waitFor(t, ctx, "runs list", `tr[data-run="run001"][data-status="done"]`)
		screenshot(t, ctx, "desktop-runs")
		act(t, ctx, chromedp.Navigate(base+"#/egress"))
		waitFor(t, ctx, "egress rows", `#egress tbody tr:nth-child(7)`)
		screenshot(t, ctx, "desktop-egress")
	}) {
		return
	}

	if !t.Run("phone width", func(t *testing.T) {
		for _, page := range []string{"overview", "run/run001", "approvals", "runs", "submit"} {
			act(t, ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"#/"+page))
			waitFor(t, ctx, page, "main h1")
			time.Sleep(300 * time.Millisecond) // let charts draw
			overflow := value(t, ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`))
			screenshot(t, ctx, "phone-"+strings.ReplaceAll(page, "/", "-"))
			if overflow > 0 {
				t.Errorf("%s is %d px wider than a 390 px phone", page, overflow)
			}
		}
	}) {
		return
	}

	if !t.Run("logout", func(t *testing.T) {
		act(t, ctx, chromedp.EmulateViewport(1366, 768), chromedp.Navigate(base+"#/overview"))
		waitFor(t, ctx, "logout button", "#logout")
		act(t, ctx, chromedp.Click(chromedp.CSS("#logout")))
		waitFor(t, ctx, "login form after logout", "#login-token")
		act(t, ctx, chromedp.Reload())
		waitFor(t, ctx, "still logged out after reload", "#login-token")
	}) {
		return
	}

	if errs := jsErr.get(); len(errs) > 0 {
		t.Errorf("JavaScript errors: %s", strings.Join(errs, "\n"))
	}
}
