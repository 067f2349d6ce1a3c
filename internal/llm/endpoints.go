package llm

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ollama/ollama/api"
)

// Health backoff for an endpoint that refused connections: skipped for
// downMin, doubling with each consecutive failure up to downMax.
const (
	downMin = 2 * time.Second
	downMax = time.Minute
)

// endpoint is one model server with its health and what it was last seen
// holding.
type endpoint struct {
	name  string
	url   string
	base  *url.URL
	slots int
	proto backend
	// api is Ollama's client for what only Ollama answers (/api/ps,
	// /api/tags, /api/version); nil on an OpenAI-compatible endpoint.
	// proto and api are set by connect.
	api *api.Client
	// openai marks an OpenAI-compatible endpoint; serves lists its models,
	// from config: such a server has no /api/tags to ask.
	openai bool
	serves []string
	apiKey string // its bearer token, from api_key_env; never logged

	inFlight atomic.Int64

	mu        sync.Mutex
	failures  int
	downUntil time.Time
	lastErr   error
	ps        snapshot[[]api.ProcessModelResponse]
	tags      snapshot[[]api.ListModelResponse]
}

type snapshot[T any] struct {
	val T
	at  time.Time
	ok  bool
}

func (s snapshot[T]) fresh(now time.Time, ttl time.Duration) bool {
	return s.ok && now.Sub(s.at) < ttl
}

// EndpointStatus is what the dashboard and logs show about an endpoint.
type EndpointStatus struct {
	Name      string
	URL       string
	Healthy   bool
	InFlight  int
	DownUntil time.Time // zero when healthy
	LastError string
	// External marks an OpenAI-compatible server: agentd knows the models
	// it serves from config, not what it holds in memory.
	External bool
}

// Endpoints reports each configured endpoint's health, in config order.
func (c *Client) Endpoints() []EndpointStatus {
	now := c.now()
	out := make([]EndpointStatus, 0, len(c.endpoints))
	for _, ep := range c.endpoints {
		ep.mu.Lock()
		s := EndpointStatus{Name: ep.name, URL: ep.url, Healthy: !ep.downLocked(now), InFlight: int(ep.inFlight.Load()), External: ep.external()}
		if !s.Healthy {
			s.DownUntil = ep.downUntil
		}
		if ep.lastErr != nil {
			s.LastError = ep.lastErr.Error()
		}
		ep.mu.Unlock()
		out = append(out, s)
	}
	return out
}

// external reports whether the endpoint is an OpenAI-compatible server:
// agentd routes calls to it by its configured models and knows nothing of
// what it holds in memory.
func (ep *endpoint) external() bool { return ep.openai }

// servesModel reports whether an OpenAI-compatible endpoint was configured
// with model.
func (ep *endpoint) servesModel(model string) bool {
	return slices.ContainsFunc(ep.serves, func(m string) bool { return sameModel(m, model) })
}

// chat sends one chat call in the endpoint's protocol.
func (ep *endpoint) chat(ctx context.Context, req *api.ChatRequest, fn api.ChatResponseFunc) error {
	return ep.proto.chat(ctx, req, fn)
}

func (ep *endpoint) downLocked(now time.Time) bool { return now.Before(ep.downUntil) }

func (c *Client) markDown(ep *endpoint, err error) {
	now := c.now()
	ep.mu.Lock()
	ep.failures++
	d := downMin << min(ep.failures-1, 5)
	ep.downUntil = now.Add(min(d, downMax))
	ep.lastErr = err
	ep.ps, ep.tags = snapshot[[]api.ProcessModelResponse]{}, snapshot[[]api.ListModelResponse]{}
	ep.mu.Unlock()
	c.log.Warn("ollama endpoint unreachable, skipping it for now", "endpoint", ep.name, "url", ep.url, "for", min(d, downMax), "error", err)
}

func (c *Client) markUp(ep *endpoint) {
	ep.mu.Lock()
	was := ep.failures > 0
	ep.failures, ep.downUntil, ep.lastErr = 0, time.Time{}, nil
	ep.mu.Unlock()
	if was {
		c.log.Info("ollama endpoint reachable again", "endpoint", ep.name, "url", ep.url)
	}
}

// forget drops what the endpoint was seen holding, after it denied having a
// model the snapshot said it had.
func (ep *endpoint) forget() {
	ep.mu.Lock()
	ep.ps, ep.tags = snapshot[[]api.ProcessModelResponse]{}, snapshot[[]api.ListModelResponse]{}
	ep.mu.Unlock()
}

// running returns /api/ps, cached for psTTL.
func (c *Client) running(ctx context.Context, ep *endpoint) ([]api.ProcessModelResponse, error) {
	ep.mu.Lock()
	s := ep.ps
	ep.mu.Unlock()
	if s.fresh(c.now(), c.psTTL) {
		return s.val, nil
	}
	pctx, cancel := context.WithTimeout(ctx, c.probeTimeout)
	defer cancel()
	r, err := ep.api.ListRunning(pctx)
	if err != nil {
		return nil, err
	}
	ep.mu.Lock()
	ep.ps = snapshot[[]api.ProcessModelResponse]{val: r.Models, at: c.now(), ok: true}
	ep.mu.Unlock()
	return r.Models, nil
}

// pulled returns /api/tags, cached for tagsTTL.
func (c *Client) pulled(ctx context.Context, ep *endpoint) ([]api.ListModelResponse, error) {
	ep.mu.Lock()
	s := ep.tags
	ep.mu.Unlock()
	if s.fresh(c.now(), c.tagsTTL) {
		return s.val, nil
	}
	pctx, cancel := context.WithTimeout(ctx, c.probeTimeout)
	defer cancel()
	r, err := ep.api.List(pctx)
	if err != nil {
		return nil, err
	}
	ep.mu.Lock()
	ep.tags = snapshot[[]api.ListModelResponse]{val: r.Models, at: c.now(), ok: true}
	ep.mu.Unlock()
	return r.Models, nil
}

// candidate is an endpoint that can serve the model, with what ranks it.
type candidate struct {
	ep      *endpoint
	holds   bool    // the model is loaded now
	load    float64 // in-flight calls per parallel slot
	vramUse int64   // bytes held by loaded models: less means more room
	order   int
}

// pick chooses the endpoint for a call to model: one that holds it loaded,
// else one that has it pulled; among those the least loaded. Endpoints in
// skip were already tried for this call. With a single endpoint nothing is
// probed: the call itself reports what is wrong.
func (c *Client) pick(ctx context.Context, op, model string, skip map[*endpoint]bool) (*endpoint, error) {
	if len(c.endpoints) == 1 && !skip[c.endpoints[0]] {
		return c.endpoints[0], nil
	}
	now := c.now()
	var healthy []*endpoint
	for _, ep := range c.endpoints {
		if skip[ep] {
			continue
		}
		ep.mu.Lock()
		down := ep.downLocked(now)
		ep.mu.Unlock()
		if !down {
			healthy = append(healthy, ep)
		}
	}
	if len(healthy) == 0 {
		// Everything is marked down: probe them all again rather than fail
		// without trying.
		for _, ep := range c.endpoints {
			if !skip[ep] {
				healthy = append(healthy, ep)
			}
		}
	}
	if len(healthy) == 0 {
		return nil, &Error{Class: ClassOther, Op: op, Model: model, Message: fmt.Sprintf("%s %s: every endpoint was tried", op, model)}
	}

	var cands []candidate
	var unreachable, checked []string
	var lastUnreachable error
	for i, ep := range healthy {
		if ep.external() {
			// No /api/ps or /api/tags: the configured list decides, and a
			// model it serves counts as loaded.
			checked = append(checked, ep.name)
			if ep.servesModel(model) {
				cands = append(cands, candidate{ep: ep, order: i, holds: true, load: float64(ep.inFlight.Load()) / float64(ep.slots)})
			}
			continue
		}
		ps, err := c.running(ctx, ep)
		if err != nil && ctx.Err() != nil {
			return nil, classify(ctx, err, failure{op: op, model: model, ep: ep})
		}
		if err != nil && isUnreachable(err) {
			c.markDown(ep, err)
			unreachable = append(unreachable, ep.url)
			lastUnreachable = err
			continue
		}
		cand := candidate{ep: ep, order: i, load: float64(ep.inFlight.Load()) / float64(ep.slots)}
		for _, m := range ps {
			cand.vramUse += m.SizeVRAM
			if sameModel(m.Name, model) || sameModel(m.Model, model) {
				cand.holds = true
			}
		}
		if !cand.holds {
			tags, err := c.pulled(ctx, ep)
			if err != nil {
				if isUnreachable(err) {
					c.markDown(ep, err)
					unreachable = append(unreachable, ep.url)
					lastUnreachable = err
				}
				continue
			}
			checked = append(checked, ep.name)
			if !slices.ContainsFunc(tags, func(m api.ListModelResponse) bool {
				return sameModel(m.Name, model) || sameModel(m.Model, model)
			}) {
				continue
			}
		}
		c.markUp(ep)
		cands = append(cands, cand)
	}
	if len(cands) == 0 {
		if len(checked) == 0 && len(unreachable) > 0 {
			return nil, &Error{Class: ClassUnreachable, Op: op, Model: model, URL: strings.Join(unreachable, ", "),
				Message: fmt.Sprintf("ollama not reachable at %s — is `ollama serve` running?", strings.Join(unreachable, ", ")),
				Err:     lastUnreachable}
		}
		if len(checked) == 0 {
			return nil, &Error{Class: ClassOther, Op: op, Model: model,
				Message: fmt.Sprintf("could not list the models of any ollama endpoint for %s %s — see the ollama server logs", op, model)}
		}
		return nil, &Error{Class: ClassModelNotFound, Op: op, Model: model, Endpoint: strings.Join(checked, ", "),
			Message: fmt.Sprintf("model %s is not pulled on endpoint %s — run `ollama pull %s`", model, strings.Join(checked, ", "), model),
			Err:     errors.New("not in /api/tags")}
	}
	slices.SortStableFunc(cands, func(a, b candidate) int {
		switch {
		case a.holds != b.holds:
			if a.holds {
				return -1
			}
			return 1
		case a.load != b.load:
			if a.load < b.load {
				return -1
			}
			return 1
		case a.vramUse != b.vramUse:
			if a.vramUse < b.vramUse {
				return -1
			}
			return 1
		}
		return a.order - b.order
	})
	return cands[0].ep, nil
}

// sameModel compares model names the way Ollama resolves them.
func sameModel(a, b string) bool {
	return a != "" && ModelKey(a) == ModelKey(b)
}

// ModelKey spells a model the way Ollama resolves it, so names from config
// match those in /api/ps and /api/tags: case does not matter, the default
// registry prefix is dropped, and a name without a tag means ":latest"
// ("nomic-embed-text" and "nomic-embed-text:latest" are one model). An
// empty name stays empty.
func ModelKey(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	n = strings.TrimPrefix(n, "registry.ollama.ai/library/")
	if n == "" {
		return ""
	}
	if !strings.Contains(n[strings.LastIndex(n, "/")+1:], ":") {
		n += ":latest"
	}
	return n
}

// endpointByName finds an endpoint for the per-endpoint calls.
func (c *Client) endpointByName(name string) (*endpoint, error) {
	for _, ep := range c.endpoints {
		if ep.name == name {
			return ep, nil
		}
	}
	names := make([]string, len(c.endpoints))
	for i, ep := range c.endpoints {
		names[i] = ep.name
	}
	return nil, &Error{Class: ClassOther, Endpoint: name,
		Message: fmt.Sprintf("no ollama endpoint named %q — configured: %s", name, strings.Join(names, ", "))}
}
