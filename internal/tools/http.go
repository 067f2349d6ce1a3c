package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// HTTPOptions configures http_get and http_post.
type HTTPOptions struct {
	AllowHosts []string
	MaxBytes   int64
	Timeout    time.Duration
	// Lookup resolves host names; nil uses the system resolver.
	Lookup LookupFunc
}

// HTTPFetch is http_get or http_post.
type HTTPFetch struct {
	method  string
	guard   *netGuard
	client  *http.Client
	max     int64
	timeout time.Duration
}

var _ Tool = (*HTTPFetch)(nil)

// NewHTTPGet returns the http_get tool.
func NewHTTPGet(o HTTPOptions) (*HTTPFetch, error) { return newHTTPFetch(http.MethodGet, o) }

// NewHTTPPost returns the http_post tool.
func NewHTTPPost(o HTTPOptions) (*HTTPFetch, error) { return newHTTPFetch(http.MethodPost, o) }

func newHTTPFetch(method string, o HTTPOptions) (*HTTPFetch, error) {
	allow, err := NewAllowlist(o.AllowHosts)
	if err != nil {
		return nil, err
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 20
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	g := &netGuard{allow: allow, lookup: o.Lookup, what: "tools.http.allow_hosts", dialer: newDialer(o.Timeout)}
	return &HTTPFetch{method: method, guard: g, client: g.client(o.Timeout), max: o.MaxBytes, timeout: o.Timeout}, nil
}

// Spec implements Tool.
func (h *HTTPFetch) Spec() Spec {
	if h.method == http.MethodGet {
		return Spec{
			Name: "http_get",
			Description: "Fetch a web page or API response with HTTP GET. Only hosts allowed by the administrator can be reached; " +
				"others are refused. Returns status, content_type and either json (parsed JSON responses) or body (text).",
			ArgsSchema: json.RawMessage(`{"type":"object","properties":{"url":{"type":"string","minLength":8,"maxLength":2048,` +
				`"description":"Full http:// or https:// URL, e.g. \"https://api.example.org/v1/items?id=3\"."}},` +
				`"required":["url"],"additionalProperties":false}`),
			Idempotent: true,
			Timeout:    h.timeout + 5*time.Second,
		}
	}
	return Spec{
		Name: "http_post",
		Description: "Send data to an HTTP endpoint with POST. Only hosts allowed by the administrator can be reached. " +
			"body may be a JSON object (sent as application/json) or a string. Returns status, content_type and json or body.",
		ArgsSchema: json.RawMessage(`{"type":"object","properties":{` +
			`"url":{"type":"string","minLength":8,"maxLength":2048,"description":"Full http:// or https:// URL."},` +
			`"body":{"type":["object","array","string"],"description":"JSON object to send, or a text body."},` +
			`"content_type":{"type":"string","maxLength":100,"description":"Content type of a text body; default text/plain. Ignored for JSON bodies."}},` +
			`"required":["url","body"],"additionalProperties":false}`),
		Idempotent: false,
		Timeout:    h.timeout + 5*time.Second,
	}
}

// Call implements Tool.
func (h *HTTPFetch) Call(ctx context.Context, args json.RawMessage) (Result, error) {
	var a struct {
		URL         string          `json:"url"`
		Body        json.RawMessage `json:"body"`
		ContentType string          `json:"content_type"`
	}
	if err := json.Unmarshal(args, &a); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrInvalidArgs, err)
	}
	u, err := url.Parse(a.URL)
	if err != nil {
		return Result{}, fmt.Errorf("%w: url %q does not parse: %v", ErrInvalidArgs, a.URL, err)
	}
	if err := h.guard.checkURL(u); err != nil {
		return Result{}, err
	}
	var body io.Reader
	header := http.Header{}
	if h.method == http.MethodPost {
		b, ct, err := postBody(a.Body, a.ContentType)
		if err != nil {
			return Result{}, err
		}
		if int64(len(b)) > h.max {
			return Result{}, fmt.Errorf("%w: request body is %d bytes, the limit is %d", ErrTooLarge, len(b), h.max)
		}
		body = bytes.NewReader(b)
		header.Set("Content-Type", ct)
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, h.method, u.String(), body)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrInvalidArgs, err)
	}
	req.Header = header
	resp, err := doLimited(h.client, req, h.max, "tools.http.max_bytes")
	if err != nil {
		return Result{}, err
	}
	return marshalResult(resp)
}

func postBody(raw json.RawMessage, contentType string) ([]byte, string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, "", fmt.Errorf("%w: args.body: missing property", ErrInvalidArgs)
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, "", fmt.Errorf("%w: args.body: %v", ErrInvalidArgs, err)
		}
		if contentType == "" {
			contentType = "text/plain; charset=utf-8"
		}
		if _, _, err := mime.ParseMediaType(contentType); err != nil {
			return nil, "", fmt.Errorf("%w: args.content_type %q is not a media type, like \"text/csv\"", ErrInvalidArgs, contentType)
		}
		return []byte(s), contentType, nil
	}
	return raw, "application/json", nil
}

// httpResponse is what http_get, http_post and config HTTP tools return.
type httpResponse struct {
	URL         string          `json:"url"`
	Status      int             `json:"status"`
	ContentType string          `json:"content_type,omitempty"`
	JSON        json.RawMessage `json:"json,omitempty"`
	Body        *string         `json:"body,omitempty"`
	Note        string          `json:"note,omitempty"`
}

// doLimited sends req and reads at most max bytes of the response; a longer
// response is an error, never silently cut, so a model does not reason over
// half a document believing it whole. limitKey names the config key to raise.
func doLimited(c *http.Client, req *http.Request, max int64, limitKey string) (*httpResponse, error) {
	resp, err := c.Do(req)
	if err != nil {
		if errors.Is(err, ErrRefused) {
			return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), unwrapURLError(err))
		}
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	tooLarge := func() error {
		return fmt.Errorf("%w: response from %s is larger than the limit of %d bytes (%s); ask for a smaller resource or page", ErrTooLarge, req.URL.Redacted(), max, limitKey)
	}
	if resp.ContentLength > max {
		return nil, tooLarge()
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("read response from %s: %w", req.URL.Redacted(), err)
	}
	if int64(len(data)) > max {
		return nil, tooLarge()
	}
	out := &httpResponse{URL: resp.Request.URL.Redacted(), Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type")}
	mt, _, _ := mime.ParseMediaType(out.ContentType)
	switch {
	case (mt == "application/json" || strings.HasSuffix(mt, "+json")) && json.Valid(data):
		out.JSON, _ = compactJSON(data)
	case utf8.Valid(data):
		s := string(data)
		out.Body = &s
	default:
		out.Note = fmt.Sprintf("binary content (%d bytes) not shown", len(data))
	}
	return out, nil
}

// unwrapURLError drops net/http's url.Error layer, whose message repeats the
// method and URL we already name.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
