package llm

import (
	"context"
	"fmt"

	"github.com/ollama/ollama/api"
)

// Embed returns one embedding per input, in order, and the call's Usage
// (which the Recorder also receives).
func (c *Client) Embed(ctx context.Context, model string, inputs []string) ([][]float32, Usage, error) {
	u := Usage{Op: "embed", Model: model, Where: WhereLocal, Purpose: "embed", Started: c.now()}
	if model == "" {
		err := &Error{Class: ClassOther, Op: "embed", Message: "embed request names no model — set models.embedding in config"}
		return nil, u, err
	}
	if len(inputs) == 0 {
		return [][]float32{}, u, nil
	}
	req := &api.EmbedRequest{Model: model, Input: inputs, KeepAlive: c.keepAliveFor(model, 0)}
	var resp *api.EmbedResponse
	ident := &Usage{Op: "embed", Model: model, Where: WhereLocal, Purpose: "embed"}
	s, err := c.send(ctx, "embed", model, false, ident, func(actx context.Context, ep *endpoint) (bool, error) {
		r, err := ep.proto.embed(actx, req)
		resp = r
		return false, err
	})
	u.Attempt, u.Attempts = s.attempts, s.attempts
	if !s.started.IsZero() {
		u.Started = s.started
	}
	u.Wall = c.now().Sub(u.Started)
	if s.ep != nil {
		u.Endpoint, u.URL = s.ep.name, s.ep.url
	}
	if err == nil && len(resp.Embeddings) != len(inputs) {
		err = &Error{Class: ClassOther, Op: "embed", Model: model, Endpoint: u.Endpoint, URL: u.URL, Attempts: s.attempts,
			Message: fmt.Sprintf("ollama at %s returned %d embeddings for %d inputs from %s — is it an embedding model?", u.URL, len(resp.Embeddings), len(inputs), model)}
	}
	if resp != nil {
		u.PromptTokens = resp.PromptEvalCount
		u.LoadDuration = resp.LoadDuration
		u.TotalDuration = resp.TotalDuration
	}
	c.record(ctx, u, err)
	if err != nil {
		return nil, u, err
	}
	return resp.Embeddings, u, nil
}
