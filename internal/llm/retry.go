package llm

import (
	"context"
	"errors"
	"time"
)

// attempt sends one request to ep. delivered reports whether anything was
// already handed to the caller, which makes a retry unsafe.
type attempt func(ctx context.Context, ep *endpoint) (delivered bool, err error)

// sent is how a call went: the last endpoint tried, how many attempts were
// made, and when the last one started.
type sent struct {
	ep       *endpoint
	attempts int
	started  time.Time
}

// send runs try on a chosen endpoint until it succeeds or fails for good.
// This is agentd's one retry policy for model calls, whoever makes them
// (planner, executor, summarizer, embedder): busy and transient failures
// are retried with backoff up to ollama.max_retries; an unreachable
// endpoint, or one that lacks the model, hands over to the next endpoint
// that can serve it. Nothing above the client retries these classes again.
//
// Every attempt that fails and is followed by another is recorded on its
// own (when ident names the call), so a run shows each call the server
// received; the caller records the last attempt.
func (c *Client) send(ctx context.Context, op, model string, streaming bool, ident *Usage, try attempt) (sent, error) {
	skip := map[*endpoint]bool{}
	var last *Error
	var s sent
	retries := 0
	for {
		ep, err := c.pick(ctx, op, model, skip)
		if err != nil {
			if last != nil && len(skip) == len(c.endpoints) {
				return s, last
			}
			var e *Error
			if errors.As(err, &e) {
				e.Attempts = s.attempts
			}
			return s, err
		}
		s.attempts++
		s.ep, s.started = ep, c.now()
		actx, cancel := ctx, context.CancelFunc(func() {})
		if c.requestTimeout > 0 {
			actx, cancel = context.WithTimeout(ctx, c.requestTimeout)
		}
		ep.inFlight.Add(1)
		delivered, err := try(actx, ep)
		ep.inFlight.Add(-1)
		timedOut := actx.Err() != nil && ctx.Err() == nil
		cancel()
		if err == nil {
			c.markUp(ep)
			return s, nil
		}
		if errors.Is(err, errIncompleteStream) && ctx.Err() == nil && !timedOut && c.alive(ctx, ep) {
			err = errAbortedGeneration
		}
		f := failure{op: op, model: model, ep: ep, streaming: streaming}
		if timedOut {
			f.timeout = c.requestTimeout
		}
		e := classify(ctx, err, f)
		e.Attempts = s.attempts
		last = e

		next := false
		switch {
		case e.Class == ClassUnreachable:
			c.markDown(ep, err)
			skip[ep] = true
			next = len(skip) < len(c.endpoints)
		case e.Class == ClassModelNotFound && len(c.endpoints) > 1:
			ep.forget()
			skip[ep] = true
			next = len(skip) < len(c.endpoints)
		case e.Class.retryable() && !delivered && f.timeout == 0 && retries < c.maxRetries:
			retries++
			wait := c.backoff(retries)
			c.log.Warn("retrying model call", "op", op, "model", model, "endpoint", ep.name,
				"class", e.Class, "retry", retries, "of", c.maxRetries, "wait", wait.Round(time.Millisecond), "error", err)
			c.recordAttempt(ctx, ident, s, e)
			if serr := sleep(ctx, wait); serr != nil {
				ce := classify(ctx, serr, f)
				ce.Attempts = s.attempts
				return s, ce
			}
			continue
		}
		if next {
			c.recordAttempt(ctx, ident, s, e)
			continue
		}
		return s, e
	}
}

// recordAttempt records an attempt that failed and was followed by another.
func (c *Client) recordAttempt(ctx context.Context, ident *Usage, s sent, e *Error) {
	if ident == nil {
		return
	}
	u := *ident
	u.Attempt, u.Attempts = s.attempts, s.attempts
	u.Started, u.Wall = s.started, c.now().Sub(s.started)
	if s.ep != nil {
		u.Endpoint, u.URL = s.ep.name, s.ep.url
	}
	c.record(ctx, u, e)
}

// alive asks the endpoint whether it is still up, after a stream that ended
// without its final chunk: a server that answers ended the generation
// itself; one that does not went away.
func (c *Client) alive(ctx context.Context, ep *endpoint) bool {
	pctx, cancel := context.WithTimeout(ctx, c.probeTimeout)
	defer cancel()
	return ep.proto.alive(pctx) == nil
}
