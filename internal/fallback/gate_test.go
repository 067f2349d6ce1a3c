package fallback

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
)

func TestSensitiveAndDisabledNeverLeave(t *testing.T) {
	ctx := context.Background()
	f := newFakeRemote(t)
	store := openStore(t)
	g := newTestGate(t, store, testConfig(f, "openai"), nil)
	req := PlanRequest{RunID: "r", UserRequest: "patient notes", Schema: []byte(testSchema), Sensitive: true}
	if ok, reason := g.AllowRemote(ctx, req); ok || !strings.Contains(reason, "sensitive") {
		t.Errorf("AllowRemote(sensitive) = %v %q", ok, reason)
	}
	if _, _, err := g.PlanRemote(ctx, req); !errors.Is(err, ErrSensitive) {
		t.Errorf("PlanRemote(sensitive) = %v", err)
	}
	cfg := testConfig(f, "openai")
	cfg.Enabled = false
	off := newTestGate(t, store, cfg, nil)
	req.Sensitive = false
	if ok, reason := off.AllowRemote(ctx, req); ok || !strings.Contains(reason, "fallback.enabled") {
		t.Errorf("AllowRemote(disabled) = %v %q", ok, reason)
	}
	if _, _, err := off.PlanRemote(ctx, req); !errors.Is(err, ErrDisabled) {
		t.Errorf("PlanRemote(disabled) = %v", err)
	}
	if len(f.recorded()) != 0 {
		t.Errorf("%d requests left the machine", len(f.recorded()))
	}
	// A disabled gate needs no key and builds no provider.
	cfg.APIKeyEnv = "AGENTD_TEST_UNSET_KEY_VAR"
	cfg.Provider = "anthropic"
	if _, err := NewGate(ctx, GateOptions{Config: cfg, Store: store, Logger: discardLogger()}); err != nil {
		t.Errorf("disabled gate: %v", err)
	}
}

func TestAllowRemoteChecksCapsHeadroom(t *testing.T) {
	ctx := context.Background()
	f := newFakeRemote(t)
	cfg := testConfig(f, "openai")
	cfg.Caps = config.CapsConfig{RunUSD: 0.01}
	g := newTestGate(t, openStore(t), cfg, nil)
	req := PlanRequest{RunID: "r", UserRequest: "plan it", Schema: []byte(testSchema)}
	if ok, reason := g.AllowRemote(ctx, req); !ok {
		t.Fatalf("AllowRemote = false: %s", reason)
	}
	cfg.Caps = config.CapsConfig{RunUSD: 0.001} // below one call's worst case
	tight := newTestGate(t, openStore(t), cfg, nil)
	if ok, reason := tight.AllowRemote(ctx, req); ok || !strings.Contains(reason, "run_usd") {
		t.Errorf("AllowRemote = %v %q; want refused by run_usd", ok, reason)
	}
	_, _, err := tight.PlanRemote(ctx, req)
	var ce *CapError
	if !errors.As(err, &ce) || ce.Cap != CapRunUSD {
		t.Errorf("PlanRemote = %v", err)
	}
	if len(f.recorded()) != 0 {
		t.Error("a capped call was sent")
	}
}

func TestKeyNeverLogged(t *testing.T) {
	ctx := context.Background()
	const key = "sk-live-SECRETKEY0123456789abcdefXYZ"
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, kind := range []string{"openai", "anthropic", "ollama"} {
		f := newFakeRemote(t)
		cfg := testConfig(f, kind)
		cfg.APIKeyEnv = "AGENTD_TEST_KEY_FOR_LOGS"
		t.Setenv("AGENTD_TEST_KEY_FOR_LOGS", key)
		g, err := NewGate(ctx, GateOptions{Config: cfg, Store: openStore(t), Logger: log,
			HTTPClient: &http.Client{Timeout: 2 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		log.Info("gate", "provider", g.provider, "gate", fmt.Sprintf("%+v %#v", g.provider, g.provider))
		if _, _, err := g.PlanRemote(ctx, PlanRequest{RunID: "r", UserRequest: "hi", Schema: []byte(testSchema)}); err != nil {
			t.Fatal(err)
		}
		f.set(func(f *fakeRemote) { f.failCode, f.failLeft = 401, -1 })
		_, _, err = g.PlanRemote(ctx, PlanRequest{RunID: "r", UserRequest: "hi", Schema: []byte(testSchema)})
		if err == nil {
			t.Fatal("401 not reported")
		}
		log.Error("plan failed", "err", err)
		h := f.recorded()[0].Header
		if h.Get("Authorization") != "Bearer "+key && h.Get("x-api-key") != key {
			t.Errorf("%s: the key was not sent", kind)
		}
	}
	out := buf.String()
	if !strings.Contains(out, "remote request") || !strings.Contains(out, "remote plan") || !strings.Contains(out, "API key was refused") {
		t.Fatalf("expected log lines missing:\n%s", out)
	}
	if strings.Contains(out, key) || strings.Contains(out, "SECRETKEY") {
		t.Errorf("the key appears in the logs:\n%s", out)
	}
}

func TestPlanRemoteFeedsLinkAndRejectsBadPlans(t *testing.T) {
	ctx := context.Background()
	f := newFakeRemote(t)
	store := openStore(t)
	g := newTestGate(t, store, testConfig(f, "ollama"), nil)
	plan, usage, err := g.PlanRemote(ctx, PlanRequest{RunID: "r", UserRequest: "call +47 912 34 567", Schema: []byte(testSchema)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(plan), "+47 912 34 567") || usage.Redactions[KindPhone] != 1 || usage.CostUSD <= 0 ||
		usage.InputTokens == 0 || usage.Provider != "ollama" || usage.Duration <= 0 {
		t.Errorf("plan %s, usage %+v", plan, usage)
	}
	if g.Link().Stats().RTT <= 0 || g.Link().Stats().LastSeen.IsZero() {
		t.Errorf("the call was not observed: %+v", g.Link().Stats())
	}
	f.set(func(f *fakeRemote) { f.planFor = func(string) string { return "Sure! Here is the plan: step 1..." } })
	_, usage, err = g.PlanRemote(ctx, PlanRequest{RunID: "r", UserRequest: "x", Schema: []byte(testSchema)})
	var re *RemoteError
	if !errors.As(err, &re) || re.Kind != KindResponse {
		t.Fatalf("non-JSON plan: %v", err)
	}
	if usage.CostUSD <= 0 {
		t.Error("an answered call that returned prose was not billed")
	}
	var open int
	_ = store.Reader().QueryRow(`SELECT count(*) FROM budget_reservations WHERE status = 'reserved'`).Scan(&open)
	if open != 0 {
		t.Errorf("%d reservations open", open)
	}
	// Network failures count toward offline; after enough, calls stay local.
	f.set(func(f *fakeRemote) { f.reset = true })
	for range 3 {
		_, _, _ = g.PlanRemote(ctx, PlanRequest{RunID: "r", UserRequest: "x", Schema: []byte(testSchema)})
	}
	if g.Link().State() != LinkOffline {
		t.Fatalf("after 3 resets the link is %s", g.Link().State())
	}
	before := len(f.recorded())
	if _, _, err := g.PlanRemote(ctx, PlanRequest{RunID: "r", UserRequest: "x", Schema: []byte(testSchema)}); !errors.Is(err, ErrLink) {
		t.Errorf("offline PlanRemote = %v", err)
	}
	if len(f.recorded()) != before {
		t.Error("a call was sent while offline")
	}
}

func TestExportFinetune(t *testing.T) {
	ctx := context.Background()
	f := newFakeRemote(t)
	store := openStore(t)
	cfg := testConfig(f, "openai")
	g := newTestGate(t, store, cfg, nil)
	_, _, err := g.PlanRemote(ctx, PlanRequest{RunID: "r1", SystemPrompt: "You are agentd's planner.",
		UserRequest: "Email the lab results to dr.amara@clinic.no", Schema: []byte(testSchema),
		LocalPlan: `{"goal":"mail dr.amara@clinic.no"}`, LocalErrors: []string{"unknown tool send_mail"}})
	if err != nil {
		t.Fatal(err)
	}
	// A capped request is kept, but has no plan to learn from yet.
	cfg.Caps = config.CapsConfig{RunUSD: 0.000001}
	capped := newTestGate(t, store, cfg, nil)
	if _, _, err := capped.PlanRemote(ctx, PlanRequest{RunID: "r2", UserRequest: "other", Schema: []byte(testSchema)}); !errors.Is(err, ErrCapReached) {
		t.Fatal(err)
	}
	var out bytes.Buffer
	n, err := g.ExportFinetune(ctx, &out)
	if err != nil || n != 1 {
		t.Fatalf("ExportFinetune = %d, %v", n, err)
	}
	var line struct {
		Messages []chatMessage `json:"messages"`
	}
	sc := bufio.NewScanner(&out)
	sc.Scan()
	if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	m := line.Messages
	if len(m) != 3 || m[0].Role != "system" || m[1].Role != "user" || m[2].Role != "assistant" ||
		m[1].Content != "Email the lab results to [EMAIL_1]" || !json.Valid([]byte(m[2].Content)) ||
		!strings.Contains(m[2].Content, "[EMAIL_1]") {
		t.Errorf("exported %+v", m)
	}
	if sc.Scan() {
		t.Errorf("more than one line: %s", sc.Text())
	}
	var local, errs, reason string
	if err := store.Reader().QueryRow(`SELECT local_plan, local_errors, reason FROM finetune_candidates WHERE run_id = 'r1'`).
		Scan(&local, &errs, &reason); err != nil {
		t.Fatal(err)
	}
	if local != `{"goal":"mail [EMAIL_1]"}` || errs != `["unknown tool send_mail"]` || reason != ReasonRemotePlan {
		t.Errorf("candidate: %q %q %q", local, errs, reason)
	}
}
