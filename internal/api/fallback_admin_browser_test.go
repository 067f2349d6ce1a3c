package api

import (
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/fallback"
	"github.com/chromedp/chromedp"
)

// The overview shows a suspended remote provider with a visible reason and
// a re-enable button that lifts the suspension.
func TestDashboardReEnablesSuspendedProvider(t *testing.T) {
	ctx, jsErr := browser(t)
	admin := &adminBudgets{st: fallback.ProviderState{Provider: "openai", Destination: "api.example", Suspended: true,
		Reason: "billed 20000 output tokens for a request limited to max_tokens 2048", MaxInFlight: 4}}
	env := newTestEnv(t, statusOption(browserStatus), func(_ *Config, d *Deps) { d.Budgets = admin })
	act(t, ctx, chromedp.EmulateViewport(1366, 768), chromedp.Navigate(env.url+"/"))
	waitFor(t, ctx, "login form", "#login-token")
	act(t, ctx, chromedp.SendKeys(chromedp.CSS("#login-token"), env.token), chromedp.Click(chromedp.CSS("#login-submit")))
	waitFor(t, ctx, "the suspended provider", `#provider-state[data-state="suspended"]`)
	text := value(t, ctx, chromedp.Text(chromedp.CSS("#provider-state")))
	if !strings.Contains(text, "suspended") || !strings.Contains(text, "max_tokens 2048") {
		t.Errorf("suspended notice reads %q", text)
	}
	screenshot(t, ctx, "desktop-provider-suspended")
	act(t, ctx, chromedp.Click(chromedp.CSS("#provider-enable")))
	waitFor(t, ctx, "the provider enabled again", `#provider-state:not([data-state="suspended"])`)
	if st, _ := admin.ProviderState(); st.Suspended || st.ChangedBy != "dashboard" {
		t.Errorf("after the click: %+v", st)
	}
	if errs := jsErr.get(); len(errs) > 0 {
		t.Errorf("JavaScript errors: %v", errs)
	}
}
