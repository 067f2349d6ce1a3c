package fallback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/events"
)

// LinkState is what agentd believes of its uplink.
type LinkState string

// Link states.
const (
	LinkOnline      LinkState = "online"
	LinkConstrained LinkState = "constrained"
	LinkOffline     LinkState = "offline"
)

// Observation is one measurement of the link, from a real call or a probe.
type Observation struct {
	// Failed means the remote could not be reached (a network error; an
	// HTTP error status is a working link).
	Failed bool
	// RTT is one round trip (a TCP connect, a probe's time to first byte);
	// zero when unknown.
	RTT time.Duration
	// Bytes moved in Transfer: the part of a call that is transfer, not the
	// remote thinking. Samples too small to time are ignored.
	Bytes    int64
	Transfer time.Duration
}

// Samples smaller than this say more about timer resolution than about the
// link.
const (
	minSampleBytes    = 2 << 10
	minSampleTransfer = 5 * time.Millisecond
)

// LinkOptions builds a Link.
type LinkOptions struct {
	Config    config.LinkConfig
	Client    *http.Client // for the probe; nil uses one with a 30 s timeout
	Publisher Publisher
	Logger    *slog.Logger
	Now       func() time.Time
	// After schedules probes; tests replace it. Nil uses time.After.
	After func(time.Duration) <-chan time.Time
	// OnlineAfter is how many consecutive successes bring an offline link
	// back (default 2).
	OnlineAfter int
	// Alpha weighs a new sample in the moving averages (default 0.3).
	Alpha float64
	// Backoff is the wait before the n-th try (n from 0) of an offline
	// link; nil doubles from link.retry_min up to link.retry_max.
	Backoff func(n int) time.Duration
}

// Link watches the uplink: round trip and throughput from real transfers
// and an optional probe, smoothed by EWMA, with hysteresis between states.
type Link struct {
	cfg         config.LinkConfig
	client      *http.Client
	pub         Publisher
	log         *slog.Logger
	now         func() time.Time
	after       func(time.Duration) <-chan time.Time
	onlineAfter int
	alpha       float64
	backoff     func(n int) time.Duration

	mu       sync.Mutex
	state    LinkState
	rtt      time.Duration
	bps      float64 // bytes per second; 0 = not measured
	fails    int
	oks      int
	samples  int
	changed  chan struct{}
	lastSeen time.Time
	// While offline, the link is tried again like a circuit breaker's
	// half-open state: at nextTry one trial (the probe when probe_url is
	// set, else one real call) is let through; its success brings the link
	// back at once, its failure doubles the wait.
	retries     int
	nextTry     time.Time
	trialOut    bool
	rescheduled chan struct{} // wakes runPassive; buffered 1
}

// NewLink builds a Link that starts online: a site learns it is offline from
// the first failures, not by assumption.
func NewLink(o LinkOptions) *Link {
	l := &Link{cfg: o.Config, client: o.Client, pub: o.Publisher, log: o.Logger, now: o.Now, after: o.After,
		onlineAfter: o.OnlineAfter, alpha: o.Alpha, backoff: o.Backoff, state: LinkOnline, changed: make(chan struct{}),
		rescheduled: make(chan struct{}, 1)}
	if l.client == nil {
		l.client = &http.Client{Timeout: 30 * time.Second}
	}
	if l.pub == nil {
		l.pub = nopPublisher{}
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	l.log = l.log.With("component", "fallback.link")
	if l.now == nil {
		l.now = time.Now
	}
	if l.after == nil {
		l.after = time.After
	}
	if l.onlineAfter <= 0 {
		l.onlineAfter = 2
	}
	if l.alpha <= 0 || l.alpha > 1 {
		l.alpha = 0.3
	}
	if l.cfg.OfflineAfter <= 0 {
		l.cfg.OfflineAfter = 3
	}
	if l.backoff == nil {
		lo, hi := l.cfg.RetryMin.D(), l.cfg.RetryMax.D()
		if lo <= 0 {
			lo = 15 * time.Second
		}
		if hi < lo {
			hi = max(lo, 5*time.Minute)
		}
		l.backoff = func(n int) time.Duration {
			d := lo
			for range n {
				if d >= hi/2 {
					return hi
				}
				d *= 2
			}
			return min(d, hi)
		}
	}
	return l
}

// Observe folds one measurement into the estimates and the state.
func (l *Link) Observe(o Observation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	from := l.state
	trial := l.trialOut
	if o.Failed {
		l.fails++
		l.oks = 0
		switch {
		case from == LinkOffline && trial:
			// The half-open trial failed: wait longer before the next.
			l.trialOut = false
			l.retries++
			l.nextTry = l.now().Add(l.backoff(l.retries))
			l.rescheduleLocked()
		case from != LinkOffline && l.fails >= l.cfg.OfflineAfter:
			l.state = LinkOffline
			l.retries, l.trialOut = 0, false
			l.nextTry = l.now().Add(l.backoff(0))
		}
		l.transitionLocked(from)
		return
	}
	l.fails = 0
	l.oks++
	l.lastSeen = l.now()
	if trial {
		l.trialOut = false
		l.oks = max(l.oks, l.onlineAfter) // the trial's success is proof enough
	}
	if o.RTT > 0 {
		if l.rtt == 0 {
			l.rtt = o.RTT
		} else {
			l.rtt = time.Duration(l.alpha*float64(o.RTT) + (1-l.alpha)*float64(l.rtt))
		}
	}
	if o.Bytes >= minSampleBytes && o.Transfer >= minSampleTransfer {
		bps := float64(o.Bytes) / o.Transfer.Seconds()
		if l.bps == 0 {
			l.bps = bps
		} else {
			l.bps = l.alpha*bps + (1-l.alpha)*l.bps
		}
		l.samples++
	}
	switch {
	case l.state == LinkOffline && l.oks < l.onlineAfter:
		// Stay offline until the link has proven itself more than once.
	case l.bps > 0 && l.cfg.ConstrainedBelowBps > 0:
		bits := l.bps * 8
		limit := float64(l.cfg.ConstrainedBelowBps)
		if bits < limit || (l.state == LinkConstrained && bits < limit*1.25) {
			l.state = LinkConstrained
		} else {
			l.state = LinkOnline
		}
	default:
		l.state = LinkOnline
	}
	if l.state != LinkOffline {
		l.retries, l.nextTry = 0, time.Time{}
	}
	l.transitionLocked(from)
}

func (l *Link) transitionLocked(from LinkState) {
	if l.state == from {
		return
	}
	close(l.changed)
	l.changed = make(chan struct{})
	l.log.Info("link state changed", "from", from, "to", l.state, "rtt", l.rtt, "bits_per_sec", int64(l.bps*8))
	emit(l.pub, "", events.LinkStateData{From: string(from), To: string(l.state), State: string(l.state),
		RTTMS: float64(l.rtt.Milliseconds()), BitsPerSec: int64(l.bps * 8), ThroughputBPS: l.bps})
}

// State is the current state.
func (l *Link) State() LinkState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// Changed returns a channel closed at the next state change.
func (l *Link) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// LinkStats is a snapshot for the dashboard and the router's reasons.
type LinkStats struct {
	State               LinkState     `json:"state"`
	RTT                 time.Duration `json:"rtt"`
	BitsPerSec          int64         `json:"bits_per_sec"`
	ConsecutiveFailures int           `json:"consecutive_failures"`
	ThroughputSamples   int           `json:"throughput_samples"`
	LastSeen            time.Time     `json:"last_seen"`
	// While offline: when the link is next tried, and how many tries
	// have failed since it went offline.
	NextTry time.Time `json:"next_try,omitzero"`
	Retries int       `json:"retries,omitempty"`
}

// Stats returns the current estimates.
func (l *Link) Stats() LinkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LinkStats{State: l.state, RTT: l.rtt, BitsPerSec: int64(l.bps * 8), ConsecutiveFailures: l.fails,
		ThroughputSamples: l.samples, LastSeen: l.lastSeen, NextTry: l.nextTry, Retries: l.retries}
}

// EstimateTransfer is how long moving these bytes should take: a round trip
// to connect, one for the exchange, and the bytes at the measured rate.
// Without a throughput measurement it is the round trips alone.
func (l *Link) EstimateTransfer(bytesOut, bytesInExpected int64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.estimateLocked(bytesOut + bytesInExpected)
}

func (l *Link) estimateLocked(bytes int64) time.Duration {
	d := 2 * l.rtt
	if l.bps > 0 {
		d += time.Duration(float64(bytes) / l.bps * float64(time.Second))
	}
	return d
}

// Allow reports whether a call moving bytes may be made now: the link must
// not be offline and the estimated transfer must fit the latency budget.
// The reason explains either answer.
func (l *Link) Allow(bytes int64) (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.allowLocked(bytes)
}

// Admit is Allow for a call about to be made. While the link is offline
// and no probe_url is set, it lets one call through as the half-open trial
// once the backoff has passed; trial is then true, and the caller must end
// it with Observe (a real outcome) or Abandon (the call was not made, or
// says nothing about the link).
func (l *Link) Admit(bytes int64) (ok, trial bool, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ok, reason = l.allowLocked(bytes)
	if ok && l.state == LinkOffline {
		l.trialOut, trial = true, true
	}
	return ok, trial, reason
}

// Abandon ends a trial call that was admitted but not made, or whose
// outcome says nothing about the link; the next eligible call may try.
func (l *Link) Abandon() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.trialOut = false
	l.rescheduleLocked()
}

// trialDueLocked reports whether an offline link may be tried now by a
// real call: no probe does it, the backoff has passed, no trial is out.
func (l *Link) trialDueLocked() bool {
	return l.cfg.ProbeURL == "" && !l.trialOut && !l.now().Before(l.nextTry)
}

func (l *Link) allowLocked(bytes int64) (bool, string) {
	if l.state == LinkOffline {
		if l.trialDueLocked() {
			return true, fmt.Sprintf("link offline (%d consecutive failures): one trial call after %d failed tries", l.fails, l.retries)
		}
		how := "a trial call"
		if l.cfg.ProbeURL != "" {
			how = "a probe"
		}
		if l.trialOut {
			return false, fmt.Sprintf("link offline (%d consecutive failures): a trial call is in flight", l.fails)
		}
		return false, fmt.Sprintf("link offline (%d consecutive failures): %s tries it again at %s", l.fails, how,
			l.nextTry.UTC().Format(time.RFC3339))
	}
	est := l.estimateLocked(bytes)
	if l.bps == 0 {
		return true, fmt.Sprintf("link %s, no throughput measured yet", l.state)
	}
	budget := l.cfg.LatencyBudget.D()
	if budget > 0 && est > budget {
		return false, fmt.Sprintf("estimated transfer %s for %d bytes at %d bit/s exceeds the latency budget %s",
			est.Round(time.Millisecond), bytes, int64(l.bps*8), budget)
	}
	return true, fmt.Sprintf("link %s, estimated transfer %s within %s", l.state, est.Round(time.Millisecond), budget)
}

func (l *Link) runPassive(ctx context.Context) error {
	notified := false // waiters were told this trial is due; wait for it to be taken
	for {
		l.mu.Lock()
		changed := l.changed
		var due <-chan time.Time
		if l.state == LinkOffline && !l.trialOut && !notified {
			due = l.after(max(l.nextTry.Sub(l.now()), 0))
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			notified = false
		case <-l.rescheduled:
			notified = false
		case <-due:
			l.mu.Lock()
			if l.state == LinkOffline && l.trialDueLocked() {
				// No state change, but a call may now try the link.
				close(l.changed)
				l.changed = make(chan struct{})
				notified = true
			}
			l.mu.Unlock()
		}
	}
}

// rescheduleLocked tells runPassive that the next try moved or a trial
// was given back.
func (l *Link) rescheduleLocked() {
	select {
	case l.rescheduled <- struct{}{}:
	default:
	}
}

// Probe measures the link once with a GET of probe_url.
func (l *Link) Probe(ctx context.Context) error {
	if l.cfg.ProbeURL == "" {
		return errors.New("no fallback.link.probe_url configured")
	}
	var firstByte time.Time
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { firstByte = l.now() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, l.cfg.ProbeURL, nil)
	if err != nil {
		return fmt.Errorf("link probe %s: %w", l.cfg.ProbeURL, err)
	}
	failed := func(err error) error {
		if ctx.Err() == nil { // a canceled probe says nothing about the link
			l.Observe(Observation{Failed: true})
		}
		return fmt.Errorf("link probe %s: %w", l.cfg.ProbeURL, err)
	}
	start := l.now()
	resp, err := l.client.Do(req)
	if err != nil {
		return failed(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	end := l.now()
	if err != nil {
		return failed(err)
	}
	o := Observation{Bytes: n, Transfer: end.Sub(start)}
	if !firstByte.IsZero() {
		o.RTT = firstByte.Sub(start)
		o.Transfer = end.Sub(firstByte)
	}
	l.Observe(o)
	return nil
}

// MayTry reports whether a remote call may be tried now as far as
// reachability goes: the link is not offline, or it is and its half-open
// trial (one real call, without a probe_url) is due. Waiters such as the
// deferred queue ask this, woken by Changed, rather than State, so that
// someone makes the trial call that can bring a passive link back.
func (l *Link) MayTry() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state != LinkOffline || l.trialDueLocked()
}

// Run probes every probe_interval until ctx ends. Without a probe_url,
// passive measurements from real calls are all there is, and Run only
// wakes Changed's waiters when an offline link's trial falls due.
func (l *Link) Run(ctx context.Context) error {
	if l.cfg.ProbeURL == "" {
		return l.runPassive(ctx)
	}
	interval := l.cfg.ProbeInterval.D()
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	probe := true
	for {
		if probe {
			l.mu.Lock()
			l.trialOut = l.state == LinkOffline // an offline link's probe is its half-open trial
			l.mu.Unlock()
			if err := l.Probe(ctx); err != nil && ctx.Err() == nil {
				l.log.Debug("link probe failed", "err", err)
			}
			l.mu.Lock()
			if l.trialOut { // the probe observed nothing (canceled, or a bad probe_url): count it as a failed try
				l.trialOut = false
				l.retries++
				l.nextTry = l.now().Add(l.backoff(l.retries))
			}
			l.mu.Unlock()
		}
		// Online, probe every interval; offline, at the backoff's next try.
		// A state change in between (real calls took the link down or
		// brought it back) recomputes the wait.
		l.mu.Lock()
		wait, changed := interval, l.changed
		if l.state == LinkOffline {
			wait = max(l.nextTry.Sub(l.now()), 0)
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-l.after(wait):
			probe = true
		case <-changed:
			probe = false
		}
	}
}
