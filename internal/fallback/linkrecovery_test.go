package fallback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/events"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func planOnce(g *Gate, i int) error {
	_, _, err := g.PlanRemote(context.Background(), PlanRequest{RunID: fmt.Sprintf("run-%d", i), SystemPrompt: "plan",
		UserRequest: fmt.Sprint("escalation ", i), Schema: json.RawMessage(testSchema)})
	return err
}

// With passive monitoring (no probe_url): the remote goes away, three
// failed calls take the link offline, and while it is down one trial call
// is let through per backoff step (1 s, 2 s, 4 s, capped at 4 s). Once the
// remote is back, the first trial brings the link online: escalations
// resume at most retry_max after the remote's return (plus the wait for
// the next eligible request).
func TestPassiveLinkRecoversAfterBackoff(t *testing.T) {
	remote := newBillingRemote(t, nil)
	cfg := billingConfig(remote)
	cfg.Caps = config.CapsConfig{}
	cfg.Link.RetryMin = config.Duration(time.Second)
	cfg.Link.RetryMax = config.Duration(4 * time.Second)
	clock := &fakeClock{t: time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)}
	pub := &recordingPublisher{}
	link := NewLink(LinkOptions{Config: cfg.Link, Publisher: pub, Logger: discardLogger(), Now: clock.Now})
	g := openGate(t, openStore(t), cfg, pub, link)

	if err := planOnce(g, 0); err != nil {
		t.Fatal(err)
	}
	remote.stop()
	for i := range 3 {
		if err := planOnce(g, i); !IsTransient(err) {
			t.Fatalf("call %d with the remote away: %v", i, err)
		}
	}
	if st := link.Stats(); st.State != LinkOffline || !st.NextTry.Equal(clock.Now().Add(time.Second)) {
		t.Fatalf("after 3 failures: %+v", st)
	}
	sent := remote.count()
	// Down, and not yet time to try: refused without a byte sent.
	if err := planOnce(g, 10); !errors.Is(err, ErrLink) {
		t.Fatalf("offline, before the backoff: %v", err)
	}
	// Each due trial fails while the remote is away; the wait doubles, then stays at retry_max.
	for i, wantNext := range []time.Duration{2 * time.Second, 4 * time.Second, 4 * time.Second} {
		clock.Advance(link.Stats().NextTry.Sub(clock.Now()))
		if err := planOnce(g, 20+i); !IsTransient(err) {
			t.Fatalf("trial %d: %v", i, err)
		}
		if st := link.Stats(); st.State != LinkOffline || st.NextTry.Sub(clock.Now()) != wantNext || st.Retries != i+1 {
			t.Fatalf("after failed trial %d: %+v, want next try in %s", i, st, wantNext)
		}
		if err := planOnce(g, 30+i); !errors.Is(err, ErrLink) {
			t.Fatalf("right after failed trial %d: %v", i, err)
		}
	}

	remote.start()
	back := clock.Now()
	if err := planOnce(g, 40); !errors.Is(err, ErrLink) {
		t.Fatalf("remote back, backoff not passed: %v", err)
	}
	if remote.count() != sent {
		t.Fatalf("%d calls reached the remote while the link was held offline", remote.count()-sent)
	}
	clock.Advance(link.Stats().NextTry.Sub(clock.Now()))
	if err := planOnce(g, 41); err != nil {
		t.Fatalf("the trial after the remote came back: %v", err)
	}
	resumed := clock.Now().Sub(back)
	t.Logf("FIGURE link (fake clock): escalations resumed %s after the remote came back (bound: retry_max %s)", resumed, cfg.Link.RetryMax.D())
	if resumed > cfg.Link.RetryMax.D() {
		t.Errorf("resumed after %s, over retry_max", resumed)
	}
	if st := link.Stats(); st.State != LinkOnline || !st.NextTry.IsZero() || st.Retries != 0 {
		t.Errorf("after a good trial: %+v", st)
	}
	for i := range 3 {
		if err := planOnce(g, 50+i); err != nil {
			t.Fatalf("online again, call %d: %v", i, err)
		}
	}
	evs := pub.ofType("link.state")
	if len(evs) != 2 || evs[1].Data.(events.LinkStateData).To != string(LinkOnline) {
		t.Errorf("link events: %+v", evs)
	}
}

// While a trial is out, every other call is refused: an offline link lets
// one call through at a time.
func TestOfflineLinkLetsOneTrialThrough(t *testing.T) {
	remote := newBillingRemote(t, nil)
	remote.delay = 200 * time.Millisecond
	cfg := billingConfig(remote)
	cfg.Caps = config.CapsConfig{}
	cfg.MaxInFlight = 8
	cfg.Link.RetryMin = config.Duration(time.Second)
	cfg.Link.RetryMax = config.Duration(time.Second)
	clock := &fakeClock{t: time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)}
	link := NewLink(LinkOptions{Config: cfg.Link, Logger: discardLogger(), Now: clock.Now})
	g := openGate(t, openStore(t), cfg, nil, link)
	for range 3 {
		link.Observe(Observation{Failed: true})
	}
	clock.Advance(time.Second)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = planOnce(g, i) }()
	}
	wg.Wait()
	var ok, refused int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrLink):
			refused++
		default:
			t.Errorf("unexpected: %v", err)
		}
	}
	if ok != 1 || refused != 7 || remote.count() != 1 {
		t.Errorf("%d trials went, %d refused, remote saw %d; want exactly one trial", ok, refused, remote.count())
	}
	if link.State() != LinkOnline {
		t.Errorf("a good trial left the link %s", link.State())
	}
}

// With a probe_url, the probe is the trial: Run probes an offline link on
// the backoff schedule instead of every probe_interval, real calls stay
// refused, and the first good probe brings the link back.
func TestProbedLinkRecoversOnBackoffSchedule(t *testing.T) {
	remote := newBillingRemote(t, nil)
	cfg := billingConfig(remote)
	cfg.Caps = config.CapsConfig{}
	cfg.Link.ProbeURL = remote.url() + "/probe"
	cfg.Link.ProbeInterval = config.Duration(time.Hour)
	cfg.Link.RetryMin = config.Duration(time.Second)
	cfg.Link.RetryMax = config.Duration(8 * time.Second)
	clock := &fakeClock{t: time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)}
	ticks := make(chan time.Time)
	asked := make(chan time.Duration, 16)
	link := NewLink(LinkOptions{Config: cfg.Link, Logger: discardLogger(), Now: clock.Now,
		After: func(d time.Duration) <-chan time.Time { asked <- d; return ticks }})
	g := openGate(t, openStore(t), cfg, nil, link)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- link.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if d := <-asked; d != time.Hour || link.State() != LinkOnline {
		t.Fatalf("online: waits %s, state %s", d, link.State())
	}
	remote.stop()
	for range 3 { // real calls fail and take the link offline
		_ = planOnce(g, 0)
	}
	if link.State() != LinkOffline {
		t.Fatalf("state %s after 3 failed calls", link.State())
	}
	if d := <-asked; d != time.Second { // the state change woke Run: now it waits retry_min
		t.Fatalf("offline: Run waits %s, want retry_min", d)
	}
	clock.Advance(time.Second)
	ticks <- clock.Now() // the probe fails: the wait doubles
	if d := <-asked; d != 2*time.Second {
		t.Fatalf("after a failed probe Run waits %s, want 2s", d)
	}
	if err := planOnce(g, 1); !errors.Is(err, ErrLink) {
		t.Fatalf("with a probe configured, real calls wait for it: %v", err)
	}
	remote.start()
	clock.Advance(2 * time.Second)
	ticks <- clock.Now()
	if d := <-asked; d != time.Hour || link.State() != LinkOnline {
		t.Fatalf("after a good probe: waits %s, state %s", d, link.State())
	}
	if err := planOnce(g, 2); err != nil {
		t.Fatalf("after the link came back: %v", err)
	}
}

// The figure "Link", on the wall clock: seconds from the remote coming back
// to the first successful escalation, with escalations arriving every 20 ms
// and retry_min 100 ms, retry_max 800 ms, the remote returning at the worst
// moment (just after a failed try at retry_max). The bound is retry_max
// plus one call and one arrival interval.
func TestLinkRecoveryWallClock(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about two seconds")
	}
	remote := newBillingRemote(t, nil)
	cfg := billingConfig(remote)
	cfg.Caps = config.CapsConfig{}
	cfg.Link.RetryMin = config.Duration(100 * time.Millisecond)
	cfg.Link.RetryMax = config.Duration(800 * time.Millisecond)
	link := NewLink(LinkOptions{Config: cfg.Link, Logger: discardLogger()})
	g := openGate(t, openStore(t), cfg, nil, link)
	remote.stop()
	down := time.Now()
	for i := 0; time.Since(down) < 1500*time.Millisecond; i++ { // long enough for the backoff to reach retry_max
		_ = planOnce(g, i)
		time.Sleep(20 * time.Millisecond)
	}
	if link.State() != LinkOffline {
		t.Fatalf("link %s with the remote away", link.State())
	}
	// The worst moment for the remote to return: just after a failed try,
	// with the backoff at retry_max.
	retries := link.Stats().Retries
	for i := 0; link.Stats().Retries == retries; i++ {
		_ = planOnce(g, 500+i)
		time.Sleep(5 * time.Millisecond)
	}
	remote.start()
	back := time.Now()
	for i := 0; ; i++ {
		if err := planOnce(g, 1000+i); err == nil {
			break
		}
		if time.Since(back) > 10*time.Second {
			t.Fatalf("no escalation succeeded 10 s after the remote came back; link %+v", link.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resumed := time.Since(back)
	bound := cfg.Link.RetryMax.D() + 500*time.Millisecond
	t.Logf("FIGURE link (wall clock): first successful escalation %.3f s after the remote came back (worst case: it returned just after a failed try; retry_min 100ms, retry_max 800ms; bound %.1f s)",
		resumed.Seconds(), bound.Seconds())
	if resumed > bound {
		t.Errorf("resumed after %s, bound %s", resumed, bound)
	}
}

// Without a probe, Run wakes Changed's waiters (the deferred queue) when an
// offline link's trial falls due, so that someone makes the call that can
// bring the link back; MayTry says so.
func TestPassiveRunWakesWaitersWhenTrialIsDue(t *testing.T) {
	cfg := testLinkConfig()
	cfg.RetryMin = config.Duration(time.Second)
	cfg.RetryMax = config.Duration(time.Minute)
	clock := &fakeClock{t: time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)}
	ticks := make(chan time.Time)
	asked := make(chan time.Duration, 16)
	l := NewLink(LinkOptions{Config: cfg, Logger: discardLogger(), Now: clock.Now,
		After: func(d time.Duration) <-chan time.Time { asked <- d; return ticks }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()

	for range 3 {
		l.Observe(Observation{Failed: true})
	}
	if l.MayTry() {
		t.Fatal("MayTry before the backoff")
	}
	if d := <-asked; d != time.Second {
		t.Fatalf("Run waits %s for the first trial, want retry_min", d)
	}
	ch := l.Changed()
	clock.Advance(time.Second)
	ticks <- clock.Now()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("waiters not woken when the trial fell due")
	}
	if !l.MayTry() || l.State() != LinkOffline {
		t.Fatalf("MayTry %v, state %s", l.MayTry(), l.State())
	}
	ok, trial, _ := l.Admit(100)
	if !ok || !trial || l.MayTry() {
		t.Fatalf("Admit = %v %v; MayTry while the trial is out = %v", ok, trial, l.MayTry())
	}
	l.Observe(Observation{Failed: true}) // the trial failed: next in 2 s
	if d := <-asked; d != 2*time.Second {
		t.Fatalf("after a failed trial Run waits %s, want 2s", d)
	}
	ok, trial, _ = l.Admit(100)
	if ok || trial {
		t.Fatal("a second trial before the backoff")
	}
	clock.Advance(2 * time.Second)
	ticks <- clock.Now()
	if _, trial, _ = l.Admit(100); !trial {
		t.Fatal("no trial when due")
	}
	l.Observe(Observation{RTT: 10 * time.Millisecond})
	if l.State() != LinkOnline || !l.MayTry() {
		t.Fatalf("a good trial left the link %s", l.State())
	}
}
