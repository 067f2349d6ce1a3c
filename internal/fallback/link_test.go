package fallback

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/events"
)

func testLinkConfig() config.LinkConfig {
	return config.LinkConfig{LatencyBudget: config.Duration(5 * time.Second), ConstrainedBelowBps: 256_000, OfflineAfter: 3}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestLinkOfflineHysteresis(t *testing.T) {
	pub := &recordingPublisher{}
	l := NewLink(LinkOptions{Config: testLinkConfig(), Publisher: pub, Logger: discardLogger()})
	ch := l.Changed()
	for i := range 2 {
		l.Observe(Observation{Failed: true})
		if l.State() != LinkOnline {
			t.Fatalf("offline after %d failures; want %d", i+1, 3)
		}
	}
	l.Observe(Observation{RTT: 50 * time.Millisecond}) // a success resets the count
	l.Observe(Observation{Failed: true})
	l.Observe(Observation{Failed: true})
	if l.State() != LinkOnline || closed(ch) {
		t.Fatal("failures not consecutive, yet the state changed")
	}
	l.Observe(Observation{Failed: true})
	if l.State() != LinkOffline || !closed(ch) {
		t.Fatalf("state %s after 3 consecutive failures", l.State())
	}
	if ok, reason := l.Allow(10); ok || !strings.Contains(reason, "offline") {
		t.Errorf("Allow while offline = %v %q", ok, reason)
	}
	ch = l.Changed()
	l.Observe(Observation{RTT: 50 * time.Millisecond})
	if l.State() != LinkOffline || closed(ch) {
		t.Fatal("one success brought the link back; want two")
	}
	l.Observe(Observation{RTT: 50 * time.Millisecond})
	if l.State() != LinkOnline || !closed(ch) {
		t.Fatalf("state %s after two successes", l.State())
	}
	evs := pub.ofType("link.state")
	if len(evs) != 2 || evs[0].Data.(events.LinkStateData).To != string(LinkOffline) || evs[1].Data.(events.LinkStateData).To != string(LinkOnline) {
		t.Errorf("link events = %+v", evs)
	}
}

func TestLinkConstrainedHysteresisAndEstimate(t *testing.T) {
	l := NewLink(LinkOptions{Config: testLinkConfig(), Logger: discardLogger(), Alpha: 1}) // no smoothing: exact steps
	sample := func(bitsPerSec float64) {
		l.Observe(Observation{RTT: 100 * time.Millisecond, Bytes: int64(bitsPerSec / 8), Transfer: time.Second})
	}
	sample(1_000_000)
	if l.State() != LinkOnline {
		t.Fatalf("1 Mbit/s is %s", l.State())
	}
	sample(200_000)
	if l.State() != LinkConstrained {
		t.Fatalf("200 kbit/s is %s", l.State())
	}
	sample(280_000) // above the line, but within the hysteresis band
	if l.State() != LinkConstrained {
		t.Fatalf("280 kbit/s left constrained too early")
	}
	sample(400_000)
	if l.State() != LinkOnline {
		t.Fatalf("400 kbit/s is %s", l.State())
	}
	// Tiny samples say nothing about throughput.
	l.Observe(Observation{Bytes: 100, Transfer: time.Second})
	if st := l.Stats(); st.BitsPerSec != 400_000 || st.ThroughputSamples != 4 {
		t.Errorf("stats = %+v", st)
	}
	// 50 000 bytes/s and a 100 ms round trip: 2 RTT + 100 kB / 50 kB/s.
	if got, want := l.EstimateTransfer(60_000, 40_000), 2*time.Second+200*time.Millisecond; got != want {
		t.Errorf("EstimateTransfer = %s, want %s", got, want)
	}
	if ok, _ := l.Allow(200_000); !ok {
		t.Error("4.2 s refused within a 5 s budget")
	}
	if ok, reason := l.Allow(300_000); ok || !strings.Contains(reason, "latency budget") {
		t.Errorf("6.2 s allowed within a 5 s budget: %q", reason)
	}
}

func TestLinkSmoothing(t *testing.T) {
	l := NewLink(LinkOptions{Config: testLinkConfig(), Logger: discardLogger()})
	l.Observe(Observation{Bytes: 100_000, Transfer: time.Second})
	l.Observe(Observation{Bytes: 10_000, Transfer: time.Second})
	// EWMA with alpha 0.3: 0.3*10k + 0.7*100k = 73k bytes/s.
	if got := l.Stats().BitsPerSec; got != 73_000*8 {
		t.Errorf("smoothed = %d bit/s", got)
	}
}

func TestLinkProbeMeasuresThrottledLink(t *testing.T) {
	f := newFakeRemote(t)
	f.set(func(f *fakeRemote) { f.throttle, f.probeBody = 16_000, 16_000 })
	cfg := testLinkConfig()
	cfg.ProbeURL = f.srv.URL + "/probe"
	l := NewLink(LinkOptions{Config: cfg, Logger: discardLogger()})
	if err := l.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.BitsPerSec < 16_000*8/2 || st.BitsPerSec > 16_000*8*2 || st.RTT <= 0 {
		t.Errorf("probe measured %d bit/s, rtt %s; the link runs at %d", st.BitsPerSec, st.RTT, 16_000*8)
	}
	if st.State != LinkConstrained {
		t.Errorf("128 kbit/s is %s", st.State)
	}
	f.set(func(f *fakeRemote) { f.reset = true })
	if err := l.Probe(context.Background()); err == nil || l.Stats().ConsecutiveFailures != 1 {
		t.Errorf("failed probe: %v, %+v", err, l.Stats())
	}
}

func TestLinkRunProbesOnSchedule(t *testing.T) {
	f := newFakeRemote(t)
	f.set(func(f *fakeRemote) { f.reset = true })
	cfg := testLinkConfig()
	cfg.ProbeURL = f.srv.URL + "/probe"
	cfg.ProbeInterval = config.Duration(time.Hour)
	ticks := make(chan time.Time)
	asked := make(chan time.Duration, 10)
	l := NewLink(LinkOptions{Config: cfg, Logger: discardLogger(), After: func(d time.Duration) <-chan time.Time {
		asked <- d
		return ticks
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	for range 2 {
		if d := <-asked; d != time.Hour {
			t.Errorf("waited %s between probes", d)
		}
		ticks <- time.Now()
	}
	<-asked
	if l.State() != LinkOffline {
		t.Errorf("3 failed probes left the link %s", l.State())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v; cancellation is a clean exit", err)
	}
}

// On a 32 kbit/s link a planning request whose transfer would not fit the
// latency budget stays local: nothing is sent, reserved or ledgered.
func TestSlowLinkKeepsPlanningLocal(t *testing.T) {
	ctx := context.Background()
	f := newFakeRemote(t)
	f.set(func(f *fakeRemote) { f.throttle, f.probeBody = 4000, 4000 }) // 32 kbit/s
	store := openStore(t)
	cfg := testConfig(f, "openai")
	cfg.MaxTokens = 2048
	cfg.Link.LatencyBudget = config.Duration(3 * time.Second)
	g := newTestGate(t, store, cfg, nil)
	if err := g.Link().Probe(ctx); err != nil {
		t.Fatal(err)
	}
	if bps := g.Link().Stats().BitsPerSec; bps < 16_000 || bps > 64_000 {
		t.Fatalf("probe measured %d bit/s on a 32 kbit/s link", bps)
	}
	req := PlanRequest{RunID: "r", SystemPrompt: strings.Repeat("Tools: search_docs, read_file. ", 100),
		UserRequest: "Summarise the incident reports", Schema: json.RawMessage(testSchema)}
	ok, reason := g.AllowRemote(ctx, req)
	if ok || !strings.Contains(reason, "latency budget") {
		t.Fatalf("AllowRemote = %v %q; want local for the latency budget", ok, reason)
	}
	_, _, err := g.PlanRemote(ctx, req)
	if !errors.Is(err, ErrLink) {
		t.Fatalf("PlanRemote = %v; want ErrLink", err)
	}
	var n int
	_ = store.Reader().QueryRow(`SELECT (SELECT count(*) FROM budget_reservations) + (SELECT count(*) FROM egress_ledger)`).Scan(&n)
	if len(f.recorded()) != 0 || n != 0 {
		t.Errorf("sent %d requests, %d reservations+ledger rows", len(f.recorded()), n)
	}
	// The same request on a fast link goes.
	f.set(func(f *fakeRemote) { f.throttle, f.probeBody = 0, 64<<10 })
	fast := newTestGate(t, store, cfg, nil)
	for range 3 {
		fast.Link().Observe(Observation{RTT: 20 * time.Millisecond, Bytes: 10 << 20, Transfer: time.Second})
	}
	if ok, reason := fast.AllowRemote(ctx, req); !ok {
		t.Errorf("fast link refused: %s", reason)
	}
}
