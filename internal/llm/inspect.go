package llm

import (
	"context"

	"github.com/ollama/ollama/api"
)

// List returns the models pulled on the named endpoint (/api/tags).
func (c *Client) List(ctx context.Context, endpoint string) (*api.ListResponse, error) {
	ep, err := c.endpointByName(endpoint)
	if err != nil {
		return nil, err
	}
	r, err := ep.api.List(ctx)
	if err != nil {
		return nil, c.endpointError(ctx, "list", ep, err)
	}
	c.markUp(ep)
	return r, nil
}

// PS returns the models the named endpoint holds loaded (/api/ps), for the
// residency policy. It always asks; endpoint selection has its own cache.
func (c *Client) PS(ctx context.Context, endpoint string) (*api.ProcessResponse, error) {
	ep, err := c.endpointByName(endpoint)
	if err != nil {
		return nil, err
	}
	r, err := ep.api.ListRunning(ctx)
	if err != nil {
		return nil, c.endpointError(ctx, "ps", ep, err)
	}
	c.markUp(ep)
	return r, nil
}

// Version returns the Ollama version of the named endpoint.
func (c *Client) Version(ctx context.Context, endpoint string) (string, error) {
	ep, err := c.endpointByName(endpoint)
	if err != nil {
		return "", err
	}
	v, err := ep.api.Version(ctx)
	if err != nil {
		return "", c.endpointError(ctx, "version", ep, err)
	}
	c.markUp(ep)
	return v, nil
}

// endpointError classifies a failed per-endpoint call and keeps the
// endpoint's health current.
func (c *Client) endpointError(ctx context.Context, op string, ep *endpoint, err error) error {
	e := classify(ctx, err, failure{op: op, ep: ep})
	e.Attempts = 1
	if e.Class == ClassUnreachable {
		c.markDown(ep, err)
	}
	return e
}
