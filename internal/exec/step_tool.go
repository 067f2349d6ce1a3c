package exec

import (
	"context"

	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

// toolStep runs a tool step: arguments already bound from earlier results,
// checked against the tool's schema, and no model call at all.
func (x *runExec) toolStep(ctx context.Context, st *run.Step, spec plan.Step, args map[string]any, a *attempt) (string, error) {
	tool, ok := x.e.d.Tools.Lookup(spec.Tool)
	if !ok {
		return "", classed(ClassInvalid, "unknown tool %q", spec.Tool)
	}
	if err := x.e.val.validateArgs(tool.Schema(), args); err != nil {
		return "", classed(ClassInvalid, "arguments of %s do not match its schema: %v", spec.Tool, err)
	}
	return x.invokeTool(ctx, st, tool, args, a)
}
