package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/llm"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/tools"
)

// PlanOnly is the router and planners the daemon builds, from the same
// config and the same adapters, without the database, its lock, the HTTP
// listener or the executor: `agentd plan` shows what agentd would do with a
// request while a daemon may be running beside it. The remote planner is
// never consulted (it needs the budget ledger in the database, and a
// preview must not spend money or send bytes).
type PlanOnly struct {
	cfg       *config.Config
	router    *localplanner.Router
	templates *localplanner.Templates
	local     *localplanner.Planner
	registry  *tools.Registry
}

// Preview is what planning a request would produce. Plan is nil when the
// route needs no plan (scratchpad workflows); Err is the planner's error,
// if any, with Result holding what the failed attempts met.
type Preview struct {
	Decision localplanner.Decision
	Result   *localplanner.Result
	// Notes say where the preview differs from a real run.
	Notes []string
}

// NewPlanner builds the tool catalog, the Ollama client, the workflow
// templates, the local planner and the router as New does. Close it to
// stop the MCP servers the tool registry may have started.
func NewPlanner(ctx context.Context, cfg *config.Config, log *slog.Logger) (*PlanOnly, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client, err := llm.New(cfg.Ollama, cfg.Models, log)
	if err != nil {
		return nil, fmt.Errorf("ollama client: %w", err)
	}
	reg, err := tools.NewFromConfig(cfg.Tools, tools.Deps{Logger: log, Docs: noDocs{}, Embedder: embedder{client}, EmbedModel: cfg.Models.Embedding})
	if err != nil {
		return nil, err
	}
	catalog := registryTools{r: reg}
	pm := plannerModel{client}
	templates, err := localplanner.NewTemplates(cfg.Workflows, pm, catalog, cfg.Planner, cfg.Models, log)
	if err != nil {
		_ = reg.Close()
		return nil, fmt.Errorf("workflows: %w", err)
	}
	return &PlanOnly{
		cfg:       cfg,
		router:    localplanner.NewRouter(cfg.Planner, catalog, templates, nil, localplanner.NoRemote{}, log),
		templates: templates,
		local:     localplanner.New(pm, catalog, cfg.Planner, cfg.Models, log),
		registry:  reg,
	}, nil
}

// Close stops what the tool registry started.
func (p *PlanOnly) Close() error { return p.registry.Close() }

// ToolInfo describes a tool of the catalog for the preview.
type ToolInfo struct {
	Name       string
	Idempotent bool
	Approval   bool
}

// Tool looks a tool up in the catalog the planner used.
func (p *PlanOnly) Tool(name string) (ToolInfo, bool) {
	s, ok := p.registry.Spec(name)
	if !ok {
		return ToolInfo{}, false
	}
	return ToolInfo{Name: s.Name, Idempotent: s.Idempotent, Approval: s.Approval == tools.ApprovalRequired}, true
}

// Plan routes and plans text the way the daemon's planner service does,
// without running anything. workflow names a workflow to use (as a submit
// with "workflow" does); planner is "", "auto", "local" or "remote".
func (p *PlanOnly) Plan(ctx context.Context, text, workflow, planner string, sensitive bool) (Preview, error) {
	req := localplanner.Request{Text: text, Planner: planner, Sensitive: sensitive}
	var pv Preview
	if p.cfg.Fallback.Enabled {
		pv.Notes = append(pv.Notes, "preview only: the remote planner is never consulted here, so a request the daemon would send remote is planned locally")
	}
	if workflow != "" {
		wf, ok := p.templates.Workflow(workflow)
		if !ok {
			return pv, fmt.Errorf("no workflow is named %q — see [[workflows]] in the config", workflow)
		}
		pv.Decision = localplanner.Decision{Workflow: workflow, Planner: localplanner.RouteLocal,
			Fingerprint: localplanner.Fingerprint(text), Reasons: []string{"workflow " + workflow + " requested"}}
		if wf.Mode == localplanner.ModeScratchpad {
			pv.Decision.Route = localplanner.RouteScratchpad
			pv.Decision.Reasons = append(pv.Decision.Reasons, "workflow "+workflow+" runs in scratchpad mode: no plan")
			return pv, nil
		}
		pv.Decision.Route = localplanner.RouteTemplate
		res, err := p.templates.Plan(ctx, req, workflow)
		pv.Result = res
		return pv, err
	}
	d, err := p.router.Route(ctx, req)
	pv.Decision = d
	if err != nil {
		return pv, fmt.Errorf("route: %w", err)
	}
	switch d.Route {
	case localplanner.RouteScratchpad:
		return pv, nil
	case localplanner.RouteTemplate:
		res, err := p.templates.Plan(ctx, req, d.Workflow)
		if err == nil {
			pv.Result = res
			return pv, nil
		}
		pv.Decision.Reasons = append(pv.Decision.Reasons, fmt.Sprintf("template %s could not be used (%v): planning with the local planner", d.Workflow, err))
	}
	res, err := p.local.Plan(ctx, req)
	if err != nil {
		var pe *localplanner.PlanError
		if errors.As(err, &pe) {
			res = pe.Result
		}
	}
	pv.Result = res
	return pv, err
}

// noDocs stands in for the database behind search_docs: the preview lists
// the tool for the planner but never indexes or searches.
type noDocs struct{}

var errNoDocs = errors.New("search_docs is not available in a plan preview")

func (noDocs) DocFiles(context.Context) ([]db.DocFile, error) { return nil, errNoDocs }
func (noDocs) ReplaceDocChunks(context.Context, string, int64, string, []db.DocChunk) error {
	return errNoDocs
}
func (noDocs) DeleteDocChunks(context.Context, string) error { return errNoDocs }
func (noDocs) ScanDocChunks(context.Context, string, func(db.DocChunk) error) error {
	return errNoDocs
}

var _ tools.DocStore = noDocs{}
