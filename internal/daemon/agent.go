package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/llm"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/tools"
	"github.com/ollama/ollama/api"
)

// execChat adapts the Ollama client to the executor's ChatModel.
type execChat struct {
	c        *llm.Client
	recorder *usageRecorder
}

var _ exec.ChatModel = execChat{}

func (e execChat) Chat(ctx context.Context, req exec.ChatRequest) (exec.ChatResponse, error) {
	msgs := make([]api.Message, 0, len(req.Messages))
	for _, m := range req.Messages {
		am := api.Message{Role: m.Role, Content: m.Content, ToolName: m.ToolName}
		for i, tc := range m.ToolCalls {
			var fn api.ToolCallFunction
			fn.Index, fn.Name = i, tc.Name
			if b, err := json.Marshal(tc.Arguments); err == nil {
				_ = json.Unmarshal(b, &fn.Arguments)
			}
			am.ToolCalls = append(am.ToolCalls, api.ToolCall{Function: fn})
		}
		msgs = append(msgs, am)
	}
	var tls api.Tools
	for _, t := range req.Tools {
		tool := api.Tool{Type: "function", Function: api.ToolFunction{Name: t.Name, Description: t.Description}}
		if err := json.Unmarshal(t.Parameters, &tool.Function.Parameters); err != nil {
			return exec.ChatResponse{}, fmt.Errorf("tool %s: schema not usable by Ollama: %w", t.Name, err)
		}
		tls = append(tls, tool)
	}
	resp, err := e.c.Chat(ctx, llm.Request{
		Model: req.Model, Messages: msgs, Tools: tls, Format: req.Format, NumPredict: req.NumPredict,
		RunID: req.RunID, StepID: req.StepID, Purpose: req.Purpose, Options: map[string]any{"temperature": 0},
		Regeneration: req.Regeneration,
	})
	if err != nil {
		return exec.ChatResponse{}, err
	}
	out := exec.ChatResponse{
		Content: resp.Message.Content, DoneReason: resp.DoneReason, Where: "local",
		PromptTokens: resp.Usage.PromptTokens, OutputTokens: resp.Usage.OutputTokens,
		LoadDuration: resp.Usage.LoadDuration, PromptDuration: resp.Usage.PromptEvalDuration,
		EvalDuration: resp.Usage.EvalDuration, TotalDuration: resp.Usage.TotalDuration,
	}
	if e.recorder != nil {
		if w, ok := e.recorder.gpuPowerW(); ok {
			out.EnergyWh = w * resp.Usage.TotalDuration.Hours()
			out.CostUSD = out.EnergyWh / 1000 * e.recorder.priceKWh
		}
	}
	for _, tc := range resp.Message.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, exec.ToolCall{Name: tc.Function.Name, Arguments: tc.Function.Arguments.ToMap()})
	}
	return out, nil
}

// isTransient is the ladder's retry rung: a step that ran out of time, or
// a tool that timed out. Busy and transient model failures are not here:
// the model client has already retried them under the one retry policy
// (ollama.max_retries), recording each attempt, and retrying the step
// again would multiply the calls. A request that hit ollama.request_timeout
// is not retried by the client, so it is retried here, once per rung.
func isTransient(err error) bool {
	switch llm.ClassOf(err) {
	case llm.ClassBusy, llm.ClassUnreachable:
		return false
	case llm.ClassTransient:
		return errors.Is(err, context.DeadlineExceeded)
	}
	return errors.Is(err, context.DeadlineExceeded)
}

func isModelMissing(err error) bool { return llm.ClassOf(err) == llm.ClassModelNotFound }

// isBadOutput: a reply cut at its output bound or broken off by the server.
func isBadOutput(err error) bool {
	c := llm.ClassOf(err)
	return c == llm.ClassTruncated || c == llm.ClassAborted
}

func isNoToolSupport(err error) bool { return llm.ClassOf(err) == llm.ClassNoToolSupport }

// registryTools adapts the tool registry to the executor and the planner.
// pf, when set, serves results of tool steps prefetched while the plan was
// still being written.
type registryTools struct {
	r  *tools.Registry
	pf *prefetcher
}

var _ exec.Tools = registryTools{}

func (t registryTools) Lookup(name string) (exec.Tool, bool) {
	spec, ok := t.r.Spec(name)
	if !ok {
		return nil, false
	}
	return registryTool{r: t.r, spec: spec, pf: t.pf}, true
}

func (t registryTools) Names() []string { return t.r.Names() }

// Has, ValidateArgs and List make the registry the planner's catalog.
func (t registryTools) Has(name string) bool { _, ok := t.r.Get(name); return ok }

func (t registryTools) ValidateArgs(name string, args map[string]any) error {
	b, err := json.Marshal(args)
	if err != nil {
		return err
	}
	return t.r.Validate(name, b)
}

func (t registryTools) List() []plan.ToolInfo {
	specs := t.r.List()
	out := make([]plan.ToolInfo, 0, len(specs))
	for _, s := range specs {
		schema, _ := t.r.ArgsSchema(s.Name)
		out = append(out, plan.ToolInfo{Name: s.Name, Description: s.Description, ArgsSchema: schema})
	}
	return out
}

type registryTool struct {
	r    *tools.Registry
	spec tools.Spec
	pf   *prefetcher
}

func (t registryTool) Name() string            { return t.spec.Name }
func (t registryTool) Description() string     { return t.spec.Description }
func (t registryTool) Schema() json.RawMessage { return t.spec.ArgsSchema }
func (t registryTool) Idempotent() bool        { return t.spec.Idempotent }
func (t registryTool) RequiresApproval() bool  { return t.spec.Approval == tools.ApprovalRequired }
func (t registryTool) Acquire(ctx context.Context) (func(), error) {
	return t.r.Acquire(ctx, t.spec.Name)
}

// Call runs the tool through the registry (validation, timeout, JSON
// check). The executor has already taken the tool's concurrency slot with
// Acquire, so this is Invoke, not Call.
func (t registryTool) Call(ctx context.Context, args map[string]any) (exec.ToolResult, error) {
	if t.pf != nil && t.spec.Idempotent {
		if res, ok := t.pf.take(ctx, exec.RunIDFromContext(ctx), t.spec.Name, args); ok {
			return res, nil
		}
	}
	return invokeTool(ctx, t.r, t.spec.Name, args)
}

// invokeTool runs a tool whose slot the caller holds and shapes its result
// for the executor.
func invokeTool(ctx context.Context, r *tools.Registry, name string, args map[string]any) (exec.ToolResult, error) {
	b, err := json.Marshal(args)
	if err != nil {
		return exec.ToolResult{}, err
	}
	res, err := r.Invoke(ctx, name, b)
	if err != nil {
		return exec.ToolResult{}, err
	}
	code := res.ExitCode
	return exec.ToolResult{Output: strings.TrimSpace(string(res.Output)), ExitCode: &code}, nil
}

// embedder adapts the model client to search_docs.
type embedder struct{ c *llm.Client }

func (e embedder) Embed(ctx context.Context, model string, inputs []string) ([][]float32, error) {
	v, _, err := e.c.Embed(ctx, model, inputs)
	return v, err
}

var _ tools.Embedder = embedder{}

// clientLoader prewarms a model with Ollama's empty-prompt generate.
type clientLoader struct{ c *api.Client }

func (l clientLoader) Load(ctx context.Context, model string, keepAlive time.Duration) error {
	ka := &api.Duration{Duration: keepAlive}
	return l.c.Generate(ctx, &api.GenerateRequest{Model: model, KeepAlive: ka}, func(api.GenerateResponse) error { return nil })
}
