package llm

import (
	"context"
	"errors"
	"time"
)

// attempt sends one request to ep. delivered reports whether anything was
// already handed to the caller, which makes a retry unsafe.
type attempt func(ctx context.Context, ep *endpoint) (delivered bool, err error)

// send runs try on a chosen endpoint until it succeeds or fails for good:
// busy and transient failures are retried with backoff up to maxRetries;
// an unreachable endpoint, or one that lacks the model, hands over to the
// next endpoint that can serve it. It returns the last endpoint tried and
// the number of attempts.
func (c *Client) send(ctx context.Context, op, model string, streaming bool, try attempt) (*endpoint, int, error) {
	skip := map[*endpoint]bool{}
	var last *Error
	attempts, retries := 0, 0
	for {
		ep, err := c.pick(ctx, op, model, skip)
		if err != nil {
			if last != nil && len(skip) == len(c.endpoints) {
				return nil, attempts, last
			}
			var e *Error
			if errors.As(err, &e) {
				e.Attempts = attempts
			}
			return nil, attempts, err
		}
		attempts++
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
			return ep, attempts, nil
		}
		f := failure{op: op, model: model, ep: ep, streaming: streaming}
		if timedOut {
			f.timeout = c.requestTimeout
		}
		e := classify(ctx, err, f)
		e.Attempts = attempts
		last = e

		switch {
		case e.Class == ClassUnreachable:
			c.markDown(ep, err)
			skip[ep] = true
			if len(skip) < len(c.endpoints) {
				continue
			}
		case e.Class == ClassModelNotFound && len(c.endpoints) > 1:
			ep.forget()
			skip[ep] = true
			if len(skip) < len(c.endpoints) {
				continue
			}
		case e.Class.retryable() && !delivered && f.timeout == 0 && retries < c.maxRetries:
			retries++
			wait := c.backoff(retries)
			c.log.Warn("retrying model call", "op", op, "model", model, "endpoint", ep.name,
				"class", e.Class, "retry", retries, "of", c.maxRetries, "wait", wait.Round(time.Millisecond), "error", err)
			if serr := sleep(ctx, wait); serr != nil {
				ce := classify(ctx, serr, f)
				ce.Attempts = attempts
				return ep, attempts, ce
			}
			continue
		}
		return ep, attempts, e
	}
}
