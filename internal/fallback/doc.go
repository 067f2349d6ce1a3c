// Package fallback is agentd's optional remote planner: the providers that
// speak to remote models, the privacy gate that redacts every request before
// it leaves, the egress ledger that records every byte that does, hard caps
// by reservation, the link monitor, the deferred queue for asynchronous runs
// while offline, and fine-tuning candidates kept from remote plans.
//
// Only the planning step goes remote, and only its redacted request and tool
// schemas: tool results and attached context never leave.
//
// Wiring, for the composition root:
//
//	gate, err := fallback.NewGate(ctx, fallback.GateOptions{Config: cfg.Fallback, Store: store,
//		Publisher: fallback.PublisherFunc(func(t, run string, d any) { bus.Publish(t, run, d) }), Logger: log})
//	// run gate.Link().Run(ctx) under the errgroup (probes, if fallback.link.probe_url is set)
//	deferred, err := fallback.NewDeferred(fallback.DeferredOptions{Store: store, Link: gate.Link(),
//		Resubmit: exec.Resubmit, Expired: exec.Expire, MaxAge: cfg.Fallback.DeferredMaxAge.D()})
//	// run deferred.Run(ctx) under the errgroup
//
// The router asks gate.AllowRemote and calls gate.PlanRemote; a *CapError
// (errors.Is(err, fallback.ErrCapReached)) means: continue locally and mark
// the run degraded.
package fallback
