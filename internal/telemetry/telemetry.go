// Package telemetry exports agentd's traces over OTLP/HTTP, following the
// OpenTelemetry GenAI semantic conventions. It is off by default; metrics
// stay on Prometheus.
package telemetry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/agentd/agentd/internal/buildinfo"
	"github.com/agentd/agentd/internal/config"
)

// Options are what New needs besides the configuration.
type Options struct {
	Config config.TelemetryConfig
	Log    *slog.Logger
	// Ledger, when set, records every export request to a collector that
	// is not on loopback, before it is sent: telemetry is egress like any
	// other (the daemon's is the egress ledger).
	Ledger Ledger
	// Getenv reads the header values named by headers_env; nil is os.Getenv.
	Getenv func(string) string
	// BatchTimeout is how long spans wait to be batched; zero is the SDK's
	// default (5s). Tests shorten it.
	BatchTimeout time.Duration
}

// Ledger records export requests that leave the machine; the store's
// egress ledger implements it (purpose "telemetry").
type Ledger interface {
	// Sent records a request before it goes; id is handed to Finished.
	Sent(ctx context.Context, host string, bytesOut int64, sha256 string) (id int64, err error)
	// Finished records how it ended: "ok" or "failed".
	Finished(ctx context.Context, id, bytesIn int64, status string) error
}

// Tracing is the daemon's tracer: a real one exporting over OTLP when
// telemetry.traces is on, a no-op one otherwise.
type Tracing struct {
	tp      *sdktrace.TracerProvider // nil when off
	tracer  trace.Tracer
	content bool
	log     *slog.Logger

	bytes    prometheus.Counter
	requests prometheus.Counter
	sent     atomic.Int64
	batches  atomic.Int64
}

// New builds the tracer. With traces off it returns a no-op tracer and
// makes no connection.
func New(opts Options) (*Tracing, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tracing{
		log:     log.With("component", "telemetry"),
		content: opts.Config.IncludeContent,
		tracer:  noop.NewTracerProvider().Tracer(scope),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "agentd_telemetry_export_bytes_total",
			Help: "Bytes of OTLP trace export requests sent to the collector."}),
		requests: prometheus.NewCounter(prometheus.CounterOpts{Name: "agentd_telemetry_export_requests_total",
			Help: "OTLP trace export requests sent to the collector (one per batch)."}),
	}
	cfg := opts.Config
	if !cfg.Traces {
		return t, nil
	}
	u, err := url.Parse(cfg.OTLPEndpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("telemetry.otlp_endpoint %q: not a URL like \"http://127.0.0.1:4318\"", cfg.OTLPEndpoint)
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	headers := map[string]string{}
	for name, env := range cfg.HeadersEnv {
		v := getenv(env)
		if v == "" {
			return nil, fmt.Errorf("telemetry.headers_env: %s is empty or unset — export it (it holds the %s header for the collector)", env, name)
		}
		headers[name] = v
	}
	ct := &countingTransport{next: http.DefaultTransport, t: t}
	if host := u.Hostname(); opts.Ledger != nil && !config.IsLoopback(host) {
		ct.ledger, ct.host = opts.Ledger, host
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: ct}
	eopts := []otlptracehttp.Option{
		otlptracehttp.WithEndpointURL(strings.TrimSuffix(cfg.OTLPEndpoint, "/") + "/v1/traces"),
		otlptracehttp.WithHTTPClient(hc),
		otlptracehttp.WithHeaders(headers),
	}
	if u.Scheme == "http" {
		eopts = append(eopts, otlptracehttp.WithInsecure())
	}
	exp, err := otlptracehttp.New(context.Background(), eopts...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter for %s: %w", cfg.OTLPEndpoint, err)
	}
	var bopts []sdktrace.BatchSpanProcessorOption
	if opts.BatchTimeout > 0 {
		bopts = append(bopts, sdktrace.WithBatchTimeout(opts.BatchTimeout))
	}
	t.tp = sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, bopts...),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
		sdktrace.WithResource(resource.NewSchemaless(
			attribute.String("service.name", "agentd"),
			attribute.String("service.version", buildinfo.Version),
		)),
	)
	t.tracer = t.tp.Tracer(scope)
	// The endpoint is logged without its headers, which may hold secrets.
	t.log.Info("trace export on", "endpoint", cfg.OTLPEndpoint, "include_content", cfg.IncludeContent,
		"sample_ratio", cfg.SampleRatio)
	return t, nil
}

// scope is the instrumentation scope of every span agentd makes.
const scope = "github.com/agentd/agentd"

// Tracer is the tracer to hand to the executor and the model client.
func (t *Tracing) Tracer() trace.Tracer { return t.tracer }

// IncludeContent reports whether prompt and output text may go on spans
// (telemetry.include_content): the one place that decides it.
func (t *Tracing) IncludeContent() bool { return t.content }

// Enabled reports whether spans are exported.
func (t *Tracing) Enabled() bool { return t.tp != nil }

// Collectors are the export counters, for the Prometheus registry.
func (t *Tracing) Collectors() []prometheus.Collector {
	return []prometheus.Collector{t.bytes, t.requests}
}

// Run waits for ctx to end, then flushes what is batched and stops the
// exporter. It is started before the executor so that it stops after it:
// the spans of runs that end while the daemon stops are still sent.
func (t *Tracing) Run(ctx context.Context) error {
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return t.Shutdown(sctx)
}

// Shutdown flushes batched spans and stops the exporter; a no-op when
// traces are off. It logs what was sent in all.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.tp == nil {
		return nil
	}
	err := t.tp.Shutdown(ctx)
	t.log.Info("trace export stopped", "requests", t.batches.Load(), "bytes", t.sent.Load())
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("telemetry: flush spans: %w", err)
	}
	return nil
}

// ForceFlush sends what is batched now (tests and benchmarks).
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if t.tp == nil {
		return nil
	}
	return t.tp.ForceFlush(ctx)
}

// Sent is the bytes and requests exported so far.
func (t *Tracing) Sent() (bytes, requests int64) { return t.sent.Load(), t.batches.Load() }

// countingTransport counts the bytes of every export request body, and
// records each request in the egress ledger when the collector is off the
// machine.
type countingTransport struct {
	next   http.RoundTripper
	t      *Tracing
	ledger Ledger // nil: the collector is on loopback, or no ledger
	host   string
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	n := req.ContentLength
	if n < 0 {
		n = 0 // the exporter sets the length of every (uncompressed) body it sends
	}
	c.t.sent.Add(n)
	c.t.batches.Add(1)
	c.t.bytes.Add(float64(n))
	c.t.requests.Inc()
	if c.ledger == nil {
		return c.next.RoundTrip(req)
	}
	ctx := context.WithoutCancel(req.Context())
	id, err := c.ledger.Sent(ctx, c.host, n, bodyHash(req))
	if err != nil {
		// What is not in the ledger does not leave.
		return nil, fmt.Errorf("record telemetry egress to %s: %w", c.host, err)
	}
	resp, err := c.next.RoundTrip(req)
	status, in := "failed", int64(0)
	if err == nil {
		in = max(resp.ContentLength, 0)
		if resp.StatusCode < 300 {
			status = "ok"
		}
	}
	if ferr := c.ledger.Finished(ctx, id, in, status); ferr != nil {
		c.t.log.Error("finish telemetry egress record", "id", id, "err", ferr)
	}
	return resp, err
}

// bodyHash is the SHA-256 of the request body, read from a copy
// (GetBody), as the ledger keeps for every request that leaves.
func bodyHash(req *http.Request) string {
	h := sha256.New()
	if req.GetBody != nil {
		if b, err := req.GetBody(); err == nil {
			_, _ = io.Copy(h, b)
			_ = b.Close()
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
