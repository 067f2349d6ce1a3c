package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/agentd/agentd/internal/fallback"
)

// adminBudgets is a Budgets that also administers the provider.
type adminBudgets struct {
	fakeBudgets
	mu sync.Mutex
	st fallback.ProviderState
}

func (a *adminBudgets) ProviderState() (fallback.ProviderState, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st, nil
}

func (a *adminBudgets) EnableProvider(_ context.Context, by string) (fallback.ProviderState, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.st.Suspended, a.st.Enabled, a.st.ChangedBy = false, true, by
	return a.st, nil
}

func TestFallbackProviderAdmin(t *testing.T) {
	admin := &adminBudgets{st: fallback.ProviderState{Provider: "openai", Destination: "api.example", Suspended: true,
		Reason: "billed 20000 output tokens for a request limited to max_tokens 2048", MaxInFlight: 4}}
	env := newTestEnv(t, func(_ *Config, d *Deps) { d.Budgets = admin })

	resp, body := env.do(http.MethodGet, "/api/v1/fallback/provider", "", true)
	var st fallback.ProviderState
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &st) != nil || !st.Suspended || st.Enabled {
		t.Fatalf("GET = %d %s", resp.StatusCode, body)
	}
	if resp, _ := env.do(http.MethodGet, "/api/v1/fallback/provider", "", false); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET without the token = %d", resp.StatusCode)
	}
	if resp, _ := env.do(http.MethodPost, "/api/v1/fallback/provider", `{"enabled": true}`, false); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST without the token = %d", resp.StatusCode)
	}
	for _, bad := range []string{`{"enabled": false}`, `{}`, `{"enabled": true, "x": 1}`} {
		if resp, body := env.do(http.MethodPost, "/api/v1/fallback/provider", bad, true); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s = %d %s", bad, resp.StatusCode, body)
		}
	}
	if st, _ := admin.ProviderState(); !st.Suspended {
		t.Fatal("a refused request changed the state")
	}
	resp, body = env.do(http.MethodPost, "/api/v1/fallback/provider", `{"enabled": true}`, true)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &st) != nil || st.Suspended || !st.Enabled || st.ChangedBy != "api" {
		t.Fatalf("POST enable = %d %s", resp.StatusCode, body)
	}

	// Without an administrable provider: a state with no provider that
	// says why, and a write that cannot be done.
	plain := newTestEnv(t)
	resp, body = plain.do(http.MethodGet, "/api/v1/fallback/provider", "", true)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &st) != nil || st.Provider != "" || st.Suspended || !strings.Contains(st.Reason, "not configured") {
		t.Errorf("GET without a provider = %d %s", resp.StatusCode, body)
	}
	if resp, body := plain.do(http.MethodPost, "/api/v1/fallback/provider", `{"enabled": true}`, true); resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "not configured") {
		t.Errorf("POST without a provider = %d %s", resp.StatusCode, body)
	}
}
