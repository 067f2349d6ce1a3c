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
	"github.com/agentd/agentd/internal/planning"
	"github.com/agentd/agentd/internal/tools"
)

// PlanOnly is the router and planners the daemon builds, from the same
// config and the same adapters, without the database, its lock, the HTTP
// listener or the executor: `agentd plan` shows what agentd would do with a
// request while a daemon may be running beside it. The remote planner is
// never consulted (it needs the budget ledger in the database, and a
// preview must not spend money or send bytes).
type PlanOnly struct {
	svc      *planning.Service
	registry *tools.Registry
}

// Preview is the planning service's preview of a request.
type Preview = planning.Preview

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
	// The same planning service as the daemon's, with no remote gate: a
	// preview never sends anything anywhere.
	svc := planning.New(cfg, planning.Options{Templates: templates, Local: localplanner.New(pm, catalog, cfg.Planner, cfg.Models, log),
		Catalog: catalog, Log: log})
	return &PlanOnly{svc: svc, registry: reg}, nil
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
// Plan previews how the daemon would route and plan text.
func (p *PlanOnly) Plan(ctx context.Context, text, workflow, planner string, sensitive bool) (Preview, error) {
	return p.svc.Preview(ctx, text, workflow, planner, sensitive)
}

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
