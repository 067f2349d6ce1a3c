package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Store persists events; the SQLite store implements it.
type Store interface {
	AppendEvents(ctx context.Context, evs []Event) error
	EventsSince(ctx context.Context, after int64, limit int) ([]Event, error)
	LastEventSeq(ctx context.Context) (int64, error)
}

// ErrSlow is why a subscription ends when its client cannot keep up: the bus
// never waits for a subscriber.
var ErrSlow = errors.New("subscriber too slow: events dropped; resume with since=<last seq received>")

// Bus assigns sequence ids, keeps the latest events in a ring, fans them out
// and persists them in batches.
type Bus struct {
	store Store
	log   *slog.Logger
	Now   func() time.Time

	mu      sync.Mutex
	seq     int64
	ring    []Event
	next    int // ring write position
	full    bool
	subs    map[*Subscription]struct{}
	pending []Event
	wake    chan struct{}
}

// New returns a bus with a ring of the given size. Call Init before Publish
// so sequence ids continue from the store.
func New(store Store, ringSize int, log *slog.Logger) *Bus {
	if ringSize < 16 {
		ringSize = 16
	}
	return &Bus{
		store: store, log: log.With("component", "events"), Now: time.Now,
		ring: make([]Event, ringSize), subs: map[*Subscription]struct{}{},
		wake: make(chan struct{}, 1),
	}
}

// Init continues the sequence from what the store holds.
func (b *Bus) Init(ctx context.Context) error {
	if b.store == nil {
		return nil
	}
	last, err := b.store.LastEventSeq(ctx)
	if err != nil {
		return fmt.Errorf("read last event sequence: %w", err)
	}
	b.mu.Lock()
	b.seq = last
	b.mu.Unlock()
	return nil
}

// Publish records an event and hands it to every subscriber without waiting.
// data is marshalled to JSON; a value that cannot be is logged and replaced
// by an error object, because an event must never be lost for its payload.
func (b *Bus) Publish(typ, runID string, data any) Event {
	var raw json.RawMessage
	switch d := data.(type) {
	case nil:
	case json.RawMessage:
		raw = d
	default:
		var err error
		if raw, err = json.Marshal(d); err != nil {
			b.log.Error("event payload not JSON", "type", typ, "err", err)
			raw, _ = json.Marshal(map[string]string{"error": err.Error()})
		}
	}
	b.mu.Lock()
	b.seq++
	ev := Event{Seq: b.seq, Time: b.Now().UTC(), Type: typ, RunID: runID, Data: raw}
	b.ring[b.next] = ev
	b.next = (b.next + 1) % len(b.ring)
	if b.next == 0 {
		b.full = true
	}
	for s := range b.subs {
		if s.match != nil && !s.match(ev) {
			continue
		}
		select {
		case s.c <- ev:
		default:
			s.err = ErrSlow
			close(s.c)
			delete(b.subs, s)
		}
	}
	if b.store != nil {
		b.pending = append(b.pending, ev)
	}
	b.mu.Unlock()
	if b.store != nil {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	return ev
}

// LastSeq is the newest sequence id.
func (b *Bus) LastSeq() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seq
}

// Subscription delivers live events on C. C is closed when the subscription
// ends; Err then says why (nil after Close).
type Subscription struct {
	c     chan Event
	C     <-chan Event
	bus   *Bus
	match func(Event) bool
	err   error
}

// Err is why the subscription ended, once C is closed.
func (s *Subscription) Err() error {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	return s.err
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	if _, ok := s.bus.subs[s]; ok {
		delete(s.bus.subs, s)
		close(s.c)
	}
}

// Subscribe returns the events after since (from the ring, or the store when
// since is older than the ring holds) and a subscription for what follows,
// with no gap and no duplicate between the two. buffer bounds how far the
// subscriber may fall behind before it is dropped. match, if not nil,
// filters events.
func (b *Bus) Subscribe(ctx context.Context, since int64, buffer int, match func(Event) bool) ([]Event, *Subscription, error) {
	if buffer < 1 {
		buffer = 1
	}
	var older []Event
	b.mu.Lock()
	oldest := b.oldestLocked()
	b.mu.Unlock()
	if b.store != nil && since >= 0 && oldest > 0 && since+1 < oldest {
		var err error
		older, err = b.store.EventsSince(ctx, since, int(oldest-since-1))
		if err != nil {
			return nil, nil, fmt.Errorf("read events since %d: %w", since, err)
		}
	} else if b.store != nil && since >= 0 && oldest == 0 && since < b.LastSeq() {
		// Nothing in the ring yet (fresh start): all history is in the store.
		var err error
		older, err = b.store.EventsSince(ctx, since, 10000)
		if err != nil {
			return nil, nil, fmt.Errorf("read events since %d: %w", since, err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	backlog := make([]Event, 0, len(older))
	last := since
	for _, e := range older {
		if match == nil || match(e) {
			backlog = append(backlog, e)
		}
		last = e.Seq
	}
	for _, e := range b.ringLocked() {
		if e.Seq > last && (match == nil || match(e)) {
			backlog = append(backlog, e)
		}
	}
	s := &Subscription{c: make(chan Event, buffer), bus: b, match: match}
	s.C = s.c
	b.subs[s] = struct{}{}
	return backlog, s, nil
}

func (b *Bus) oldestLocked() int64 {
	if b.full {
		return b.ring[b.next].Seq
	}
	if b.next == 0 {
		return 0
	}
	return b.ring[0].Seq
}

func (b *Bus) ringLocked() []Event {
	if !b.full {
		return append([]Event(nil), b.ring[:b.next]...)
	}
	out := make([]Event, 0, len(b.ring))
	out = append(out, b.ring[b.next:]...)
	return append(out, b.ring[:b.next]...)
}

// Run persists published events in batches until ctx ends, then flushes what
// is left.
func (b *Bus) Run(ctx context.Context) error {
	if b.store == nil {
		<-ctx.Done()
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			b.flush(ctx)
			return nil
		case <-b.wake:
			b.flush(ctx)
		}
	}
}

// flush writes pending events. The write is not cut short by shutdown: an
// event published before the stop must reach the store.
func (b *Bus) flush(parent context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 5*time.Second)
	defer cancel()
	b.mu.Lock()
	batch := b.pending
	b.pending = nil
	b.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := b.store.AppendEvents(ctx, batch); err != nil {
		b.log.Error("persist events", "count", len(batch), "first_seq", batch[0].Seq, "err", err)
		b.mu.Lock()
		b.pending = append(batch, b.pending...)
		b.mu.Unlock()
	}
}
