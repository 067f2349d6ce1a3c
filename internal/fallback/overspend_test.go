package fallback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
)

// billingRemote is an OpenAI-shaped remote on 127.0.0.1 that bills what
// bill says for each request's max_tokens, and that can be stopped and
// started again on the same port (the remote going away and coming back).
type billingRemote struct {
	t    *testing.T
	addr string
	bill func(maxTokens int) int // output tokens reported; nil: honest (the content's size)

	mu       sync.Mutex
	srv      *httptest.Server
	delay    time.Duration
	requests int
	maxSeen  int // max_tokens of the last request
	inFlight int
	peak     int
	// overbilled counts answers that reported more than max_tokens.
	overbilled int
}

func newBillingRemote(t *testing.T, bill func(int) int) *billingRemote {
	t.Helper()
	r := &billingRemote{t: t, bill: bill}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.startOn(ln)
	t.Cleanup(r.stop)
	return r
}

func (r *billingRemote) url() string { return "http://" + r.addr }

func (r *billingRemote) startOn(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", r.serve)
	mux.HandleFunc("GET /probe", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("x", 4<<10))
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
}

// stop takes the remote away: connections are refused until start.
func (r *billingRemote) stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
	}
}

// start brings the remote back on the same address.
func (r *billingRemote) start() {
	var ln net.Listener
	var err error
	for range 50 { // the port may linger for a moment after Close
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("listen again on %s: %v", r.addr, err)
	}
	r.startOn(ln)
}

func (r *billingRemote) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

func (r *billingRemote) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var in struct {
		MaxTokens *int `json:"max_tokens"`
	}
	_ = json.Unmarshal(body, &in)
	r.mu.Lock()
	r.requests++
	r.inFlight++
	r.peak = max(r.peak, r.inFlight)
	delay := r.delay
	if in.MaxTokens != nil {
		r.maxSeen = *in.MaxTokens
	} else {
		r.maxSeen = -1
	}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
	}()
	if in.MaxTokens == nil {
		http.Error(w, `{"error":{"message":"max_tokens is required"}}`, http.StatusBadRequest)
		return
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	content := `{"goal":"g","steps":[],"answer":"` + strings.Repeat("a", 3000) + `"}`
	out := len(content) / 4
	if r.bill != nil {
		out = r.bill(*in.MaxTokens)
	}
	if out > *in.MaxTokens {
		r.mu.Lock()
		r.overbilled++
		r.mu.Unlock()
	}
	resp := map[string]any{"id": "chatcmpl-1", "object": "chat.completion",
		"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": content}, "finish_reason": "stop"}},
		"usage":   map[string]any{"prompt_tokens": len(body) / 4, "completion_tokens": out}}
	b, _ := json.Marshal(resp)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func billingConfig(r *billingRemote) config.FallbackConfig {
	c := config.Default().Fallback
	c.Enabled = true
	c.Provider = "openai"
	c.BaseURL = r.url() + "/v1"
	c.Model = testModel
	c.MaxTokens = 1000
	c.MaxInFlight = 4
	c.Timeout = config.Duration(5 * time.Second)
	c.Prices = map[string]config.PriceConfig{testModel: {InputPerMTok: 10, OutputPerMTok: 40}}
	c.Caps = config.CapsConfig{DayUSD: 1.00}
	c.Alerts = config.AlertsConfig{Thresholds: []float64{0.5, 0.8, 1.0}}
	c.Link.ProbeURL = ""
	return c
}

func openGate(t *testing.T, store *db.Store, cfg config.FallbackConfig, pub Publisher, link *Link) *Gate {
	t.Helper()
	prov, err := NewProvider(cfg, ProviderOptions{Key: testKey, Logger: discardLogger(),
		Client: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGate(context.Background(), GateOptions{Config: cfg, Store: store, Provider: prov, Publisher: pub,
		Logger: discardLogger(), Link: link})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// spendOf sums what the budget counts as spent today.
func spendOf(t *testing.T, store *db.Store) (spent float64, open int) {
	t.Helper()
	if err := store.Reader().QueryRow(`SELECT COALESCE(SUM(CASE status WHEN 'committed' THEN actual_usd WHEN 'released' THEN 0 ELSE reserved_usd END), 0),
		COALESCE(SUM(status = 'reserved'), 0) FROM budget_reservations`).Scan(&spent, &open); err != nil {
		t.Fatal(err)
	}
	return spent, open
}

// escalate runs n escalations at once and sorts their outcomes.
func escalate(g *Gate, n int) (ok, capped, suspended int, other []error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := g.PlanRemote(context.Background(), PlanRequest{RunID: fmt.Sprintf("run-%03d", i), SystemPrompt: "plan",
				UserRequest: "escalation " + fmt.Sprint(i), Schema: json.RawMessage(testSchema)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrCapReached):
				capped++
			case errors.Is(err, ErrSuspended):
				suspended++
			default:
				other = append(other, err)
			}
		}()
	}
	wg.Wait()
	return
}

// The figure "Overspend": 200 concurrent escalations against a day cap of
// $1, with an honest provider and with one that bills 10x max_tokens.
// With fallback.max_in_flight = N, spend <= cap + N x one call's overbill,
// and after the first overbill is settled no new call is sent.
func TestCapsHoldAgainstDishonestProvider(t *testing.T) {
	for _, tc := range []struct {
		name        string
		bill        func(int) int
		maxInFlight int
	}{
		{"honest", nil, 4},
		{"bills_10x_max_tokens", func(maxTokens int) int { return 10 * maxTokens }, 4},
		{"bills_10x_max_tokens_one_in_flight", func(maxTokens int) int { return 10 * maxTokens }, 1},
		// The worst case: honest until the cap is nearly spent (an honest
		// call here costs about $0.031, 28 of them about $0.87), then 10x.
		{"turns_dishonest_near_the_cap", dishonestAfter(28), 4},
		{"turns_dishonest_near_the_cap_one_in_flight", dishonestAfter(28), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote := newBillingRemote(t, tc.bill)
			remote.delay = 20 * time.Millisecond
			store := openStore(t)
			cfg := billingConfig(remote)
			cfg.MaxInFlight = tc.maxInFlight
			pub := &recordingPublisher{}
			g := openGate(t, store, cfg, pub, nil)

			ok, capped, suspended, other := escalate(g, 200)
			if len(other) > 0 {
				t.Fatalf("%d unexpected errors, first: %v", len(other), other[0])
			}
			spent, open := spendOf(t, store)
			if open != 0 {
				t.Errorf("%d reservations left open", open)
			}
			capUSD := cfg.Caps.DayUSD
			// One call's overbill: what it was billed beyond its reservation.
			var overbill float64
			rows, err := store.Reader().Query(`SELECT MAX(actual_usd - reserved_usd) FROM budget_reservations WHERE status = 'committed'`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				_ = rows.Scan(&overbill)
			}
			rows.Close()
			overbill = max(overbill, 0)
			bound := capUSD + float64(tc.maxInFlight)*overbill
			t.Logf("FIGURE overspend %s: 200 escalations, max_in_flight %d: %d planned, %d capped, %d refused as suspended; sent %d (%d overbilled); spend $%.4f / cap $%.2f = %.3f (bound 1 + %d x overbill $%.4f / cap = %.3f); peak in flight at the remote %d",
				tc.name, tc.maxInFlight, ok, capped, suspended, remote.count(), remote.overbilled, spent, capUSD, spent/capUSD,
				tc.maxInFlight, overbill, bound/capUSD, remote.peak)
			if spent > bound+1e-9 {
				t.Errorf("spent $%.6f, over the bound $%.6f", spent, bound)
			}
			if remote.peak > tc.maxInFlight {
				t.Errorf("%d calls in flight at once at the remote; max_in_flight is %d", remote.peak, tc.maxInFlight)
			}
			if remote.maxSeen != cfg.MaxTokens {
				t.Errorf("the request carried max_tokens %d, want %d", remote.maxSeen, cfg.MaxTokens)
			}
			st, err := g.ProviderState()
			if err != nil {
				t.Fatal(err)
			}
			if tc.bill == nil {
				if spent > capUSD+1e-9 || spent < 0.5*capUSD {
					t.Errorf("honest provider: spent $%.6f against the $%.2f cap (want at most the cap, and the cap pressed)", spent, capUSD)
				}
				if st.Suspended || suspended > 0 || len(pub.ofType(EventProviderSuspended)) > 0 {
					t.Errorf("an honest provider was suspended: %+v", st)
				}
				return
			}
			// After the first overbill, no new call: every overbilled call
			// was already in flight when the first was settled.
			if remote.overbilled > tc.maxInFlight || remote.overbilled == 0 {
				t.Errorf("the remote overbilled %d calls; after the first only the %d in flight may finish", remote.overbilled, tc.maxInFlight)
			}
			if !st.Suspended || st.Enabled || !strings.Contains(st.Reason, "max_tokens 1000") {
				t.Errorf("provider state = %+v; want suspended for its output tokens", st)
			}
			if evs := pub.ofType(EventProviderSuspended); len(evs) != 1 {
				t.Errorf("%d suspension events, want 1", len(evs))
			}
			var overbillAlerts int
			for _, e := range pub.ofType(events.BudgetAlert) {
				if a, ok := e.Data.(events.BudgetAlertData); ok && a.Kind == AlertOverbill {
					overbillAlerts++
				}
			}
			if overbillAlerts != 1 {
				t.Errorf("%d overbill alerts, want 1", overbillAlerts)
			}
		})
	}
}

// dishonestAfter bills honestly (the content's size) for n calls, then 10x
// max_tokens.
func dishonestAfter(n int64) func(int) int {
	var calls atomic.Int64
	return func(maxTokens int) int {
		if calls.Add(1) > n {
			return 10 * maxTokens
		}
		return 3030 / 4
	}
}

// A suspension outlives the process and holds until a person lifts it.
func TestSuspensionSurvivesRestartUntilEnabled(t *testing.T) {
	ctx := context.Background()
	var dishonest atomic.Bool
	dishonest.Store(true)
	remote := newBillingRemote(t, func(maxTokens int) int {
		if dishonest.Load() {
			return 10 * maxTokens
		}
		return maxTokens / 2
	})
	store := openStore(t)
	cfg := billingConfig(remote)
	cfg.Caps = config.CapsConfig{}
	g := openGate(t, store, cfg, nil, nil)
	req := PlanRequest{RunID: "r1", SystemPrompt: "plan", UserRequest: "one", Schema: json.RawMessage(testSchema)}
	if _, _, err := g.PlanRemote(ctx, req); err != nil {
		t.Fatalf("the overbilled call itself returns its plan: %v", err)
	}
	// The same process, and a new one on the same database, both refuse.
	restarted := openGate(t, store, cfg, nil, nil)
	for name, gate := range map[string]*Gate{"same process": g, "after restart": restarted} {
		err := gate.Check(ctx, req)
		var se *SuspendedError
		if !errors.As(err, &se) || !Degrades(err) || !strings.Contains(err.Error(), "agentd fallback enable") {
			t.Errorf("%s: Check = %v; want a *SuspendedError that degrades and says what to do", name, err)
		}
		if ok, reason := gate.AllowRemote(ctx, req); ok || !strings.Contains(reason, "suspended") {
			t.Errorf("%s: AllowRemote = %v %q", name, ok, reason)
		}
		if _, _, err := gate.PlanRemote(ctx, req); !errors.Is(err, ErrSuspended) {
			t.Errorf("%s: PlanRemote = %v", name, err)
		}
	}
	if remote.count() != 1 {
		t.Fatalf("the remote saw %d calls; want only the overbilled one", remote.count())
	}
	st, _ := restarted.ProviderState()
	if !st.Suspended || st.RunID != "r1" || st.ActualUSD <= st.ReservedUSD || st.SuspendedAt.IsZero() {
		t.Errorf("stored state = %+v", st)
	}

	dishonest.Store(false)
	pub := &recordingPublisher{}
	restarted.pub = pub
	st, err := restarted.EnableProvider(ctx, "cli")
	if err != nil || st.Suspended || !st.Enabled || st.ChangedBy != "cli" {
		t.Fatalf("EnableProvider = %+v, %v", st, err)
	}
	if len(pub.ofType(EventProviderEnabled)) != 1 {
		t.Error("no enabled event")
	}
	if _, _, err := restarted.PlanRemote(ctx, req); err != nil {
		t.Fatalf("after re-enabling: %v", err)
	}
	again := openGate(t, store, cfg, nil, nil)
	if st, _ := again.ProviderState(); st.Suspended {
		t.Errorf("re-enabled state not stored: %+v", st)
	}
}

// Every request carries the output limit; one without it is never built.
func TestEveryRequestCarriesOutputLimit(t *testing.T) {
	f := newFakeRemote(t)
	for _, kind := range []string{"openai", "anthropic", "ollama"} {
		t.Run(kind, func(t *testing.T) {
			p := newTestProvider(t, f, kind)
			r := testRequest()
			r.MaxTokens = 0
			if _, err := p.Encode(r); err == nil || !strings.Contains(err.Error(), "fallback.max_tokens") {
				t.Errorf("Encode without a limit = %v", err)
			}
			r.MaxTokens = 1
			b, err := p.Encode(r)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			opts, _ := m["options"].(map[string]any)
			if m["max_tokens"] != 1.0 && opts["num_predict"] != 1.0 {
				t.Errorf("limit missing from %s", b)
			}
		})
	}
}

// A run refused for caps reads the same at routing (Check) as at
// reservation (PlanRemote), and Degrades is the one rule for both.
func TestRefusalsReadAlikeAtRoutingAndReservation(t *testing.T) {
	ctx := context.Background()
	f := newFakeRemote(t)
	for _, tc := range []struct {
		name     string
		setup    func(cfg *config.FallbackConfig, req *PlanRequest)
		is       error
		degrades bool
	}{
		{"run cap", func(c *config.FallbackConfig, _ *PlanRequest) { c.Caps = config.CapsConfig{RunUSD: 0.0001} }, ErrCapReached, true},
		{"day bytes cap", func(c *config.FallbackConfig, _ *PlanRequest) { c.Caps = config.CapsConfig{DayBytes: 100} }, ErrCapReached, true},
		{"sensitive", func(_ *config.FallbackConfig, r *PlanRequest) { r.Sensitive = true }, ErrSensitive, false},
		{"disabled", func(c *config.FallbackConfig, _ *PlanRequest) { c.Enabled = false }, ErrDisabled, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(f, "openai")
			req := PlanRequest{RunID: "r", UserRequest: "plan it", Schema: []byte(testSchema)}
			tc.setup(&cfg, &req)
			g := newTestGate(t, openStore(t), cfg, nil)
			atRouting := g.Check(ctx, req)
			_, _, atReservation := g.PlanRemote(ctx, req)
			if !errors.Is(atRouting, tc.is) || !errors.Is(atReservation, tc.is) {
				t.Fatalf("routing %v, reservation %v; want both %v", atRouting, atReservation, tc.is)
			}
			if Degrades(atRouting) != tc.degrades || Degrades(atReservation) != tc.degrades {
				t.Errorf("Degrades: routing %v, reservation %v; want %v", Degrades(atRouting), Degrades(atReservation), tc.degrades)
			}
		})
	}
	// A link refusal does not degrade, at either point.
	cfg := testConfig(f, "openai")
	cfg.Link.ProbeURL = ""
	g := newTestGate(t, openStore(t), cfg, nil)
	for range 3 {
		g.Link().Observe(Observation{Failed: true})
	}
	req := PlanRequest{RunID: "r", UserRequest: "plan it", Schema: []byte(testSchema)}
	// Offline with a trial due: the check passes; block trials to see the refusal.
	g.Link().mu.Lock()
	g.Link().nextTry = time.Now().Add(time.Hour)
	g.Link().mu.Unlock()
	atRouting := g.Check(ctx, req)
	_, _, atReservation := g.PlanRemote(ctx, req)
	if !errors.Is(atRouting, ErrLink) || !errors.Is(atReservation, ErrLink) || Degrades(atRouting) || Degrades(atReservation) {
		t.Errorf("link: routing %v, reservation %v", atRouting, atReservation)
	}
}
