package fallback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agentd/agentd/internal/config"
)

// The providers are written on plain net/http and encoding/json rather than
// vendor SDKs: three small request shapes do not need three SDKs, and owning
// the encoding means agentd knows exactly which bytes leave the machine — the
// gate hashes and ledgers the very body that is then sent.

// Request is one planning call, already redacted.
type Request struct {
	Model        string
	SystemPrompt string
	UserMessage  string
	// Schema is the JSON Schema the plan must satisfy.
	Schema    json.RawMessage
	MaxTokens int
}

// checkLimit refuses a request without an output limit: the reservation
// prices max_tokens as the worst case, so a request that does not carry it
// would let the provider decide what the worst case is.
func (r Request) checkLimit() error {
	if r.MaxTokens <= 0 {
		return fmt.Errorf("remote request without an output limit (max_tokens %d) — set fallback.max_tokens", r.MaxTokens)
	}
	return nil
}

// Usage is what a provider reports having billed.
type Usage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

// Timing is what the transport saw of one call, for the link monitor.
type Timing struct {
	// Connect is the TCP connect time when a new connection was made (a
	// round trip), zero when one was reused.
	Connect time.Duration
	// Download is the time from the first response byte to the last: the
	// part of the call that is transfer, not the remote model thinking.
	Download time.Duration
	// Total is the whole call.
	Total time.Duration
}

// Response is a provider's answer.
type Response struct {
	// Content is the plan JSON text as the model wrote it.
	Content string
	Usage   Usage
	BytesIn int64
	Timing  Timing
}

// Provider is one remote API. Encoding and sending are separate so that the
// gate can ledger and reserve the exact body before any byte of it leaves.
type Provider interface {
	// Name is the provider kind: openai, anthropic or ollama.
	Name() string
	// Destination is the host requests go to, as the ledger records it.
	Destination() string
	// Encode renders req as the exact request body Send will post.
	Encode(req Request) ([]byte, error)
	// Send posts body and parses the answer.
	Send(ctx context.Context, body []byte) (Response, error)
}

// Plan encodes and sends req in one step, for callers that keep no ledger
// (connectivity checks). Planning for runs goes through Gate.PlanRemote.
func Plan(ctx context.Context, p Provider, req Request) (Response, error) {
	body, err := p.Encode(req)
	if err != nil {
		return Response{}, err
	}
	return p.Send(ctx, body)
}

// ErrorKind classifies remote failures for the failure ladder.
type ErrorKind string

// Error kinds.
const (
	// KindTransient: timeouts, resets, 429, 5xx — retrying later may work.
	KindTransient ErrorKind = "transient"
	// KindAuth: the key was refused.
	KindAuth ErrorKind = "auth"
	// KindRequest: the remote refused the request itself (4xx).
	KindRequest ErrorKind = "request"
	// KindResponse: the remote answered something agentd cannot use.
	KindResponse ErrorKind = "response"
)

// RemoteError is a failed provider call. Its message never holds the key.
type RemoteError struct {
	Provider string
	Kind     ErrorKind
	Status   int // HTTP status, 0 when no response came back
	Message  string
	// Sent is false when the request certainly did not reach the remote
	// (the connection was never made); the call then cost nothing.
	Sent bool
	Err  error
}

func (e *RemoteError) Error() string {
	s := "remote " + e.Provider + ": "
	if e.Status != 0 {
		s += fmt.Sprintf("HTTP %d: ", e.Status)
	}
	s += e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *RemoteError) Unwrap() error { return e.Err }

// Transient reports whether retrying later may succeed.
func (e *RemoteError) Transient() bool { return e.Kind == KindTransient }

// IsTransient reports whether err is a remote failure worth retrying.
func IsTransient(err error) bool {
	var re *RemoteError
	return errors.As(err, &re) && re.Transient()
}

// maxResponseBytes bounds what agentd reads back from a remote.
const maxResponseBytes = 8 << 20

// secret holds an API key behind a pointer, so that no formatting path
// can print it by accident: methods mask it, and %+v or %#v of a struct
// holding one prints only an address.
type secret struct{ v *string }

func newSecret(s string) secret {
	if s == "" {
		return secret{}
	}
	return secret{v: &s}
}

func (s secret) reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

func (s secret) set() bool                  { return s.v != nil }
func (secret) String() string               { return "[redacted]" }
func (secret) GoString() string             { return "[redacted]" }
func (secret) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// httpPoster is what the three providers share: post a body with headers,
// time the transfer, classify failures.
type httpPoster struct {
	provider string
	endpoint string
	client   *http.Client
	log      *slog.Logger
	keyHint  string // where the key comes from, for the 401 message
}

func (h *httpPoster) destination() string {
	u, err := url.Parse(h.endpoint)
	if err != nil {
		return h.endpoint
	}
	return u.Host
}

// post sends body and returns the response body of a 2xx answer, with
// resp's BytesIn and Timing filled in whether or not the call succeeded.
func (h *httpPoster) post(ctx context.Context, body []byte, header http.Header) ([]byte, Response, error) {
	data, t, err := h.do(ctx, body, header)
	return data, Response{BytesIn: int64(len(data)), Timing: t}, err
}

// callTrace is what the transport reports of one call. The dialer may
// call its hooks from its own goroutine, even after the request has gone on
// with another connection (a dial it no longer waits for), hence the lock.
type callTrace struct {
	mu           sync.Mutex
	connectStart time.Time
	connect      time.Duration
	wrote        bool
	firstByte    time.Time
}

func (c *callTrace) hooks() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		ConnectStart: func(_, _ string) { c.mu.Lock(); c.connectStart = time.Now(); c.mu.Unlock() },
		ConnectDone: func(_, _ string, err error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if err == nil && !c.connectStart.IsZero() {
				c.connect = time.Since(c.connectStart)
			}
		},
		WroteRequest:         func(httptrace.WroteRequestInfo) { c.mu.Lock(); c.wrote = true; c.mu.Unlock() },
		GotFirstResponseByte: func() { c.mu.Lock(); c.firstByte = time.Now(); c.mu.Unlock() },
	}
}

func (c *callTrace) snapshot() (connect time.Duration, wrote bool, firstByte time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connect, c.wrote, c.firstByte
}

func (h *httpPoster) do(ctx context.Context, body []byte, header http.Header) ([]byte, Timing, error) {
	var t Timing
	ct := &callTrace{}
	trace := ct.hooks()
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, h.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, t, &RemoteError{Provider: h.provider, Kind: KindRequest, Message: "build request", Err: err}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "agentd")
	start := time.Now()
	h.log.Debug("remote request", "provider", h.provider, "destination", h.destination(), "bytes", len(body))
	resp, err := h.client.Do(req)
	if err != nil {
		t.Total = time.Since(start)
		var wrote bool
		t.Connect, wrote, _ = ct.snapshot()
		return nil, t, h.transportError(err, wrote)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	var firstByte time.Time
	t.Connect, _, firstByte = ct.snapshot()
	if !firstByte.IsZero() {
		t.Download = time.Since(firstByte)
	}
	t.Total = time.Since(start)
	if err != nil {
		return data, t, h.transportError(err, true)
	}
	if resp.StatusCode/100 != 2 {
		return data, t, h.statusError(resp.StatusCode, data)
	}
	return data, t, nil
}

func (h *httpPoster) transportError(err error, wrote bool) error {
	// A request that never got a connection certainly did not arrive.
	var op *net.OpError
	sent := wrote || !(errors.As(err, &op) && op.Op == "dial")
	msg := "network error"
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		msg = "timed out"
	case errors.Is(err, context.Canceled):
		return &RemoteError{Provider: h.provider, Kind: KindTransient, Message: "canceled", Sent: sent, Err: err}
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		msg = "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		msg = "connection refused at " + h.destination()
	}
	return &RemoteError{Provider: h.provider, Kind: KindTransient, Message: msg, Sent: sent, Err: err}
}

// badAnswer is the error for a 2xx answer agentd cannot use.
func (h *httpPoster) badAnswer(msg string, err error) *RemoteError {
	return &RemoteError{Provider: h.provider, Kind: KindResponse, Message: msg, Sent: true, Err: err}
}

// msgCutOff is what every provider says when the plan hit max_tokens.
const msgCutOff = "the plan was cut off at max_tokens — raise fallback.max_tokens"

// bearer is the Authorization header for key, or no header without one.
func bearer(key secret) http.Header {
	h := http.Header{}
	if key.set() {
		h.Set("Authorization", "Bearer "+key.reveal())
	}
	return h
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// statusError maps an HTTP failure to a kind, with the remote's own message
// (which never echoes our key: we send it only in a header).
func (h *httpPoster) statusError(status int, body []byte) error {
	msg := remoteMessage(body)
	e := &RemoteError{Provider: h.provider, Status: status, Message: msg, Sent: true}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Kind = KindAuth
		e.Message = fmt.Sprintf("the API key was refused (%s) — check %s", msg, h.keyHint)
	case status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500:
		e.Kind = KindTransient
	default:
		e.Kind = KindRequest
	}
	return e
}

// remoteMessage digs the human message out of the error shapes the three
// APIs use: {"error":{"message":...}}, {"error":"..."}, {"message":...}.
func remoteMessage(body []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &v) == nil {
		var s string
		if json.Unmarshal(v.Error, &s) == nil && s != "" {
			return s
		}
		var o struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		}
		if json.Unmarshal(v.Error, &o) == nil && o.Message != "" {
			return o.Message
		}
		if v.Message != "" {
			return v.Message
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		s = "no message"
	}
	return s
}

// marshal encodes without HTML escaping, so the ledger's hash and the
// redaction test see the same characters the remote does.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ProviderOptions are what NewProvider needs besides the config.
type ProviderOptions struct {
	Client *http.Client
	Logger *slog.Logger
	// Key overrides the configured secret (tests); empty reads it with
	// config.Secret from fallback.api_key_file or fallback.api_key_env.
	Key string
}

// NewProvider builds the configured provider.
func NewProvider(cfg config.FallbackConfig, opt ProviderOptions) (Provider, error) {
	key := opt.Key
	if key == "" {
		var err error
		if key, err = config.Secret(cfg.APIKeyEnv, cfg.APIKeyFile); err != nil {
			return nil, fmt.Errorf("remote fallback key: %w", err)
		}
	}
	if opt.Client == nil {
		opt.Client = &http.Client{Timeout: cfg.Timeout.D()}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	hint := "the file named by fallback.api_key_file"
	if cfg.APIKeyFile == "" {
		hint = "the environment variable " + cfg.APIKeyEnv + " (fallback.api_key_env)"
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	mk := func(path string) httpPoster {
		return httpPoster{provider: cfg.Provider, endpoint: base + path, client: opt.Client,
			log: opt.Logger.With("component", "fallback", "provider", cfg.Provider), keyHint: hint}
	}
	switch cfg.Provider {
	case "openai":
		if key == "" && strings.Contains(base, "api.openai.com") {
			return nil, fmt.Errorf("remote fallback: no API key for %s — set %s", base, hint)
		}
		return &OpenAI{http: mk("/chat/completions"), key: newSecret(key)}, nil
	case "anthropic":
		if key == "" {
			return nil, fmt.Errorf("remote fallback: no API key for Anthropic — set %s", hint)
		}
		path := "/v1/messages"
		if strings.HasSuffix(base, "/v1") {
			path = "/messages"
		}
		return &Anthropic{http: mk(path), key: newSecret(key)}, nil
	case "ollama":
		return &Ollama{http: mk("/api/chat"), key: newSecret(key)}, nil
	}
	return nil, fmt.Errorf("remote fallback: unknown provider %q — use openai, anthropic or ollama", cfg.Provider)
}
