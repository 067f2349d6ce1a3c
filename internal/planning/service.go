package planning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/fallback"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/plancache"
)

// Service is the executor's Planner: the router picks template, local or
// remote; the local planner and the remote gate make the plan; a failed
// local plan escalates to the remote when the egress policy, budget and
// link allow, and a refused remote call falls back to local, marking the
// run degraded. Every remote question goes through Policy.Decide first.
type Service struct {
	cfg       *config.Config
	policy    Policy
	router    *Router
	templates *localplanner.Templates
	local     *localplanner.Planner
	catalog   localplanner.Catalog
	gate      *fallback.Gate // nil when fallback is disabled
	cache     *plancache.Cache
	log       *slog.Logger
	// onDraft, when set, watches the plan as it streams (the daemon's
	// prefetcher of tool steps).
	onDraft func(runID string) func(soFar string)
	// refused holds, by run id, why the router could not have the remote
	// planner it wanted (a refusal), for Plan to act on: an async run
	// waits when the reason will pass, and a run refused for a cap is
	// degraded, as one refused at the reservation is.
	refused sync.Map
}

// refusal is why the gate refused the router's remote choice.
type refusal struct {
	reason   string
	passing  bool // the link or a budget window: it will pass by itself
	degraded bool // a cap: the run is marked degraded
}

var _ exec.Planner = (*Service)(nil)

// Options are what New needs beside the config.
type Options struct {
	Templates *localplanner.Templates
	Local     *localplanner.Planner
	Catalog   localplanner.Catalog
	Gate      *fallback.Gate // nil: remote fallback disabled
	// Cache is the plan cache (nil: off); it is consulted before the
	// router.
	Cache *plancache.Cache
	// History tells the router how often similar requests failed locally.
	History History
	Log     *slog.Logger
	OnDraft func(runID string) func(soFar string)
}

// New returns the planning service for cfg.
func New(cfg *config.Config, o Options) *Service {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, policy: PolicyFrom(cfg), templates: o.Templates, local: o.Local,
		catalog: o.Catalog, gate: o.Gate, cache: o.Cache, log: log.With("component", "planning"), onDraft: o.OnDraft}
	// The router asks the remote question through the service, so the
	// egress policy is consulted there too.
	s.router = NewRouter(cfg.Planner, o.Catalog, o.Templates, o.History, routerGate{s}, log)
	return s
}

// routerGate is the router's view of the remote planner: the egress policy
// for a routing decision, then budget and link (the fallback gate).
type routerGate struct{ s *Service }

func (r routerGate) AllowRemote(ctx context.Context, req localplanner.Request) (bool, string) {
	// The router has already kept sensitive workflows and workflows with
	// planner = "local" away from here; the policy is asked all the same.
	e := r.s.policy.Decide(Ask{Purpose: PurposeRoute, RequestPlanner: req.Planner, RequestSensitive: req.Sensitive})
	if !e.Allowed {
		return false, strings.Join(e.Reasons, "; ")
	}
	if r.s.gate == nil {
		return false, "remote fallback is not configured"
	}
	preq := fallback.PlanRequest{RunID: req.RunID, Purpose: "plan", UserRequest: req.Text, Sensitive: req.Sensitive}
	ok, why := r.s.gate.AllowRemote(ctx, preq)
	if !ok {
		r.s.refused.Store(req.RunID, r.s.refusalOf(ctx, preq))
	}
	return ok, why
}

// refusalOf asks the gate once why the remote planner is refused now: a
// reason that will pass by itself (the link is down or too slow, a day or
// month budget window is spent; a run's own cap will not pass), and
// whether the refusal degrades the run (a cap, a suspended provider).
func (s *Service) refusalOf(ctx context.Context, req fallback.PlanRequest) refusal {
	if s.gate == nil {
		return refusal{}
	}
	err := s.gate.Check(ctx, req)
	ref := refusal{degraded: fallback.Degrades(err)}
	var le *fallback.LinkError
	var ce *fallback.CapError
	switch {
	case errors.As(err, &le):
		ref.reason, ref.passing = le.Error(), true
	case errors.As(err, &ce) && ce.Cap != "run_usd":
		ref.reason, ref.passing = ce.Error(), true
	}
	return ref
}

func fromLocal(res *localplanner.Result, source, route string, reasons []string) exec.PlanResult {
	return exec.PlanResult{Plan: res.Plan, Source: source, Route: route, Reasons: reasons,
		Attempts: res.Attempts, Errors: res.Errors}
}

func (s *Service) Plan(ctx context.Context, req exec.PlanRequest) (exec.PlanResult, error) {
	lreq := localplanner.Request{Text: req.Request, RunID: req.RunID, Planner: req.Planner, Sensitive: req.Sensitive, Params: req.Params}
	if req.Workflow != "" && s.templates != nil {
		wf, ok := s.workflow(req.Workflow)
		sensitive := req.Sensitive || (ok && wf.Sensitive)
		if ok && wf.Mode == exec.ModeScratchpad {
			return exec.PlanResult{Mode: exec.ModeScratchpad, Route: string(RouteScratchpad), Sensitive: sensitive,
				Reasons: []string{"workflow " + wf.Name + " runs in scratchpad mode"}}, nil
		}
		res, err := s.templates.Plan(ctx, lreq, req.Workflow)
		if err == nil {
			out := fromLocal(res, "template", string(RouteTemplate), []string{"workflow " + req.Workflow + " requested"})
			out.Sensitive = sensitive
			return out, nil
		}
		return exec.PlanResult{Sensitive: sensitive}, fmt.Errorf("workflow %s: %w", req.Workflow, err)
	}
	var cacheReasons []string
	if res, ok, why := s.fromCache(ctx, req); ok {
		return res, nil
	} else if why != "" {
		cacheReasons = []string{why}
	}
	d, err := s.router.Route(ctx, lreq)
	if err != nil {
		return exec.PlanResult{Sensitive: d.Sensitive}, fmt.Errorf("route: %w", err)
	}
	d.Reasons = append(cacheReasons, d.Reasons...)
	// A matched workflow's flags are the run's from here on: a sensitive
	// workflow makes the run sensitive, on every path below.
	wf := s.workflowFor(d.Workflow)
	req.Sensitive = req.Sensitive || d.Sensitive
	lreq.Sensitive = req.Sensitive
	reasons := append(d.Reasons, "fingerprint "+d.Fingerprint)
	result := func(r exec.PlanResult) exec.PlanResult {
		r.Sensitive = req.Sensitive
		r.Workflow = d.Workflow
		return r
	}
	degraded := false
	if v, ok := s.refused.LoadAndDelete(req.RunID); ok {
		ref := v.(refusal)
		if ref.passing && req.Async && d.Route != RouteTemplate {
			// The router wanted the remote planner and cannot have it
			// for now; the requester can wait.
			return result(exec.PlanResult{Route: "deferred", Reasons: append(reasons, "async run waits for the remote planner: "+ref.reason)}),
				&exec.DeferError{Reason: ref.reason}
		}
		// Refused for a cap at routing is degraded, as at reservation.
		degraded = ref.degraded
	}
	switch d.Route {
	case RouteScratchpad:
		return result(exec.PlanResult{Mode: exec.ModeScratchpad, Route: string(d.Route), Reasons: reasons}), nil
	case RouteTemplate:
		res, err := s.templates.Plan(ctx, lreq, d.Workflow)
		if err == nil {
			return result(fromLocal(res, "template", string(d.Route), reasons)), nil
		}
		reasons = append(reasons, fmt.Sprintf("template %s could not be used (%v): planning with the %s planner", d.Workflow, err, d.Planner))
	}
	var localErrs []string
	if d.Planner == RouteRemote {
		// The router asked the policy already (RemoteGate); ask again at
		// the call, so no path reaches the remote planner without it.
		e := s.policy.Decide(Ask{Purpose: PurposeRoute, RequestPlanner: req.Planner, RequestSensitive: req.Sensitive, Workflow: wf})
		var p *plan.Plan
		var usage fallback.PlanUsage
		err := errors.New(strings.Join(e.Reasons, "; "))
		if e.Allowed {
			p, usage, err = s.remotePlan(ctx, req.RunID, req.Request, req.Sensitive, "plan", nil)
		}
		if err == nil {
			return result(exec.PlanResult{Plan: p, Source: "remote", Route: "remote", Reasons: reasons, Model: usage.Model,
				Attempts: 1, CostUSD: usage.CostUSD}), nil
		}
		degraded = degraded || fallback.Degrades(err)
		reasons = append(reasons, fmt.Sprintf("remote planner not used (%v): planning locally", err))
	}
	if s.onDraft != nil {
		lreq.OnDraft = s.onDraft(req.RunID)
	}
	res, err := s.local.Plan(ctx, lreq)
	if err == nil {
		out := fromLocal(res, "local", "local", reasons)
		out.Degraded = degraded
		return result(out), nil
	}
	var pe *localplanner.PlanError
	if errors.As(err, &pe) && pe.Result != nil {
		localErrs = pe.Result.Errors
	}
	// The local planner could not make a valid plan: escalate if allowed.
	if ok, why := s.remoteAllowed(ctx, req.RunID, req.Request, req.Sensitive, req.Planner, wf, PurposeEscalate); ok {
		reasons = append(reasons, fmt.Sprintf("local planner failed (%v): escalating to the remote planner", err))
		p, usage, rerr := s.remotePlan(ctx, req.RunID, req.Request, req.Sensitive, "plan", localErrs)
		if rerr == nil {
			return result(exec.PlanResult{Plan: p, Source: "remote", Route: "remote", Reasons: reasons, Model: usage.Model,
				Attempts: 1, Errors: localErrs, CostUSD: usage.CostUSD}), nil
		}
		err = fmt.Errorf("%w; remote planner: %v", err, rerr)
		degraded = degraded || fallback.Degrades(rerr)
	} else {
		reasons = append(reasons, "local planner failed; not escalating: "+why)
		e := s.policy.Decide(Ask{Purpose: PurposeEscalate, RequestPlanner: req.Planner, RequestSensitive: req.Sensitive, Workflow: wf})
		if e.Allowed {
			ref := s.refusalOf(ctx, fallback.PlanRequest{RunID: req.RunID, Purpose: "plan", UserRequest: req.Request})
			// Refused for a cap before the call is degraded, as a call
			// refused at its reservation is.
			degraded = degraded || ref.degraded
			if ref.passing && req.Async {
				return result(exec.PlanResult{Route: "deferred", Reasons: append(reasons, "async run waits for the remote planner: "+ref.reason),
					Errors: localErrs, Degraded: degraded}), &exec.DeferError{Reason: ref.reason}
			}
		}
	}
	return result(exec.PlanResult{Route: "local", Reasons: reasons, Errors: localErrs, Degraded: degraded}), err
}

// fromCache plans the request from a learned template when one matches
// its wording and the filled plan validates. It is not asked when the
// request names the remote planner, or when a configured workflow's
// keywords match (the operator's templates come first). why says what
// happened when a template matched but could not be used.
func (s *Service) fromCache(ctx context.Context, req exec.PlanRequest) (exec.PlanResult, bool, string) {
	if s.cache == nil || !s.cfg.Planner.Cache.Enabled || req.Planner == "remote" {
		return exec.PlanResult{}, false, ""
	}
	if s.templates != nil && s.templates.Len() > 0 {
		if _, _, ok := s.templates.Match(req.Request); ok {
			return exec.PlanResult{}, false, ""
		}
		// A sensitive (or local-only) workflow the router model might
		// recognise is the router's to rule out: a template learned before
		// that workflow was configured must not take the request around it.
		if s.cfg.Planner.ClassifyWorkflows != "never" && s.templates.RelatedNarrowing(req.Request) {
			return exec.PlanResult{}, false, ""
		}
	}
	hit, ok := s.cache.Lookup(req.Request)
	if !ok {
		return exec.PlanResult{}, false, ""
	}
	if errs := plan.Validate(hit.Plan, s.catalog, s.cfg.Planner.MaxSteps); len(errs) > 0 {
		why := plan.Errors(errs).Error()
		s.cache.Rejected(ctx, hit.Template.ID, why)
		return exec.PlanResult{}, false, fmt.Sprintf("learned template %s matched but its plan did not validate (%s): planning", hit.Template.ID, why)
	}
	hit.Plan.Normalize()
	reasons := []string{fmt.Sprintf("learned template %s (%s) matched the wording %q: no planner call", hit.Template.Name, hit.Template.ID, hit.Phrasing)}
	if hit.Plan.AnswerPattern != "" {
		reasons = append(reasons, "its confirmed answer pattern writes the reply: no summarizer call")
	}
	return exec.PlanResult{Plan: hit.Plan, Source: "cache", Route: "cache", Reasons: reasons, Attempts: 1,
		Sensitive: req.Sensitive, Template: hit.Use()}, true, ""
}

// workflowFor is the named workflow's config, nil for none.
func (s *Service) workflowFor(name string) *config.WorkflowConfig {
	if name == "" {
		return nil
	}
	if w, ok := s.workflow(name); ok {
		return &w
	}
	return nil
}

func (s *Service) workflow(name string) (config.WorkflowConfig, bool) {
	for _, w := range s.cfg.Workflows {
		if w.Name == name {
			return w, true
		}
	}
	return config.WorkflowConfig{}, false
}

func (s *Service) Replan(ctx context.Context, req exec.ReplanRequest) (exec.PlanResult, error) {
	lreq := localplanner.Request{Text: req.Request, RunID: req.RunID, Sensitive: req.Sensitive}
	var cause error = errors.New("step failed")
	var failed plan.Step
	if len(req.Failed) > 0 {
		cause = errors.New(req.Failed[0].Error)
		if req.Plan != nil {
			failed, _ = req.Plan.Step(req.Failed[0].ID)
		}
		if failed.ID == "" {
			failed.ID = req.Failed[0].ID
		}
	}
	if req.Remote {
		wf := s.workflowFor(req.Workflow)
		if ok, why := s.remoteAllowed(ctx, req.RunID, req.Request, req.Sensitive, "", wf, PurposeReplan); !ok {
			return exec.PlanResult{}, fmt.Errorf("%w: %s", fallback.ErrDisabled, why)
		}
		// Only step ids leave the machine: the replan prompt sees the done
		// steps as ids whose results stay here, and the failed step by id,
		// with no error text (an error may quote a tool's output).
		kept, _ := json.Marshal("(result kept on this machine)")
		done := make(map[string]json.RawMessage, len(req.Completed))
		for id := range req.Completed {
			done[id] = kept
		}
		m := s.remoteModel(req.RunID, "replan", req.Sensitive, nil)
		res, err := s.remotePlanner(m).Replan(ctx, lreq, nil, done, plan.Step{ID: failed.ID}, errors.New("the step failed"))
		usage := m.spent()
		if err != nil {
			return exec.PlanResult{CostUSD: usage.CostUSD}, fmt.Errorf("remote planner: %w", err)
		}
		return exec.PlanResult{Plan: res.Plan, Source: "replan_remote", Route: "remote", Model: usage.Model,
			Attempts: res.Attempts, Errors: res.Errors, CostUSD: usage.CostUSD}, nil
	}
	completed := make(map[string]json.RawMessage, len(req.Completed))
	for id, out := range req.Completed {
		if json.Valid([]byte(out)) {
			completed[id] = json.RawMessage(out)
		} else {
			b, _ := json.Marshal(out)
			completed[id] = b
		}
	}
	res, err := s.local.Replan(ctx, lreq, req.Plan, completed, failed, cause)
	if err != nil {
		return exec.PlanResult{}, err
	}
	return fromLocal(res, "replan_local", "local", nil), nil
}

// remoteAllowed asks the egress policy, then the gate (budget, link).
func (s *Service) remoteAllowed(ctx context.Context, runID, text string, sensitive bool, planner string, wf *config.WorkflowConfig, purpose string) (bool, string) {
	e := s.policy.Decide(Ask{Purpose: purpose, RequestPlanner: planner, RequestSensitive: sensitive, Workflow: wf})
	if !e.Allowed {
		return false, strings.Join(e.Reasons, "; ")
	}
	if s.gate == nil {
		return false, "remote fallback is not configured"
	}
	return s.gate.AllowRemote(ctx, fallback.PlanRequest{RunID: runID, Purpose: "plan", UserRequest: text, Sensitive: sensitive})
}

// remotePlan plans text on the remote planner, through the same parse,
// validate and repair loop as the local planner.
func (s *Service) remotePlan(ctx context.Context, runID, text string, sensitive bool, purpose string, localErrs []string) (*plan.Plan, fallback.PlanUsage, error) {
	if s.gate == nil {
		return nil, fallback.PlanUsage{}, fallback.ErrDisabled
	}
	m := s.remoteModel(runID, purpose, sensitive, localErrs)
	res, err := s.remotePlanner(m).Plan(ctx, localplanner.Request{Text: text, RunID: runID, Sensitive: sensitive})
	if err != nil {
		return nil, m.spent(), fmt.Errorf("remote planner: %w", err)
	}
	return res.Plan, m.spent(), nil
}

func (s *Service) remoteModel(runID, purpose string, sensitive bool, localErrs []string) *remoteModel {
	return &remoteModel{gate: s.gate, runID: runID, purpose: purpose, sensitive: sensitive, localErrs: localErrs}
}

// remotePlanner is the local planner's loop over the remote model.
func (s *Service) remotePlanner(m *remoteModel) *localplanner.Planner {
	return localplanner.New(m, s.catalog, s.cfg.Planner, config.ModelsConfig{Planner: s.cfg.Fallback.Model}, s.log)
}
