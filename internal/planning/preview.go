package planning

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentd/agentd/internal/localplanner"
)

// Preview is what the service would do with a request, without running it
// or sending anything anywhere (`agentd plan`): the routing decision and,
// when a plan was made, the plan with its planner calls.
type Preview struct {
	Decision Decision
	Result   *localplanner.Result
	// Notes say how the preview differs from a real run.
	Notes []string
}

// Preview routes and plans text the way Plan does, except that the remote
// planner is never consulted: a request the daemon would send remote is
// planned locally here, and a note says so.
func (s *Service) Preview(ctx context.Context, text, workflow, planner string, sensitive bool) (Preview, error) {
	req := localplanner.Request{Text: text, Planner: planner, Sensitive: sensitive}
	var pv Preview
	if s.cfg.Fallback.Enabled {
		pv.Notes = append(pv.Notes, "preview only: the remote planner is never consulted here, so a request the daemon would send remote is planned locally")
	}
	if workflow != "" {
		wf, ok := s.templates.Workflow(workflow)
		if !ok {
			return pv, fmt.Errorf("no workflow is named %q — see [[workflows]] in the config", workflow)
		}
		pv.Decision = Decision{Workflow: workflow, Planner: RouteLocal, Sensitive: sensitive || wf.Sensitive,
			Fingerprint: localplanner.Fingerprint(text), Reasons: []string{"workflow " + workflow + " requested"}}
		if wf.Mode == localplanner.ModeScratchpad {
			pv.Decision.Route = RouteScratchpad
			pv.Decision.Reasons = append(pv.Decision.Reasons, "workflow "+workflow+" runs in scratchpad mode: no plan")
			return pv, nil
		}
		pv.Decision.Route = RouteTemplate
		res, err := s.templates.Plan(ctx, req, workflow)
		pv.Result = res
		return pv, err
	}
	d, err := s.router.Route(ctx, req)
	pv.Decision = d
	if err != nil {
		return pv, fmt.Errorf("route: %w", err)
	}
	switch d.Route {
	case RouteScratchpad:
		return pv, nil
	case RouteTemplate:
		res, err := s.templates.Plan(ctx, req, d.Workflow)
		if err == nil {
			pv.Result = res
			return pv, nil
		}
		pv.Decision.Reasons = append(pv.Decision.Reasons, fmt.Sprintf("template %s could not be used (%v): planning with the local planner", d.Workflow, err))
	}
	req.Sensitive = req.Sensitive || d.Sensitive
	res, err := s.local.Plan(ctx, req)
	if err != nil {
		var pe *localplanner.PlanError
		if errors.As(err, &pe) {
			res = pe.Result
		}
	}
	pv.Result = res
	return pv, err
}
