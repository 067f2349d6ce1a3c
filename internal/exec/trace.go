package exec

import (
	"context"
	"encoding/json"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentd/agentd/internal/run"
	"github.com/agentd/agentd/internal/telemetry/genai"
)

// startRunSpan opens the run's root span ("invoke_agent agentd") and keeps
// its trace id on the run (its meta, so the store serves it) when the
// span is exported. A run resumed after a restart gets a new trace.
func (x *runExec) startRunSpan(ctx context.Context) (context.Context, trace.Span) {
	x.mu.Lock()
	defer x.mu.Unlock()
	attrs := []attribute.KeyValue{
		genai.OperationName.String(genai.OpInvokeAgent), genai.AgentName.String(genai.Agent),
		genai.ConversationID.String(x.r.ID), genai.RunID.String(x.r.ID), genai.RunSource.String(x.r.Source),
	}
	if x.e.d.TraceContent {
		attrs = append(attrs, genai.InputMessages.String(genai.Messages(genai.Text("user", x.r.Request))))
	}
	ctx, span := x.e.d.Tracer.Start(ctx, genai.OpInvokeAgent+" "+genai.Agent,
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	if sc := span.SpanContext(); sc.IsSampled() {
		m := x.meta()
		m.TraceID = sc.TraceID().String()
		x.r.TraceID = m.TraceID
		x.r.Meta, _ = json.Marshal(m)
	}
	return ctx, span
}

// endRunSpan closes the run's span with how the run ended.
func (x *runExec) endRunSpan(span trace.Span) {
	x.mu.Lock()
	st, route, workflow, answer, errMsg := x.r.Status, x.r.Route, x.r.Workflow, x.r.Answer, x.r.Error
	x.mu.Unlock()
	span.SetAttributes(genai.RunStatus.String(string(st)), genai.RunRoute.String(route))
	if workflow != "" {
		span.SetAttributes(attribute.String("agentd.run.workflow", workflow))
	}
	if x.e.d.TraceContent && answer != "" {
		span.SetAttributes(genai.OutputMessages.String(genai.Messages(genai.Text("assistant", answer))))
	}
	if st == run.Failed {
		span.SetStatus(codes.Error, x.errText("run failed", errMsg))
	}
	span.End()
}

// startPlanSpan opens a planning span under the run's.
func (x *runExec) startPlanSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	return x.e.d.Tracer.Start(ctx, name+" "+genai.Agent, trace.WithAttributes(
		genai.OperationName.String(genai.OpPlan), genai.AgentName.String(genai.Agent), genai.RunID.String(x.r.ID)))
}

// endPlanSpan closes a planning span with what planning decided.
func (x *runExec) endPlanSpan(span trace.Span, res PlanResult, err error) {
	span.SetAttributes(genai.PlanSource.String(res.Source), genai.RunRoute.String(res.Route),
		attribute.Int("agentd.plan.attempts", res.Attempts))
	if res.Model != "" {
		span.SetAttributes(genai.RequestModel.String(res.Model))
	}
	if res.Plan != nil {
		span.SetAttributes(attribute.Int("agentd.plan.steps", len(res.Plan.Steps)))
	}
	if err != nil {
		span.SetStatus(codes.Error, x.errText("planning failed", err.Error()))
	}
	span.End()
}

// errText is what a span says of an error: its text only with
// TraceContent, since an error may quote a model's output or a tool's.
func (x *runExec) errText(generic, text string) string {
	if x.e.d.TraceContent {
		return text
	}
	return generic
}

// startToolSpan opens an "execute_tool" span; the arguments go on it only
// with TraceContent.
func (x *runExec) startToolSpan(ctx context.Context, st *run.Step, name, argsJSON string) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{
		genai.OperationName.String(genai.OpExecuteTool), genai.ToolName.String(name), genai.ToolType.String("function"),
		genai.ToolCallID.String(st.RunID + "/" + st.StepID), genai.StepID.String(st.StepID),
	}
	if x.e.d.TraceContent {
		attrs = append(attrs, genai.ToolCallArguments.String(argsJSON))
	}
	return x.e.d.Tracer.Start(ctx, genai.OpExecuteTool+" "+name, trace.WithAttributes(attrs...))
}

// endToolSpan closes a tool span; the result goes on it only with
// TraceContent.
func (x *runExec) endToolSpan(span trace.Span, output string, err error) {
	if x.e.d.TraceContent {
		span.SetAttributes(genai.ToolCallResult.String(output))
	}
	if err != nil {
		span.SetAttributes(genai.ErrorType.String("tool_error"))
		span.SetStatus(codes.Error, x.errText("tool failed", err.Error()))
	}
	span.End()
}
