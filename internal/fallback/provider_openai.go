package fallback

import (
	"context"
	"encoding/json"
)

// OpenAI speaks the OpenAI chat completions API, which OpenAI, vLLM,
// LiteLLM and a remote Ollama's /v1 all serve. The plan is constrained with
// response_format json_schema.
type OpenAI struct {
	http httpPoster
	key  secret
}

var _ Provider = (*OpenAI)(nil)

// Name implements Provider.
func (p *OpenAI) Name() string { return "openai" }

// Destination implements Provider.
func (p *OpenAI) Destination() string { return p.http.destination() }

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// systemAndUser is the two-turn conversation the chat APIs take.
func systemAndUser(r Request) []chatMessage {
	return []chatMessage{{Role: "system", Content: r.SystemPrompt}, {Role: "user", Content: r.UserMessage}}
}

type openAIRequest struct {
	Model          string               `json:"model"`
	Messages       []chatMessage        `json:"messages"`
	MaxTokens      int                  `json:"max_tokens"`
	ResponseFormat openAIResponseFormat `json:"response_format"`
	Stream         bool                 `json:"stream"`
}

type openAIResponseFormat struct {
	Type       string           `json:"type"`
	JSONSchema openAIJSONSchema `json:"json_schema"`
}

type openAIJSONSchema struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
}

// Encode implements Provider.
func (p *OpenAI) Encode(r Request) ([]byte, error) {
	if err := r.checkLimit(); err != nil {
		return nil, err
	}
	return marshal(openAIRequest{
		Model:     r.Model,
		Messages:  systemAndUser(r),
		MaxTokens: r.MaxTokens,
		ResponseFormat: openAIResponseFormat{Type: "json_schema",
			JSONSchema: openAIJSONSchema{Name: "plan", Schema: schemaOrObject(r.Schema)}},
	})
}

type openAIResponse struct {
	Choices []struct {
		Message struct {
			Content string `json:"content"`
			Refusal string `json:"refusal"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
}

// Send implements Provider.
func (p *OpenAI) Send(ctx context.Context, body []byte) (Response, error) {
	data, resp, err := p.http.post(ctx, body, bearer(p.key))
	if err != nil {
		return resp, err
	}
	var v openAIResponse
	if err := json.Unmarshal(data, &v); err != nil || len(v.Choices) == 0 {
		return resp, p.http.badAnswer("answer is not a chat completion", err)
	}
	resp.Usage = Usage{InputTokens: v.Usage.PromptTokens, OutputTokens: v.Usage.CompletionTokens}
	c := v.Choices[0]
	switch {
	case c.Message.Refusal != "":
		return resp, p.http.badAnswer("the model refused: "+c.Message.Refusal, nil)
	case c.FinishReason == "length":
		return resp, p.http.badAnswer(msgCutOff, nil)
	}
	resp.Content = c.Message.Content
	return resp, nil
}

// schemaOrObject stands in an open object schema when none was given, so
// the request is still well formed.
func schemaOrObject(s json.RawMessage) json.RawMessage {
	if len(s) == 0 {
		return json.RawMessage(`{"type":"object"}`)
	}
	return s
}
