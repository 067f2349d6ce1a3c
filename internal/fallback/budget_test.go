package fallback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
)

func TestConcurrentEscalationsNeverExceedDailyCap(t *testing.T) {
	ctx := context.Background()
	f := newFakeRemote(t)
	// Answers that use nearly all of max_tokens, so actual spend is close to
	// the reserved worst case and the cap is really pressed.
	f.set(func(f *fakeRemote) {
		f.delay = 20 * time.Millisecond
		f.planFor = func(user string) string {
			return fmt.Sprintf(`{"goal":%q,"steps":[],"answer":%q}`, "g", strings.Repeat("a", 3900))
		}
	})
	store := openStore(t)
	cfg := testConfig(f, "openai")
	cfg.Prices = map[string]config.PriceConfig{testModel: {InputPerMTok: 10, OutputPerMTok: 40}}
	cfg.Caps = config.CapsConfig{DayUSD: 1.00}
	pub := &recordingPublisher{}
	g := newTestGate(t, store, cfg, pub)

	const n = 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, capped int
	var other []error
	var spentReported float64
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, usage, err := g.PlanRemote(ctx, PlanRequest{RunID: fmt.Sprintf("run-%03d", i), SystemPrompt: "plan",
				UserRequest: "escalation " + fmt.Sprint(i), Schema: json.RawMessage(testSchema)})
			mu.Lock()
			defer mu.Unlock()
			var ce *CapError
			switch {
			case err == nil:
				ok++
				spentReported += usage.CostUSD
			case errors.As(err, &ce) && ce.Cap == CapDayUSD:
				capped++
			default:
				other = append(other, err)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d escalations: %d planned remotely, %d refused at the day cap", n, ok, capped)
	if len(other) > 0 {
		t.Fatalf("%d unexpected errors, first: %v", len(other), other[0])
	}
	if ok == 0 || capped == 0 || ok+capped != n {
		t.Fatalf("ok %d, capped %d; want both, summing to %d", ok, capped, n)
	}
	var total float64
	var open, committed int
	rows, err := store.Reader().Query(`SELECT status, COALESCE(actual_usd, 0) FROM budget_reservations`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var st string
		var usd float64
		if err := rows.Scan(&st, &usd); err != nil {
			t.Fatal(err)
		}
		switch st {
		case "committed":
			committed++
			total += usd
		case "reserved":
			open++
		}
	}
	rows.Close()
	if open != 0 {
		t.Errorf("%d reservations left open", open)
	}
	if committed != ok {
		t.Errorf("%d committed, %d calls succeeded", committed, ok)
	}
	if total > 1.00+1e-12 || total < 0.5 {
		t.Errorf("spent $%.9f against a $1.00 cap (want at most the cap, and the cap pressed)", total)
	}
	if diff := total - spentReported; diff > 1e-9 || diff < -1e-9 {
		t.Errorf("ledgered $%.9f, reported $%.9f", total, spentReported)
	}
	if len(f.recorded()) != ok {
		t.Errorf("remote saw %d requests, %d succeeded: refused calls must send nothing", len(f.recorded()), ok)
	}
	if len(pub.ofType(EventCapReached)) != capped {
		t.Errorf("%d cap events for %d refusals", len(pub.ofType(EventCapReached)), capped)
	}
	var kept int
	_ = store.Reader().QueryRow(`SELECT count(*) FROM finetune_candidates WHERE reason = 'cap_reached'`).Scan(&kept)
	if kept != capped {
		t.Errorf("%d cap_reached fine-tuning candidates for %d refusals", kept, capped)
	}
}

func newTestBudget(t *testing.T, store *db.Store, caps config.CapsConfig, now func() time.Time) *Budget {
	t.Helper()
	cfg := config.Default().Fallback
	cfg.Caps = caps
	cfg.Alerts = config.AlertsConfig{}
	cfg.Prices = map[string]config.PriceConfig{testModel: {InputPerMTok: 1, OutputPerMTok: 1}}
	b, err := NewBudget(BudgetOptions{Store: store, Config: cfg, Logger: discardLogger(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// usdTokens is a token count that costs usd at $1 per million tokens.
func usdTokens(usd float64) int { return int(usd * 1e6) }

func TestBudgetCaps(t *testing.T) {
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name    string
		caps    config.CapsConfig
		first   float64 // reserved and committed
		firstB  int64
		second  float64
		secondB int64
		sameRun bool
		wantCap string // "" = fits
	}{
		{"run cap, same run", config.CapsConfig{RunUSD: 0.05}, 0.04, 0, 0.02, 0, true, CapRunUSD},
		{"run cap, other run", config.CapsConfig{RunUSD: 0.05}, 0.04, 0, 0.02, 0, false, ""},
		{"day cap exactly full", config.CapsConfig{DayUSD: 1}, 0.7, 0, 0.3, 0, false, ""},
		{"day cap over", config.CapsConfig{DayUSD: 1}, 0.7, 0, 0.300001, 0, false, CapDayUSD},
		{"month cap", config.CapsConfig{DayUSD: 10, MonthUSD: 1}, 0.9, 0, 0.2, 0, false, CapMonthUSD},
		{"day bytes", config.CapsConfig{DayBytes: 1000}, 0, 600, 0, 500, false, CapDayBytes},
		{"month bytes", config.CapsConfig{DayBytes: 10000, MonthBytes: 1000}, 0, 600, 0, 401, false, CapMonthBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBudget(t, openStore(t), tc.caps, now)
			r, err := b.Reserve(ctx, "run-1", "openai", testModel, PurposePlan, 0, usdTokens(tc.first), tc.firstB)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Commit(ctx, r, tc.first, tc.firstB); err != nil {
				t.Fatal(err)
			}
			run := "run-2"
			if tc.sameRun {
				run = "run-1"
			}
			checkErr := b.Check(ctx, run, tc.second, tc.secondB)
			_, err = b.Reserve(ctx, run, "openai", testModel, PurposePlan, 0, usdTokens(tc.second), tc.secondB)
			var ce *CapError
			if tc.wantCap == "" {
				if err != nil || checkErr != nil {
					t.Fatalf("Reserve = %v, Check = %v; want it to fit", err, checkErr)
				}
				return
			}
			if !errors.As(err, &ce) || ce.Cap != tc.wantCap || !errors.Is(err, ErrCapReached) || !errors.Is(checkErr, ErrCapReached) {
				t.Fatalf("Reserve = %v, Check = %v; want the %s cap", err, checkErr, tc.wantCap)
			}
			if ce.Limit == 0 || ce.Request == 0 || !strings.Contains(ce.Error(), "fallback.caps."+tc.wantCap) {
				t.Errorf("CapError = %+v: %v", ce, ce)
			}
		})
	}
}

func TestBudgetOutstandingReservationsCountUntilSettled(t *testing.T) {
	ctx := context.Background()
	b := newTestBudget(t, openStore(t), config.CapsConfig{DayUSD: 1}, nil)
	r1, err := b.Reserve(ctx, "a", "openai", testModel, PurposePlan, 0, usdTokens(0.6), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Reserve(ctx, "b", "openai", testModel, PurposePlan, 0, usdTokens(0.6), 0); !errors.Is(err, ErrCapReached) {
		t.Fatalf("second reservation = %v; want refused while the first is open", err)
	}
	if err := b.Release(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx, r1); err == nil {
		t.Error("releasing twice succeeded")
	}
	r2, err := b.Reserve(ctx, "b", "openai", testModel, PurposePlan, 0, usdTokens(0.6), 0)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	if err := b.Commit(ctx, r2, 0.1, 0); err != nil {
		t.Fatal(err)
	}
	// Committed at its actual, not its worst case: 0.9 of room is left.
	if _, err := b.Reserve(ctx, "c", "openai", testModel, PurposePlan, 0, usdTokens(0.9), 0); err != nil {
		t.Fatalf("after commit: %v", err)
	}
}

func TestBudgetStaleReservationsKeptAtWorstCase(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	b := newTestBudget(t, store, config.CapsConfig{DayUSD: 1}, nil)
	if _, err := b.Reserve(ctx, "crashed", "openai", testModel, PurposePlan, 0, usdTokens(0.7), 0); err != nil {
		t.Fatal(err)
	}
	// A new process starts on the same database.
	b2 := newTestBudget(t, store, config.CapsConfig{DayUSD: 1}, nil)
	n, err := b2.Recover(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v", n, err)
	}
	var status string
	if err := store.Reader().QueryRow(`SELECT status FROM budget_reservations WHERE run_id = 'crashed'`).Scan(&status); err != nil || status != db.ReservationOrphaned {
		t.Fatalf("status = %q, %v", status, err)
	}
	if _, err := b2.Reserve(ctx, "next", "openai", testModel, PurposePlan, 0, usdTokens(0.4), 0); !errors.Is(err, ErrCapReached) {
		t.Fatalf("Reserve = %v; the orphaned $0.70 must still count", err)
	}
	if _, err := b2.Reserve(ctx, "next", "openai", testModel, PurposePlan, 0, usdTokens(0.3), 0); err != nil {
		t.Fatalf("Reserve within the rest: %v", err)
	}
	if n, _ := b2.Recover(ctx); n != 1 {
		t.Errorf("second Recover orphaned %d", n)
	}
}

func TestBudgetWindowsUseTimeZone(t *testing.T) {
	cfg := config.Default().Fallback
	cfg.TimeZone = "Pacific/Auckland"
	b, err := NewBudget(BudgetOptions{Store: openStore(t), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	day, month := b.Windows(time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC))
	if day != "2026-02-01" || month != "2026-02" {
		t.Errorf("windows = %s %s; want Auckland's 2026-02-01", day, month)
	}
	cfg.TimeZone = "Mars/Olympus"
	if _, err := NewBudget(BudgetOptions{Store: openStore(t), Config: cfg}); err == nil {
		t.Error("bad zone accepted")
	}
}

func TestBudgetAlertsOncePerWindow(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	var mu sync.Mutex
	var hooks []Alert
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a Alert
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &a); err != nil || r.Method != http.MethodPost {
			t.Errorf("webhook got %s %s", r.Method, body)
		}
		mu.Lock()
		hooks = append(hooks, a)
		mu.Unlock()
	}))
	defer hook.Close()
	outFile := filepath.Join(t.TempDir(), "alerts.jsonl")
	clock := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	build := func() (*Budget, *recordingPublisher) {
		cfg := config.Default().Fallback
		cfg.Caps = config.CapsConfig{DayUSD: 1}
		cfg.Alerts = config.AlertsConfig{Thresholds: []float64{0.8, 0.5, 1.0}, Webhook: hook.URL, Command: []string{"tee", "-a", outFile}}
		cfg.Prices = map[string]config.PriceConfig{testModel: {InputPerMTok: 1, OutputPerMTok: 1}}
		pub := &recordingPublisher{}
		b, err := NewBudget(BudgetOptions{Store: store, Config: cfg, Publisher: pub, Logger: discardLogger(), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return b, pub
	}
	spend := func(b *Budget, usd float64) {
		t.Helper()
		r, err := b.Reserve(ctx, "r", "openai", testModel, PurposePlan, 0, usdTokens(usd), 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(ctx, r, usd, 0); err != nil {
			t.Fatal(err)
		}
	}
	thresholdsOf := func(pub *recordingPublisher) []float64 {
		var out []float64
		for _, e := range pub.ofType("budget.alert") {
			out = append(out, e.Data.(events.BudgetAlertData).Threshold)
		}
		return out
	}
	b, pub := build()
	first := b
	spend(b, 0.3)
	spend(b, 0.3) // 60%: the 50% alert
	spend(b, 0.1)
	spend(b, 0.2) // 90%: the 80% alert
	if got := fmt.Sprint(thresholdsOf(pub)); got != "[0.5 0.8]" {
		t.Fatalf("alerts = %s; want [0.5 0.8]", got)
	}
	// A restarted process does not repeat them.
	b, pub = build()
	spend(b, 0.1) // 100%
	if got := fmt.Sprint(thresholdsOf(pub)); got != "[1]" {
		t.Fatalf("after restart alerts = %s; want [1]", got)
	}
	// The next day starts over.
	clock = clock.Add(24 * time.Hour)
	spend(b, 0.55)
	if got := fmt.Sprint(thresholdsOf(pub)); got != "[1 0.5]" {
		t.Fatalf("next day alerts = %s; want [1 0.5]", got)
	}
	first.Wait()
	b.Wait()
	mu.Lock()
	var got []string
	for _, h := range hooks {
		got = append(got, fmt.Sprintf("%s/%s/%v", h.Cap, h.Period, h.Threshold))
	}
	sort.Strings(got)
	if fmt.Sprint(got) != "[day_usd/2026-03-14/0.5 day_usd/2026-03-14/0.8 day_usd/2026-03-14/1 day_usd/2026-03-15/0.5]" {
		t.Errorf("webhook got %v", got)
	}
	mu.Unlock()
	data, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(data), "\n"); lines != 4 || !strings.Contains(string(data), `"threshold":0.8`) {
		t.Errorf("command got %d alerts:\n%s", lines, data)
	}
}

func TestRemoteOnlyCost(t *testing.T) {
	f := newFakeRemote(t)
	g := newTestGate(t, openStore(t), testConfig(f, "openai"), nil)
	if got, want := g.RemoteOnlyCost(1_000_000, 500_000), 1.0+2.0; got != want {
		t.Errorf("RemoteOnlyCost = %v, want %v", got, want)
	}
}

// budget.changed carries where spend stands against every cap, so the
// budget gauges follow it (it carried no caps, and they were never set).
func TestBudgetChangedCarriesTheCaps(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	pub := &recordingPublisher{}
	cfg := config.Default().Fallback
	cfg.Caps = config.CapsConfig{DayUSD: 1, MonthUSD: 10, RunUSD: 0.5}
	cfg.Alerts = config.AlertsConfig{Thresholds: []float64{0.5, 0.8}}
	cfg.Prices = map[string]config.PriceConfig{testModel: {InputPerMTok: 1, OutputPerMTok: 1}}
	b, err := NewBudget(BudgetOptions{Store: store, Config: cfg, Publisher: pub, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.Reserve(ctx, "r", "openai", testModel, PurposePlan, 0, usdTokens(0.3), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx, r, 0.3, 0); err != nil {
		t.Fatal(err)
	}
	evs := pub.ofType(events.BudgetChanged)
	if len(evs) != 1 {
		t.Fatalf("budget.changed events = %d", len(evs))
	}
	d := evs[0].Data.(events.BudgetChangedData)
	byName := map[string]events.BudgetCapData{}
	for _, c := range d.Caps {
		byName[c.Name] = c
	}
	if c := byName[CapDayUSD]; c.Cap != 1 || c.Spent != 0.3 || c.Unit != "usd" || c.Period != "day" {
		t.Errorf("day cap = %+v", c)
	}
	if c := byName[CapRunUSD]; c.Cap != 0.5 || c.Spent != 0.3 || c.Alert != 50 {
		t.Errorf("run cap = %+v, want spent 0.3 of 0.5 with the 50%% alert crossed", c)
	}
}
