package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/agentd/agentd/internal/events"
)

// wsWriteTimeout bounds one event's write: a client whose TCP window stays
// shut this long reads nothing, and is closed (coder/websocket closes the
// connection when a write's context ends, so nothing more can be sent).
const wsWriteTimeout = 10 * time.Second

// wsFinalWriteTimeout bounds the resume hint after a drop: the client has
// this long to read it before the connection is closed without it.
const wsFinalWriteTimeout = 2 * time.Second

// ResumeMessage is the last message a client dropped for being slow gets:
// reconnect with ?since=<Since> to get every event after it.
type ResumeMessage struct {
	Type   string `json:"type"` // "resume"
	Since  int64  `json:"since"`
	Reason string `json:"reason"`
}

// wsSlowClose is the close status of a client dropped for being slow. 1008
// (policy violation) is what docs/api.md promises; the reason and the
// resume message say how to continue.
const wsSlowClose = websocket.StatusPolicyViolation

// stream is GET /api/v1/events: the backlog after ?since=, then live events,
// one JSON event per text message. ?run= keeps one run's events only.
// Without since the stream starts with the next event.
func (rt *routes) stream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since := int64(-1)
	if s := q.Get("since"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			WriteError(w, http.StatusBadRequest, "bad_since", fmt.Sprintf("since is %q; use the seq of the last event received (0 for everything kept)", s))
			return
		}
		since = v
	}
	if ok, o := rt.s.originAllowed(r); !ok {
		WriteError(w, http.StatusForbidden, "bad_origin",
			fmt.Sprintf("origin %q may not open the event stream; add it to server.allowed_origins", o))
		return
	}
	var match func(events.Event) bool
	if id := q.Get("run"); id != "" {
		match = func(e events.Event) bool { return e.RunID == id }
	}
	if since < 0 {
		since = rt.d.Events.LastSeq()
	}
	backlog, sub, err := rt.d.Events.Subscribe(r.Context(), since, rt.d.WSBuffer, match)
	if err != nil {
		rt.engineError(w, r, "subscribe to events", err)
		return
	}
	defer sub.Close()
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// Checked above against the allowlist; passing the configured
		// origins on keeps the library's own check (same Host, which the
		// guard has already allowlisted) in agreement rather than off.
		OriginPatterns: append([]string{}, rt.s.cfg.AllowedOrigins...),
	})
	if err != nil {
		return // Accept has answered
	}
	defer c.CloseNow()
	if rt.d.Metrics != nil {
		rt.d.Metrics.wsClients.Inc()
		defer rt.d.Metrics.wsClients.Dec()
	}
	// The client sends nothing; reading in the background answers pings
	// and notices when it goes away. It is not given the request's context:
	// that one ends at shutdown, and the close below must say why.
	ctx := c.CloseRead(context.WithoutCancel(r.Context()))
	shutdown := r.Context().Done()
	last := since // the last event the client was sent
	write := func(b []byte, timeout time.Duration) error {
		wctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return c.Write(wctx, websocket.MessageText, b)
	}
	// dropSlow ends the stream of a client that cannot keep up: counted,
	// told where to resume (if it reads within wsFinalWriteTimeout) and
	// closed with a close frame. A client whose write already timed out
	// has had its connection closed by the library: it is only counted.
	dropSlow := func(canWrite bool) {
		if rt.d.Metrics != nil {
			rt.d.Metrics.wsDropped.Inc()
		}
		resume := "too slow; resume with since=" + strconv.FormatInt(last, 10)
		rt.s.log.Warn("event stream client too slow: dropped", "since", last, "remote", r.RemoteAddr,
			"hint_sent", canWrite)
		if !canWrite {
			return
		}
		b, _ := json.Marshal(ResumeMessage{Type: "resume", Since: last,
			Reason: "too slow: events were dropped; reconnect with since=" + strconv.FormatInt(last, 10)})
		if write(b, wsFinalWriteTimeout) == nil {
			c.Close(wsSlowClose, resume)
		}
	}
	// send writes one event; false ends the stream (a write that timed
	// out is a slow client, any other error a client that left).
	send := func(e events.Event) bool {
		b, err := rt.enc.encode(e)
		if err == nil {
			err = write(b, wsWriteTimeout)
		}
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				dropSlow(false)
			}
			return false
		}
		last = e.Seq
		return true
	}
	for _, e := range backlog {
		if !send(e) {
			return
		}
	}
	// Pings keep proxies and NAT from closing an idle stream and let TCP
	// notice a peer that vanished. They are sent only when nothing else was
	// written for a whole interval, and never wait in the event loop: a
	// client's pong that comes late (a client busy elsewhere, one that reads
	// only now and then) is not a reason to drop it. A client is dropped
	// only when it cannot take the events.
	ping := time.NewTicker(rt.d.WSPing)
	defer ping.Stop()
	wrote := false
	var pinging atomic.Bool
	for {
		select {
		case e, ok := <-sub.C:
			if !ok || isDone(sub.Done()) {
				// Dropped by the bus: skip what it still buffered, the
				// resume hint covers it.
				if errors.Is(sub.Err(), events.ErrSlow) {
					dropSlow(true)
				}
				return
			}
			if !send(e) {
				return
			}
			wrote = true
		case <-ping.C:
			if wrote {
				wrote = false
				continue
			}
			if pinging.CompareAndSwap(false, true) {
				go func() {
					defer pinging.Store(false)
					pctx, cancel := context.WithTimeout(ctx, max(rt.d.WSPing, time.Second))
					defer cancel()
					_ = c.Ping(pctx)
				}()
			}
		case <-ctx.Done():
			return // the client left
		case <-shutdown:
			c.Close(websocket.StatusGoingAway, "agentd is shutting down")
			return
		}
	}
}

// isDone reports whether ch is closed, without waiting.
func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
