// Package llm is agentd's client for local models served by Ollama or by
// OpenAI-compatible servers (llama.cpp's server, vLLM, LM Studio, LocalAI).
// It sends Ollama's calls through the official github.com/ollama/ollama/api
// client and speaks /v1/chat/completions to the others, picks
// the endpoint that already holds the model, retries what is worth retrying,
// turns failures into classified errors that tell the operator what to do,
// and records tokens and timings of every call.
package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ollama/ollama/api"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/agentd/agentd/internal/config"
)

// KeepAlivePolicy decides how long Ollama keeps a model loaded after a call.
// The residency policy implements it; a negative duration means forever and
// zero means unload right after the call.
type KeepAlivePolicy interface {
	KeepAliveFor(model string) time.Duration
}

// Client talks to one or more Ollama endpoints. It is safe for concurrent use.
type Client struct {
	log       *slog.Logger
	endpoints []*endpoint
	models    config.ModelsConfig

	maxRetries     int
	requestTimeout time.Duration
	probeTimeout   time.Duration
	psTTL          time.Duration
	tagsTTL        time.Duration

	recorder  Recorder
	keepAlive KeepAlivePolicy
	backoff   func(retry int) time.Duration
	now       func() time.Time

	capsMu sync.Mutex
	caps   map[string][]string // model -> capabilities from /api/show

	tokens *Tokens // bytes per token, measured per model on every chat call

	tracer       trace.Tracer // a "chat" span per call; no-op unless WithTracer
	traceContent bool
}

// Option adjusts a Client at construction.
type Option func(*Client)

// WithTracer makes a span for every chat call, under the span in the
// call's context (the run's, the planning's). content puts the messages and
// the reply on it (telemetry.include_content).
func WithTracer(t trace.Tracer, content bool) Option {
	return func(c *Client) { c.tracer, c.traceContent = t, content }
}

// WithRecorder sets who receives a Usage after every call.
func WithRecorder(r Recorder) Option { return func(c *Client) { c.recorder = r } }

// WithKeepAlive sets the residency policy consulted when a Request leaves
// KeepAlive unset. Without one, models.keep_alive from config is sent.
func WithKeepAlive(p KeepAlivePolicy) Option { return func(c *Client) { c.keepAlive = p } }

// WithBackoff replaces the wait before retry number retry (1-based); tests
// use it to avoid sleeping.
func WithBackoff(f func(retry int) time.Duration) Option { return func(c *Client) { c.backoff = f } }

// WithClock replaces time.Now, for cache and health expiry in tests.
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// WithHTTPClient replaces the HTTP client built from the connect timeout.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) {
		next := h.Transport
		if next == nil {
			next = http.DefaultTransport
		}
		wrapped := *h
		wrapped.Transport = errorBodies{next}
		for _, ep := range c.endpoints {
			ep.connect(&wrapped)
		}
	}
}

// WithTokens sets the estimator that chat calls calibrate, to share one
// between clients; without it each client has its own.
func WithTokens(t *Tokens) Option { return func(c *Client) { c.tokens = t } }

// WithResidencyTTL sets how long /api/ps and /api/tags answers are trusted
// when choosing an endpoint.
func WithResidencyTTL(ps, tags time.Duration) Option {
	return func(c *Client) { c.psTTL, c.tagsTTL = ps, tags }
}

// New builds a client for the endpoints in cfg. It makes no network calls.
func New(cfg config.OllamaConfig, models config.ModelsConfig, log *slog.Logger, opts ...Option) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("llm: no ollama endpoints configured — add one under [ollama], like { name = \"local\", url = \"http://127.0.0.1:11434\" }")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	httpClient := newHTTPClient(cfg.ConnectTimeout.D())
	c := &Client{
		log:            log.With("component", "llm"),
		models:         models,
		maxRetries:     max(cfg.MaxRetries, 0),
		requestTimeout: cfg.RequestTimeout.D(),
		probeTimeout:   max(2*cfg.ConnectTimeout.D(), 2*time.Second),
		psTTL:          2 * time.Second,
		tagsTTL:        30 * time.Second,
		now:            time.Now,
		caps:           map[string][]string{},
		tokens:         NewTokens(),
		tracer:         noop.NewTracerProvider().Tracer(""),
	}
	base := cfg.RetryBackoff.D()
	c.backoff = func(retry int) time.Duration { return Backoff(base, retry, rand.Float64()) }
	seen := map[string]bool{}
	for i, ec := range cfg.Endpoints {
		u, err := url.Parse(ec.URL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("llm: ollama.endpoints[%d].url %q is not an http(s) URL like \"http://127.0.0.1:11434\"", i, ec.URL)
		}
		name := ec.Name
		if name == "" {
			name = u.Host
		}
		if seen[name] {
			return nil, fmt.Errorf("llm: ollama.endpoints[%d].name %q is used twice", i, name)
		}
		seen[name] = true
		ep := &endpoint{name: name, url: ec.URL, base: u, slots: max(ec.ParallelSlots, 1),
			openai: ec.IsOpenAI(), serves: slices.Clone(ec.Models)}
		if ec.APIKeyEnv != "" {
			if ep.apiKey = os.Getenv(ec.APIKeyEnv); ep.apiKey == "" {
				return nil, fmt.Errorf("llm: ollama.endpoints[%d].api_key_env names %s, which is not set in agentd's environment — set it, or remove api_key_env if %s needs no key", i, ec.APIKeyEnv, name)
			}
		}
		ep.connect(httpClient)
		c.endpoints = append(c.endpoints, ep)
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// connect sets the endpoint's protocol over h.
func (ep *endpoint) connect(h *http.Client) {
	if ep.openai {
		ep.proto = &openaiBackend{base: ep.base, httpc: h, apiKey: ep.apiKey}
		return
	}
	ep.api = api.NewClient(ep.base, h)
	ep.proto = &ollamaBackend{api: ep.api, httpc: h, base: ep.base}
}

// newHTTPClient bounds only the dial: a generation may stream for minutes,
// and per-call deadlines come from the request timeout instead.
func newHTTPClient(connect time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if connect > 0 {
		t.DialContext = (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext
	}
	return &http.Client{Transport: errorBodies{t}}
}

// errorBodies gives an error answer with an empty body (a 503 from a proxy,
// say) a JSON error body. api.Client reads statuses only from the lines of
// a body, so without one an error would look like a stream that ended
// before its final chunk, which agentd reads as the server ending a
// generation itself.
type errorBodies struct{ next http.RoundTripper }

func (t errorBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode < http.StatusBadRequest {
		return resp, err
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if rerr == nil && len(bytes.TrimSpace(body)) == 0 {
		body, _ = json.Marshal(map[string]string{"error": resp.Status})
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// Backoff is the wait before retry number retry (1-based): base doubled per
// retry, capped at 30s, with the upper half jittered by j in [0, 1) so that
// many callers retrying together spread out.
func Backoff(base time.Duration, retry int, j float64) time.Duration {
	if base <= 0 || retry < 1 {
		return 0
	}
	d := base
	for i := 1; i < retry && d < 30*time.Second; i++ {
		d *= 2
	}
	d = min(d, 30*time.Second)
	return d/2 + time.Duration(j*float64(d/2))
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
