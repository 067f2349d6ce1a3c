package fallback

import (
	"context"
	"encoding/json"

	"github.com/agentd/agentd/internal/llm"
)

// Ollama speaks a remote Ollama server's native /api/chat, with the plan
// schema as `format`. (A remote Ollama's OpenAI-compatible /v1 is served by
// the OpenAI provider.)
type Ollama struct {
	http httpPoster
	key  secret // optional: for servers behind an authenticating proxy
}

var _ Provider = (*Ollama)(nil)

// Name implements Provider.
func (p *Ollama) Name() string { return "ollama" }

// Destination implements Provider.
func (p *Ollama) Destination() string { return p.http.destination() }

type ollamaRequest struct {
	Model    string          `json:"model"`
	Messages []chatMessage   `json:"messages"`
	Stream   bool            `json:"stream"`
	Format   json.RawMessage `json:"format"`
	Options  ollamaOptions   `json:"options"`
}

type ollamaOptions struct {
	NumPredict int `json:"num_predict"`
}

// Encode implements Provider.
func (p *Ollama) Encode(r Request) ([]byte, error) {
	if err := r.checkLimit(); err != nil {
		return nil, err
	}
	return marshal(ollamaRequest{
		Model:    r.Model,
		Messages: systemAndUser(r),
		// A remote Ollama compiles the schema into the same llama.cpp
		// grammar as the local one, with the same limits.
		Format:  llm.GrammarSafe(schemaOrObject(r.Schema)),
		Options: ollamaOptions{NumPredict: r.MaxTokens},
	})
}

type ollamaResponse struct {
	Message struct {
		Content string `json:"content"`
	} `json:"message"`
	Done            bool   `json:"done"`
	DoneReason      string `json:"done_reason"`
	PromptEvalCount int    `json:"prompt_eval_count"`
	EvalCount       int    `json:"eval_count"`
}

// Send implements Provider.
func (p *Ollama) Send(ctx context.Context, body []byte) (Response, error) {
	data, resp, err := p.http.post(ctx, body, bearer(p.key))
	if err != nil {
		return resp, err
	}
	var v ollamaResponse
	if err := json.Unmarshal(data, &v); err != nil {
		return resp, p.http.badAnswer("answer is not a chat response", err)
	}
	resp.Usage = Usage{InputTokens: v.PromptEvalCount, OutputTokens: v.EvalCount}
	if v.DoneReason == "length" {
		return resp, p.http.badAnswer(msgCutOff, nil)
	}
	resp.Content = v.Message.Content
	return resp, nil
}
