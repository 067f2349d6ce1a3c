package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/agentd/agentd/internal/events"
)

// wsWriteTimeout bounds one message's write: a client whose TCP window stays
// shut this long is gone or too slow, and is closed.
const wsWriteTimeout = 10 * time.Second

// ResumeMessage is the last message a client dropped for being slow gets:
// reconnect with ?since=<Since> to get every event after it.
type ResumeMessage struct {
	Type   string `json:"type"` // "resume"
	Since  int64  `json:"since"`
	Reason string `json:"reason"`
}

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
	last := since
	write := func(b []byte) error {
		wctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
		defer cancel()
		return c.Write(wctx, websocket.MessageText, b)
	}
	send := func(e events.Event) error {
		b, err := rt.enc.encode(e)
		if err != nil {
			return err
		}
		return write(b)
	}
	for _, e := range backlog {
		if err := send(e); err != nil {
			return
		}
		last = e.Seq
	}
	ping := time.NewTicker(rt.d.WSPing)
	defer ping.Stop()
	for {
		select {
		case e, ok := <-sub.C:
			if !ok {
				if errors.Is(sub.Err(), events.ErrSlow) {
					if rt.d.Metrics != nil {
						rt.d.Metrics.wsDropped.Inc()
					}
					if b, err := json.Marshal(ResumeMessage{Type: "resume", Since: last,
						Reason: "too slow: events were dropped; reconnect with since=" + strconv.FormatInt(last, 10)}); err == nil {
						_ = write(b)
					}
					c.Close(websocket.StatusPolicyViolation, "too slow; resume with since="+strconv.FormatInt(last, 10))
				}
				return
			}
			if err := send(e); err != nil {
				return
			}
			last = e.Seq
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				return
			}
		case <-ctx.Done():
			return // the client left
		case <-shutdown:
			c.Close(websocket.StatusGoingAway, "agentd is shutting down")
			return
		}
	}
}
