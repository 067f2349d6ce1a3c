package llm

import (
	"context"

	"github.com/ollama/ollama/api"
)

// List returns the models pulled on the named endpoint (/api/tags).
func (c *Client) List(ctx context.Context, endpoint string) (*api.ListResponse, error) {
	return callEndpoint(ctx, c, endpoint, "list", (*api.Client).List)
}

// PS returns the models the named endpoint holds loaded (/api/ps), for the
// residency policy. It always asks; endpoint selection has its own cache.
func (c *Client) PS(ctx context.Context, endpoint string) (*api.ProcessResponse, error) {
	return callEndpoint(ctx, c, endpoint, "ps", (*api.Client).ListRunning)
}

// Version returns the Ollama version of the named endpoint.
func (c *Client) Version(ctx context.Context, endpoint string) (string, error) {
	return callEndpoint(ctx, c, endpoint, "version", (*api.Client).Version)
}

// callEndpoint makes one call to the named endpoint, without retries,
// classifies a failure and keeps the endpoint's health current.
func callEndpoint[T any](ctx context.Context, c *Client, endpoint, op string, call func(*api.Client, context.Context) (T, error)) (T, error) {
	var zero T
	ep, err := c.endpointByName(endpoint)
	if err != nil {
		return zero, err
	}
	r, err := call(ep.api, ctx)
	if err != nil {
		e := classify(ctx, err, failure{op: op, ep: ep})
		e.Attempts = 1
		if e.Class == ClassUnreachable {
			c.markDown(ep, err)
		}
		return zero, e
	}
	c.markUp(ep)
	return r, nil
}
