package llm

import (
	"context"
	"slices"

	"github.com/ollama/ollama/api"
)

// Show returns what Ollama knows about model (/api/show) from an endpoint
// that has it, and caches its capabilities.
func (c *Client) Show(ctx context.Context, model string) (*api.ShowResponse, error) {
	var resp *api.ShowResponse
	_, err := c.send(ctx, "show", model, false, nil, func(actx context.Context, ep *endpoint) (bool, error) {
		r, err := ep.proto.show(actx, model)
		resp = r
		return false, err
	})
	if err != nil {
		return nil, err
	}
	caps := make([]string, len(resp.Capabilities))
	for i, cp := range resp.Capabilities {
		caps[i] = string(cp)
	}
	c.capsMu.Lock()
	c.caps[ModelKey(model)] = caps
	c.capsMu.Unlock()
	return resp, nil
}

// Capabilities returns the model's capabilities ("completion", "tools",
// "vision", "embedding", "thinking", ...), asking Ollama only the first
// time for each model.
func (c *Client) Capabilities(ctx context.Context, model string) ([]string, error) {
	c.capsMu.Lock()
	caps, ok := c.caps[ModelKey(model)]
	c.capsMu.Unlock()
	if ok {
		return slices.Clone(caps), nil
	}
	if _, err := c.Show(ctx, model); err != nil {
		return nil, err
	}
	c.capsMu.Lock()
	defer c.capsMu.Unlock()
	return slices.Clone(c.caps[ModelKey(model)]), nil
}

// SupportsTools reports whether model accepts tools in a chat call. When it
// does not, callers select tools through a schema-constrained format.
func (c *Client) SupportsTools(ctx context.Context, model string) (bool, error) {
	caps, err := c.Capabilities(ctx, model)
	if err != nil {
		return false, err
	}
	return slices.Contains(caps, "tools"), nil
}

// noTools records that a chat call was refused for lack of tool support, so
// the next SupportsTools answers false without asking.
func (c *Client) noTools(model string) {
	key := ModelKey(model)
	c.capsMu.Lock()
	defer c.capsMu.Unlock()
	if caps, ok := c.caps[key]; ok {
		c.caps[key] = slices.DeleteFunc(slices.Clone(caps), func(s string) bool { return s == "tools" })
		return
	}
	c.caps[key] = []string{"completion"}
}
