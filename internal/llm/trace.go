package llm

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentd/agentd/internal/telemetry/genai"
)

// startChatSpan opens the call's "chat <model>" span, with the GenAI
// conventions' request attributes; the messages go on it only when the
// client was built to trace content.
func (c *Client) startChatSpan(ctx context.Context, req Request) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{
		genai.OperationName.String(genai.OpChat), genai.ProviderName.String(genai.ProviderOllama),
		genai.RequestModel.String(req.Model), genai.Purpose.String(req.Purpose),
	}
	if req.RunID != "" {
		attrs = append(attrs, genai.RunID.String(req.RunID))
	}
	if req.StepID != "" {
		attrs = append(attrs, genai.StepID.String(req.StepID))
	}
	if n := c.numPredict(req); n > 0 {
		attrs = append(attrs, genai.RequestMaxTokens.Int(n))
	}
	if c.traceContent {
		msgs := make([]genai.Message, len(req.Messages))
		for i, m := range req.Messages {
			msgs[i] = genai.Text(m.Role, m.Content)
		}
		attrs = append(attrs, genai.InputMessages.String(genai.Messages(msgs...)))
	}
	return c.tracer.Start(ctx, genai.OpChat+" "+req.Model,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endChatSpan closes the span with the usage (also of a reply cut at its
// bound or broken off, from its partial response) and the error's class;
// an error's text goes on it only with content, since it may quote output.
func (c *Client) endChatSpan(span trace.Span, resp *Response, err error) {
	var e *Error
	if resp == nil && errors.As(err, &e) {
		resp = e.Partial
	}
	if resp != nil {
		u := resp.Usage
		span.SetAttributes(genai.UsageInputTokens.Int(u.PromptTokens), genai.UsageOutputTokens.Int(u.OutputTokens))
		if resp.DoneReason != "" {
			span.SetAttributes(genai.ResponseFinishReasons.StringSlice([]string{resp.DoneReason}))
		}
		if u.Endpoint != "" {
			span.SetAttributes(attribute.String("agentd.endpoint", u.Endpoint))
			// The provider is the API the call went over: known only once
			// an endpoint was picked.
			for _, ep := range c.endpoints {
				if ep.name == u.Endpoint && ep.openai {
					span.SetAttributes(genai.ProviderName.String("openai"))
				}
			}
		}
		if u.Attempts > 1 {
			span.SetAttributes(attribute.Int("agentd.attempts", u.Attempts))
		}
		if c.traceContent {
			span.SetAttributes(genai.OutputMessages.String(genai.Messages(genai.Text("assistant", resp.Message.Content))))
		}
	}
	if err != nil {
		class := string(ClassOf(err))
		span.SetAttributes(genai.ErrorType.String(class))
		desc := class
		if c.traceContent {
			desc = err.Error()
		}
		span.SetStatus(codes.Error, desc)
	}
	span.End()
}
