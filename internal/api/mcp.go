package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentd/agentd/internal/buildinfo"
	"github.com/agentd/agentd/internal/run"
)

// mcpSessionIdle ends an MCP session its client forgot.
const mcpSessionIdle = 30 * time.Minute

// MCPServeOptions configures agentd's own MCP server.
type MCPServeOptions struct {
	// Wait bounds how long submit_run waits for its run.
	Wait time.Duration
	Log  *slog.Logger
}

// RegisterMCP serves agentd's workflows and runs as MCP tools over
// Streamable HTTP at /mcp, behind the same Host, Origin and token checks as
// every API route (Server.Handle), so a desktop or IDE agent can hand work
// to this site's agent. The tools call the Engine and RunReader the HTTP
// API calls.
func RegisterMCP(s *Server, d Deps, o MCPServeOptions) error {
	if d.Engine == nil || d.Runs == nil {
		return errors.New("api: RegisterMCP needs Engine and Runs")
	}
	if o.Wait <= 0 {
		o.Wait = 2 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	m := &mcpTools{d: d, wait: o.Wait}
	srv := mcp.NewServer(&mcp.Implementation{Name: "agentd", Version: buildinfo.Version}, &mcp.ServerOptions{Logger: o.Log})
	mcp.AddTool(srv, &mcp.Tool{
		Name: "submit_run",
		Description: "Hand a request to this site's local agent. It plans and runs it with local models and tools, " +
			"waits a bounded time and returns the run id, its status and, when done, the answer. " +
			"A run still going is followed with get_run.",
	}, m.submit)
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "get_run",
		Description: "Status, answer and steps of a run of this site's agent, by the id submit_run returned.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true},
	}, m.get)
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "list_workflows",
		Description: "The workflows this site's agent knows; submit_run may name one.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true},
	}, m.workflows)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{
		Logger:         o.Log,
		SessionTimeout: mcpSessionIdle,
		// The Host allowlist in front of every route (server.allowed_hosts)
		// already defeats DNS rebinding; a second, narrower rule here would
		// refuse names the operator allowed.
		DisableLocalhostProtection: true,
	})
	// POST carries messages, GET the server's event stream, DELETE ends a
	// session. One pattern per method: a method-less "/mcp" would conflict
	// with the dashboard's "GET /".
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		s.Handle(m+" /mcp", h)
	}
	return nil
}

type mcpTools struct {
	d    Deps
	wait time.Duration
}

// SubmitRunIn is submit_run's arguments.
type SubmitRunIn struct {
	Request   string         `json:"request" jsonschema:"what to do, in plain words"`
	Workflow  string         `json:"workflow,omitempty" jsonschema:"a workflow from list_workflows, optional"`
	Params    map[string]any `json:"params,omitempty" jsonschema:"the workflow's parameters, optional"`
	Sensitive bool           `json:"sensitive,omitempty" jsonschema:"true keeps the run on this machine, whatever the fallback settings"`
}

// RunOut is a run as submit_run and get_run return it.
type RunOut struct {
	ID     string    `json:"id"`
	Status string    `json:"status"`
	Answer string    `json:"answer,omitempty"`
	Error  string    `json:"error,omitempty"`
	Steps  []StepOut `json:"steps,omitempty"`
}

// StepOut summarises one step of a run.
type StepOut struct {
	ID     string `json:"id"`
	Tool   string `json:"tool,omitempty"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// GetRunIn is get_run's arguments.
type GetRunIn struct {
	ID string `json:"id" jsonschema:"the run id submit_run returned"`
}

// WorkflowsOut is list_workflows' result.
type WorkflowsOut struct {
	Workflows []string `json:"workflows"`
}

func runOut(r *run.Run) RunOut {
	return RunOut{ID: r.ID, Status: string(r.Status), Answer: r.Answer, Error: r.Error}
}

func (m *mcpTools) submit(ctx context.Context, _ *mcp.CallToolRequest, in SubmitRunIn) (*mcp.CallToolResult, RunOut, error) {
	r, err := m.d.Engine.Submit(ctx, SubmitRequest{
		Request: in.Request, Workflow: in.Workflow, Params: in.Params, Sensitive: in.Sensitive,
		Planner: "auto", Source: "mcp",
	})
	if err != nil {
		return nil, RunOut{}, fmt.Errorf("submit run: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, m.wait)
	done, err := m.d.Engine.Wait(wctx, r.ID)
	cancel()
	switch {
	case err == nil:
		r = done
	case ctx.Err() != nil:
		return nil, RunOut{}, ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		// Still going: answer with the run as it stands; get_run follows it.
		if d, err := m.d.Runs.RunDetail(ctx, r.ID); err == nil && d.Run != nil {
			r = d.Run
		}
	default:
		return nil, RunOut{}, fmt.Errorf("wait for run %s: %w", r.ID, err)
	}
	return nil, runOut(r), nil
}

func (m *mcpTools) get(ctx context.Context, _ *mcp.CallToolRequest, in GetRunIn) (*mcp.CallToolResult, RunOut, error) {
	d, err := m.d.Runs.RunDetail(ctx, in.ID)
	if err != nil {
		return nil, RunOut{}, fmt.Errorf("run %s: %w", in.ID, err)
	}
	out := runOut(d.Run)
	for _, s := range d.Steps {
		out.Steps = append(out.Steps, StepOut{ID: s.StepID, Tool: s.Tool, Status: string(s.Status), Error: s.Error})
	}
	return nil, out, nil
}

func (m *mcpTools) workflows(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, WorkflowsOut, error) {
	out := WorkflowsOut{Workflows: []string{}}
	if m.d.Workflows != nil {
		out.Workflows = append(out.Workflows, m.d.Workflows()...)
	}
	return nil, out, nil
}
