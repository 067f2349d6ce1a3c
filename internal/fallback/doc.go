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
//		Publisher: bus, Logger: log})
//	// run gate.Link().Run(ctx) under the errgroup (probes, if fallback.link.probe_url is set)
//	deferred, err := fallback.NewDeferred(fallback.DeferredOptions{Store: store, Link: gate.Link(),
//		Resubmit: exec.Resubmit, Expired: exec.Expire, MaxAge: cfg.Fallback.DeferredMaxAge.D()})
//	// run deferred.Run(ctx) under the errgroup
//
// The planning service asks gate.Check (nil, or the typed refusal
// PlanRemote would return) and calls gate.PlanRemote; for a refusal at
// either point, fallback.Degrades(err) says whether the run continues
// locally marked degraded (a cap, or a provider suspended for billing past
// its reservation). A suspended provider is re-enabled by a person with
// gate.EnableProvider (API, CLI, dashboard). Waiters for the link (the
// deferred queue) ask gate.Link().MayTry, woken by Changed.
package fallback
