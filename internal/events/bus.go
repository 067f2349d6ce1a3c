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
//
// data should be the events.Payload of typ (Emit takes the type from it);
// a Payload of another type is published as given and logged as a bug.
func (b *Bus) Publish(typ, runID string, data any) Event {
	var raw json.RawMessage
	switch d := data.(type) {
	case nil:
	case json.RawMessage:
		raw = d
	default:
		if p, ok := data.(Payload); ok && p.EventType() != typ {
			b.log.Error("event published under another type than its payload's", "type", typ,
				"payload_type", p.EventType())
		}
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
			s.endLocked(ErrSlow)
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

// Emit publishes p under its own type: the typed way to publish.
func (b *Bus) Emit(runID string, p Payload) Event {
	return b.Publish(p.EventType(), runID, p)
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
	done  chan struct{}
	bus   *Bus
	match func(Event) bool
	err   error
}

// Done is closed when the subscription ends, before the events still
// buffered in C are read: a consumer that must stop at once (a WebSocket
// client dropped as slow) selects on it.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// endLocked ends the subscription with err; the bus lock is held.
func (s *Subscription) endLocked(err error) {
	delete(s.bus.subs, s)
	s.err = err
	close(s.done)
	close(s.c)
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
		s.endLocked(nil)
	}
}

// Subscribe returns the events after since (from the ring, the events not
// yet persisted, or the store for what is older) and a subscription for
// what follows, with no gap and no duplicate between the two: the
// subscription is registered first, under the same lock that decides which
// events it will get live, and the backlog is everything before that,
// however far back since is and however many events are published while
// the store is read. buffer bounds how far the subscriber may fall behind
// before it is dropped (events published during the store read count).
// match, if not nil, filters events. since < 0 means live events only.
func (b *Bus) Subscribe(ctx context.Context, since int64, buffer int, match func(Event) bool) ([]Event, *Subscription, error) {
	if buffer < 1 {
		buffer = 1
	}
	s := &Subscription{c: make(chan Event, buffer), done: make(chan struct{}), bus: b, match: match}
	s.C = s.c
	b.mu.Lock()
	b.subs[s] = struct{}{}
	// Every event after b.seq goes to s.c. Those up to it are in the ring,
	// in pending (published, not yet persisted) or, when older than both,
	// in the store.
	var recent []Event
	if since >= 0 {
		recent = b.recentLocked(since)
	}
	upTo := b.seq // the newest event the backlog must reach
	b.mu.Unlock()

	lo := upTo + 1 // the oldest event recent holds
	if len(recent) > 0 {
		lo = recent[0].Seq
	}
	var older []Event
	if since >= 0 && since+1 < lo && b.store != nil {
		var err error
		if older, err = b.storeRange(ctx, since, lo); err != nil {
			s.Close()
			return nil, nil, err
		}
	}
	backlog := make([]Event, 0, len(older)+len(recent))
	for _, part := range [][]Event{older, recent} {
		for _, e := range part {
			if match == nil || match(e) {
				backlog = append(backlog, e)
			}
		}
	}
	return backlog, s, nil
}

// storePage is how many events one store read returns while a backlog is
// assembled.
const storePage = 4096

// storeRange reads the events after since and before lo from the store,
// in pages.
func (b *Bus) storeRange(ctx context.Context, since, lo int64) ([]Event, error) {
	var out []Event
	for after := since; after+1 < lo; {
		page, err := b.store.EventsSince(ctx, after, int(min(lo-after-1, storePage)))
		if err != nil {
			return nil, fmt.Errorf("read events since %d: %w", after, err)
		}
		for _, e := range page {
			if e.Seq >= lo {
				return out, nil
			}
			out = append(out, e)
			after = e.Seq
		}
		if len(page) == 0 {
			break // pruned by retention: nothing older is kept
		}
	}
	return out, nil
}

// recentLocked is the events after since that the ring or pending hold,
// in order. Both end at b.seq, so together they are one run of sequence
// ids with no gap.
func (b *Bus) recentLocked(since int64) []Event {
	ring := b.ringLocked()
	out := make([]Event, 0, len(ring)+len(b.pending))
	// pending is what the ring may have lost: take the older part from it.
	first := b.seq + 1
	if len(ring) > 0 {
		first = ring[0].Seq
	}
	for _, e := range b.pending {
		if e.Seq > since && e.Seq < first {
			out = append(out, e)
		}
	}
	for _, e := range ring {
		if e.Seq > since {
			out = append(out, e)
		}
	}
	return out
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

// flush writes pending events. They stay in pending until the store has
// them, so a subscriber resuming meanwhile finds every event in the ring,
// pending or the store. The write is not cut short by shutdown: an event
// published before the stop must reach the store.
func (b *Bus) flush(parent context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 5*time.Second)
	defer cancel()
	b.mu.Lock()
	batch := b.pending[:len(b.pending):len(b.pending)]
	b.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := b.store.AppendEvents(ctx, batch); err != nil {
		b.log.Error("persist events", "count", len(batch), "first_seq", batch[0].Seq, "err", err)
		return
	}
	b.mu.Lock()
	// Only Run flushes, so pending still starts with batch.
	b.pending = append([]Event(nil), b.pending[len(batch):]...)
	b.mu.Unlock()
}
