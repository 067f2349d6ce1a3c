package fallback

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
)

func TestLedgerWrittenBeforeSend(t *testing.T) {
	ctx := context.Background()
	f := newFakeRemote(t)
	store := openStore(t)
	var mu sync.Mutex
	var seenStatus, seenDest string
	var seenBytes int64
	f.set(func(f *fakeRemote) {
		f.onRequest = func(_ string, body []byte) {
			// The remote has the bytes: the ledger must already hold them.
			mu.Lock()
			defer mu.Unlock()
			err := store.Reader().QueryRow(`SELECT status, destination, bytes_out FROM egress_ledger WHERE sha256 = ?`,
				BodyHash(body)).Scan(&seenStatus, &seenDest, &seenBytes)
			if err != nil {
				t.Errorf("no ledger row for the body the remote received: %v", err)
			}
		}
	})
	var egressEvents int
	pub := PublisherFunc(func(runID string, p events.Payload) {
		if p.EventType() == events.Egress && runID == "run-1" {
			mu.Lock()
			egressEvents++
			mu.Unlock()
		}
	})
	g := newTestGate(t, store, testConfig(f, "anthropic"), pub)
	_, usage, err := g.PlanRemote(ctx, PlanRequest{RunID: "run-1", Purpose: PurposeReplan, SystemPrompt: "plan",
		UserRequest: "mail ola@example.com", Schema: []byte(testSchema)})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if seenStatus != "sent" || seenDest != strings.TrimPrefix(f.srv.URL, "http://") || seenBytes != usage.BytesOut {
		t.Errorf("during the call the ledger said %q %q %d", seenStatus, seenDest, seenBytes)
	}
	mu.Unlock()
	var recs []db.EgressRecord
	_ = store.EachEgress(ctx, time.Time{}, func(e db.EgressRecord) error { recs = append(recs, e); return nil })
	body := f.recorded()[0].Body
	if len(recs) != 1 {
		t.Fatalf("%d ledger rows", len(recs))
	}
	e := recs[0]
	if e.Status != "ok" || e.BytesIn != usage.BytesIn || e.BytesIn == 0 || e.BytesOut != int64(len(body)) ||
		e.SHA256 != BodyHash(body) || e.Purpose != PurposeReplan || e.Provider != "anthropic" || e.Model != testModel ||
		e.RunID != "run-1" || e.Redactions[KindEmail] != 1 {
		t.Errorf("ledger row = %+v", e)
	}
	mu.Lock()
	if egressEvents != 1 {
		t.Errorf("egress events = %d", egressEvents)
	}
	mu.Unlock()
}

func TestFailedCallsSettleByWhatIsKnown(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		setup      func(f *fakeRemote)
		closed     bool
		wantStatus string // reservation status
		egress     string // ledger status
		worstCase  bool   // committed at the reserved worst case
		transient  bool
	}{
		{"500 answered: nothing billed", func(f *fakeRemote) { f.failCode, f.failLeft = 500, -1 }, false, "committed", "failed", false, true},
		{"401 answered: nothing billed", func(f *fakeRemote) { f.failCode, f.failLeft = 401, -1 }, false, "committed", "failed", false, false},
		{"timeout: maybe billed", func(f *fakeRemote) { f.hang = true }, false, "committed", "failed", true, true},
		{"reset: maybe billed", func(f *fakeRemote) { f.reset = true }, false, "committed", "failed", true, true},
		{"refused: never sent", nil, true, "released", "unsent", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeRemote(t)
			if tc.setup != nil {
				f.set(tc.setup)
			}
			store := openStore(t)
			cfg := testConfig(f, "openai")
			cfg.Timeout = config.Duration(300 * time.Millisecond)
			g := newTestGate(t, store, cfg, nil)
			if tc.closed {
				f.srv.Close()
			}
			_, usage, err := g.PlanRemote(ctx, PlanRequest{RunID: "r", UserRequest: "x", Schema: []byte(testSchema)})
			var re *RemoteError
			if !errors.As(err, &re) || re.Transient() != tc.transient {
				t.Fatalf("err = %v", err)
			}
			var status, egress string
			var reserved, actual float64
			var actualBytes int64
			if err := store.Reader().QueryRow(`SELECT status, reserved_usd, COALESCE(actual_usd,0), COALESCE(actual_bytes,0) FROM budget_reservations`).
				Scan(&status, &reserved, &actual, &actualBytes); err != nil {
				t.Fatal(err)
			}
			if status != tc.wantStatus {
				t.Errorf("reservation %s, want %s", status, tc.wantStatus)
			}
			if tc.worstCase && (actual != reserved || usage.CostUSD != reserved) {
				t.Errorf("actual %v, usage %v; want the worst case %v", actual, usage.CostUSD, reserved)
			}
			if !tc.worstCase && actual != 0 {
				t.Errorf("actual %v; want 0", actual)
			}
			if status == "committed" && actualBytes < usage.BytesOut {
				t.Errorf("bytes %d committed, %d left", actualBytes, usage.BytesOut)
			}
			if err := store.Reader().QueryRow(`SELECT status FROM egress_ledger`).Scan(&egress); err != nil || egress != tc.egress {
				t.Errorf("egress status %q, %v", egress, err)
			}
		})
	}
}

func TestLedgerExport(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	l := NewLedger(store, nil)
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	for i, at := range []time.Time{day.Add(-time.Hour), day.Add(time.Hour), day.Add(2 * time.Hour)} {
		store.Now = func() time.Time { return at }
		id, err := l.Begin(ctx, Egress{RunID: "run", Destination: "api.example.com", Provider: "openai", Model: "m",
			Purpose: PurposePlan, Body: []byte(strings.Repeat("b", 10+i)), Redactions: map[string]int{KindEmail: 2, KindPhone: 1}})
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			if err := l.Finish(ctx, id, 99, "ok"); err != nil {
				t.Fatal(err)
			}
		}
	}
	var js strings.Builder
	if err := l.Export(ctx, &js, day, "jsonl"); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(js.String()))
	var got []db.EgressRecord
	for sc.Scan() {
		var e db.EgressRecord
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if len(got) != 2 || got[0].BytesOut != 11 || got[0].BytesIn != 99 || got[0].SHA256 != BodyHash([]byte(strings.Repeat("b", 11))) ||
		got[1].Status != "sent" || got[0].Redactions[KindEmail] != 2 || !got[0].CreatedAt.Equal(day.Add(time.Hour)) {
		t.Errorf("jsonl since %s = %+v", day, got)
	}
	var cs strings.Builder
	if err := l.Export(ctx, &cs, time.Time{}, "csv"); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(cs.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[0][9] != "sha256" || rows[1][10] != "EMAIL=2;PHONE=1" || rows[1][1] != "2026-03-13T23:00:00Z" {
		t.Errorf("csv = %q", rows)
	}
	if err := l.Export(ctx, &cs, day, "xml"); err == nil {
		t.Error("unknown format accepted")
	}
	// A restart marks what was in flight.
	if n, err := l.Recover(ctx); err != nil || n != 1 {
		t.Errorf("Recover = %d, %v", n, err)
	}
}
