package fallback

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
)

// AnthropicVersion is the Messages API version agentd speaks.
const AnthropicVersion = "2023-06-01"

// Anthropic speaks the Anthropic Messages API. The plan is constrained by
// forcing a single tool, submit_plan, whose input schema is the plan schema:
// the long-standing way to get schema-shaped JSON from that API.
type Anthropic struct {
	http httpPoster
	key  secret
}

var _ Provider = (*Anthropic)(nil)

// Name implements Provider.
func (p *Anthropic) Name() string { return "anthropic" }

// Destination implements Provider.
func (p *Anthropic) Destination() string { return p.http.destination() }

const anthropicPlanTool = "submit_plan"

type anthropicRequest struct {
	Model      string          `json:"model"`
	MaxTokens  int             `json:"max_tokens"`
	System     string          `json:"system,omitempty"`
	Messages   []chatMessage   `json:"messages"`
	Tools      []anthropicTool `json:"tools"`
	ToolChoice anthropicChoice `json:"tool_choice"`
}

type anthropicTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type anthropicChoice struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// Encode implements Provider.
func (p *Anthropic) Encode(r Request) ([]byte, error) {
	if err := r.checkLimit(); err != nil {
		return nil, err
	}
	return marshal(anthropicRequest{
		Model:     r.Model,
		MaxTokens: r.MaxTokens,
		System:    r.SystemPrompt,
		Messages:  []chatMessage{{Role: "user", Content: r.UserMessage}},
		Tools: []anthropicTool{{Name: anthropicPlanTool, Description: "Submit the plan.",
			InputSchema: schemaOrObject(r.Schema)}},
		ToolChoice: anthropicChoice{Type: "tool", Name: anthropicPlanTool},
	})
}

type anthropicResponse struct {
	Content []struct {
		Type  string          `json:"type"`
		Text  string          `json:"text"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	} `json:"content"`
	StopReason string `json:"stop_reason"`
	Usage      struct {
		InputTokens              int `json:"input_tokens"`
		OutputTokens             int `json:"output_tokens"`
		CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
		CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	} `json:"usage"`
}

// Send implements Provider.
func (p *Anthropic) Send(ctx context.Context, body []byte) (Response, error) {
	h := http.Header{}
	h.Set("x-api-key", p.key.reveal())
	h.Set("anthropic-version", AnthropicVersion)
	data, resp, err := p.http.post(ctx, body, h)
	if err != nil {
		return resp, err
	}
	var v anthropicResponse
	if err := json.Unmarshal(data, &v); err != nil {
		return resp, p.http.badAnswer("answer is not a message", err)
	}
	resp.Usage = Usage{
		InputTokens:  v.Usage.InputTokens + v.Usage.CacheCreationInputTokens + v.Usage.CacheReadInputTokens,
		OutputTokens: v.Usage.OutputTokens,
	}
	if v.StopReason == "max_tokens" {
		return resp, p.http.badAnswer(msgCutOff, nil)
	}
	var text strings.Builder
	for _, c := range v.Content {
		if c.Type == "tool_use" && c.Name == anthropicPlanTool && len(c.Input) > 0 {
			resp.Content = string(c.Input)
			return resp, nil
		}
		if c.Type == "text" {
			text.WriteString(c.Text)
		}
	}
	if text.Len() == 0 {
		return resp, p.http.badAnswer("answer holds no plan", nil)
	}
	resp.Content = text.String()
	return resp, nil
}
