package llm

import (
	"context"
	"fmt"
	"slices"
	"strings"

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
	if ep.external() {
		return zero, &Error{Class: ClassOther, Op: op, Endpoint: ep.name, URL: ep.url,
			Message: fmt.Sprintf("endpoint %s is an OpenAI-compatible server: it has no %s — only Ollama endpoints report what they hold", ep.name, op)}
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

// CheckServedModels asks every OpenAI-compatible endpoint for its /models
// and returns one problem per configured model it does not list. An
// endpoint that does not answer is left out: whether it serves its models
// shows on the first call. The problems are also logged, since a server
// may load a model on demand and list it only then.
func (c *Client) CheckServedModels(ctx context.Context) []string {
	var problems []string
	for _, ep := range c.endpoints {
		if !ep.external() {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, c.probeTimeout)
		ids, err := ep.proto.(*openaiBackend).models(pctx)
		cancel()
		if err != nil {
			c.log.Info("could not list the models of an OpenAI-compatible endpoint", "endpoint", ep.name, "url", ep.url, "error", err)
			continue
		}
		for _, m := range ep.serves {
			if !slices.ContainsFunc(ids, func(id string) bool { return id == m || sameModel(id, m) }) {
				p := fmt.Sprintf("endpoint %s does not list model %s in %s/models (it lists %s) — load it there or correct that endpoint's models", ep.name, m, ep.url, strings.Join(ids, ", "))
				c.log.Warn("configured model not served", "endpoint", ep.name, "model", m, "listed", ids)
				problems = append(problems, p)
			}
		}
	}
	return problems
}
