// Package genai holds the attribute keys and values of the OpenTelemetry
// GenAI semantic conventions that agentd's spans use, declared once for
// every package that makes spans (the executor, the model client). It
// depends on the OpenTelemetry API only.
package genai

import (
	"encoding/json"

	"go.opentelemetry.io/otel/attribute"
)

// GenAI semantic-convention keys.
const (
	OperationName         = attribute.Key("gen_ai.operation.name")
	ProviderName          = attribute.Key("gen_ai.provider.name")
	AgentName             = attribute.Key("gen_ai.agent.name")
	ConversationID        = attribute.Key("gen_ai.conversation.id")
	RequestModel          = attribute.Key("gen_ai.request.model")
	RequestMaxTokens      = attribute.Key("gen_ai.request.max_tokens")
	ResponseFinishReasons = attribute.Key("gen_ai.response.finish_reasons")
	UsageInputTokens      = attribute.Key("gen_ai.usage.input_tokens")
	UsageOutputTokens     = attribute.Key("gen_ai.usage.output_tokens")
	ToolName              = attribute.Key("gen_ai.tool.name")
	ToolType              = attribute.Key("gen_ai.tool.type")
	ToolCallID            = attribute.Key("gen_ai.tool.call.id")
	// Content keys: set only when telemetry.include_content is on.
	InputMessages     = attribute.Key("gen_ai.input.messages")
	OutputMessages    = attribute.Key("gen_ai.output.messages")
	ToolCallArguments = attribute.Key("gen_ai.tool.call.arguments")
	ToolCallResult    = attribute.Key("gen_ai.tool.call.result")

	ErrorType     = attribute.Key("error.type")
	ServerAddress = attribute.Key("server.address")
)

// agentd's own keys, beside the conventions.
const (
	RunID      = attribute.Key("agentd.run.id")
	RunRoute   = attribute.Key("agentd.run.route")
	RunStatus  = attribute.Key("agentd.run.status")
	RunSource  = attribute.Key("agentd.run.source")
	StepID     = attribute.Key("agentd.step.id")
	Purpose    = attribute.Key("agentd.purpose")
	PlanSource = attribute.Key("agentd.plan.source")
)

// Values.
const (
	Agent          = "agentd"
	ProviderOllama = "ollama"
	OpInvokeAgent  = "invoke_agent"
	OpChat         = "chat"
	OpExecuteTool  = "execute_tool"
	// OpPlan is agentd's planning (the conventions name no such
	// operation): the router, the local or remote planner and repairs.
	OpPlan = "plan"
)

// Message is one message of gen_ai.input.messages or
// gen_ai.output.messages, in the conventions' shape.
type Message struct {
	Role  string `json:"role"`
	Parts []Part `json:"parts"`
}

// Part is a message part; agentd sends text only.
type Part struct {
	Type    string `json:"type"`
	Content string `json:"content"`
}

// Text is a message of one text part.
func Text(role, content string) Message {
	return Message{Role: role, Parts: []Part{{Type: "text", Content: content}}}
}

// Messages is the JSON value of a messages attribute.
func Messages(msgs ...Message) string {
	b, _ := json.Marshal(msgs)
	return string(b)
}
