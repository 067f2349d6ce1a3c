package planning

import (
	"context"
	"fmt"
	"github.com/agentd/agentd/internal/localplanner"
	"log/slog"
	"strings"

	"github.com/agentd/agentd/internal/config"
)

// History tells the router how often requests like this one (same
// Fingerprint) failed on the local planner before.
type History interface {
	LocalFailures(ctx context.Context, requestFingerprint string) (int, error)
}

// RemoteGate says whether the remote planner may be used for a request
// now (policy, budget, link, privacy), and why or why not.
type RemoteGate interface {
	AllowRemote(ctx context.Context, req localplanner.Request) (bool, string)
}

// NoRemote is the gate when remote fallback is off.
type NoRemote struct{}

// AllowRemote always refuses.
func (NoRemote) AllowRemote(context.Context, localplanner.Request) (bool, string) {
	return false, "remote fallback disabled"
}

var _ RemoteGate = NoRemote{}

// Route is where a request goes to get its plan.
type Route string

// Routes.
const (
	RouteTemplate   Route = "template"   // a workflow template, no planner call
	RouteLocal      Route = "local"      // the local planner
	RouteRemote     Route = "remote"     // the remote planner
	RouteScratchpad Route = "scratchpad" // a workflow in scratchpad mode: no plan
)

// historyWeight is what each earlier local failure of a similar request
// adds to the complexity score.
const historyWeight = 0.25

// defaultEscalateScore applies when config leaves escalate_score at zero.
const defaultEscalateScore = 0.7

// Decision is the router's choice and every reason for it.
type Decision struct {
	Route    Route
	Workflow string // the workflow matched, for RouteTemplate and RouteScratchpad
	// Planner is where to plan when no template applies or the template
	// cannot be instantiated: RouteLocal or RouteRemote. For those routes
	// it equals Route.
	Planner       Route
	Sensitive     bool
	Features      localplanner.Features
	Score         float64 // complexity, with history added
	LocalFailures int
	Fingerprint   string
	Reasons       []string
	Usage         localplanner.Usage // the workflow classification call, if one was made
}

func (d *Decision) reason(format string, args ...any) {
	d.Reasons = append(d.Reasons, fmt.Sprintf(format, args...))
}

// Router picks, for each request: a workflow template, the local planner,
// the remote planner, or scratchpad mode.
type Router struct {
	cfg       config.PlannerConfig
	catalog   localplanner.Catalog
	templates *localplanner.Templates
	history   History
	gate      RemoteGate
	log       *slog.Logger
}

// NewRouter returns a router. templates and history may be nil; a nil gate
// is NoRemote.
func NewRouter(cfg config.PlannerConfig, catalog localplanner.Catalog, templates *localplanner.Templates, history History, gate RemoteGate, log *slog.Logger) *Router {
	if gate == nil {
		gate = NoRemote{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{cfg: cfg, catalog: catalog, templates: templates, history: history, gate: gate,
		log: log.With("component", "router")}
}

// Route decides how a request is planned. A workflow is recognised by
// keyword or, when no keyword matches, by the router model; otherwise the
// planner mode (request override, then workflow, then config) and, in auto
// mode, the request's complexity and history choose local or remote. Remote
// is chosen only when the gate allows it and the request and its workflow
// are not sensitive. Only a cancelled context is an error.
func (r *Router) Route(ctx context.Context, req localplanner.Request) (Decision, error) {
	d := Decision{Sensitive: req.Sensitive, Fingerprint: localplanner.Fingerprint(req.Text)}
	if req.Sensitive {
		d.reason("request is marked sensitive")
	}
	var wf *config.WorkflowConfig
	if r.templates != nil && r.templates.Len() > 0 {
		if name, kws, ok := r.templates.Match(req.Text); ok {
			d.Workflow = name
			d.reason("workflow %s matched keywords %s", name, strings.Join(kws, ", "))
		} else if r.cfg.ClassifyWorkflows == "never" {
			d.reason("no workflow matched by keyword (classification off)")
		} else if r.cfg.ClassifyWorkflows == "related" && !r.templates.Related(req.Text) {
			d.reason("no workflow matched by keyword, and none shares a word with the request: no classification call")
		} else {
			name, u, err := r.templates.Classify(ctx, req)
			d.Usage = u
			switch {
			case ctx.Err() != nil:
				return d, ctx.Err()
			case err != nil:
				d.reason("workflow classification failed: %v", err)
			case name != localplanner.NoWorkflow:
				d.Workflow = name
				d.reason("router model classified the request as workflow %s", name)
			default:
				d.reason("no workflow matched by keyword or by the router model")
			}
		}
		if d.Workflow != "" {
			c, _ := r.templates.Workflow(d.Workflow)
			wf = &c
			if c.Sensitive {
				d.Sensitive = true
				d.reason("workflow %s is sensitive", c.Name)
			}
		}
	}
	planner, err := r.localOrRemote(ctx, req, wf, &d)
	if err != nil {
		return d, err
	}
	d.Planner = planner
	switch {
	case wf != nil && wf.Mode == localplanner.ModeScratchpad:
		d.Route = RouteScratchpad
		d.reason("workflow %s runs in scratchpad mode", wf.Name)
	case wf != nil && len(wf.Steps) > 0:
		d.Route = RouteTemplate
		d.reason("workflow %s has a plan template: no planner call", wf.Name)
	default:
		d.Route = planner
	}
	r.log.Info("routed", "run", req.RunID, "decision", d)
	return d, nil
}

func (r *Router) localOrRemote(ctx context.Context, req localplanner.Request, wf *config.WorkflowConfig, d *Decision) (Route, error) {
	mode, by := r.cfg.Mode, "config"
	if mode == "" {
		mode = "auto"
	}
	if wf != nil && wf.Planner != "" && wf.Planner != "auto" {
		mode, by = wf.Planner, "workflow "+wf.Name
	}
	switch req.Planner {
	case "", "auto":
	case "local", "remote":
		mode, by = req.Planner, "the request"
	default:
		d.reason("planner override %q ignored: use local, remote or auto", req.Planner)
	}
	var known map[string]bool
	if r.catalog != nil {
		known = localplanner.KnownWords(r.catalog.List())
	}
	d.Features = localplanner.ExtractFeatures(req.Text, known)
	d.Score = d.Features.Score()
	switch mode {
	case "local":
		d.reason("local planner chosen by %s", by)
		return RouteLocal, nil
	case "remote":
		d.reason("remote planner chosen by %s", by)
		return r.remote(ctx, req, d), nil
	}
	if r.history != nil {
		n, err := r.history.LocalFailures(ctx, d.Fingerprint)
		switch {
		case ctx.Err() != nil:
			return "", ctx.Err()
		case err != nil:
			d.reason("planning history unavailable: %v", err)
		case n > 0:
			d.LocalFailures = n
			d.Score = min(1, d.Score+historyWeight*float64(n))
			d.reason("similar requests failed on the local planner %d times before", n)
		}
	}
	threshold := r.cfg.Complexity.EscalateScore
	if threshold <= 0 {
		threshold = defaultEscalateScore
	}
	f := d.Features
	detail := fmt.Sprintf("words=%d asks=%d conditionals=%d unknown_entities=%d", f.Words, f.Asks, f.Conditionals, f.UnknownEntities)
	if d.Score < threshold {
		d.reason("complexity %.2f is below escalate_score %.2f (%s): local planner", d.Score, threshold, detail)
		return RouteLocal, nil
	}
	d.reason("complexity %.2f reaches escalate_score %.2f (%s)", d.Score, threshold, detail)
	return r.remote(ctx, req, d), nil
}

// remote returns RouteRemote if the request may leave, else RouteLocal.
func (r *Router) remote(ctx context.Context, req localplanner.Request, d *Decision) Route {
	if d.Sensitive {
		d.reason("remote planner not used: the request is sensitive; local planner")
		return RouteLocal
	}
	ok, why := r.gate.AllowRemote(ctx, req)
	if !ok {
		d.reason("remote planner not allowed: %s; local planner", why)
		return RouteLocal
	}
	if why != "" {
		d.reason("remote planner allowed: %s", why)
	} else {
		d.reason("remote planner allowed")
	}
	return RouteRemote
}

// LogValue lets a decision be logged as one structured value.
func (d Decision) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("route", string(d.Route)),
		slog.String("planner", string(d.Planner)),
		slog.String("workflow", d.Workflow),
		slog.Float64("score", d.Score),
		slog.Int("local_failures", d.LocalFailures),
		slog.Bool("sensitive", d.Sensitive),
		slog.Any("reasons", d.Reasons),
	)
}
