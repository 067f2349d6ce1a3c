package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/fallback"
)

// `agentd fallback status` shows a suspended provider and says how to lift
// it; `agentd fallback enable` lifts it through the API.
func TestFallbackCommand(t *testing.T) {
	var mu sync.Mutex
	st := fallback.ProviderState{Provider: "openai", Destination: "api.example", Model: "m", Suspended: true,
		Reason: "billed 20000 output tokens for a request limited to max_tokens 2048", RunID: "r_1",
		ReservedUSD: 0.004, ActualUSD: 0.03, SuspendedAt: time.Now(), MaxInFlight: 4}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/fallback/provider" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"error":{"code":"not_found","message":"no"}}`, http.StatusNotFound)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			if strings.TrimSpace(string(b)) != `{"enabled":true}` {
				t.Errorf("POST body %s", b)
			}
			st.Suspended, st.Enabled, st.ChangedBy = false, true, "api"
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	}))
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, int) {
		var out bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &out, Stdin: strings.NewReader(""), Getenv: func(string) string { return "" }}
		code := m.Run(context.Background(), append(args, "--config", cfg, "--addr", srv.URL, "--token", "tok"))
		return out.String(), code
	}
	out, code := cli("fallback", "status")
	if code != 0 || !strings.Contains(out, "SUSPENDED") || !strings.Contains(out, "agentd fallback enable") || !strings.Contains(out, "max_tokens 2048") {
		t.Errorf("status (%d):\n%s", code, out)
	}
	out, code = cli("fallback", "enable")
	if code != 0 || !strings.Contains(out, "enabled") || strings.Contains(out, "SUSPENDED") {
		t.Errorf("enable (%d):\n%s", code, out)
	}
	out, code = cli("fallback", "status", "--json")
	var got fallback.ProviderState
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Suspended {
		t.Errorf("status --json (%d):\n%s", code, out)
	}
	if out, code := cli("fallback", "disable"); code != 2 {
		t.Errorf("unknown verb (%d):\n%s", code, out)
	}
}
