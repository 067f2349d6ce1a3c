package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of config HTTP tools.
const (
	defaultHTTPToolTimeout  = 15 * time.Second
	defaultHTTPToolMaxBytes = 1 << 20
	errorBodySnippet        = 300
)

// HTTPToolOptions declares an HTTP tool from config.
type HTTPToolOptions struct {
	Name        string
	Description string
	Method      string // GET (default), POST or PUT
	// URL is a template: {arg} placeholders in the path are path-escaped,
	// in the query query-escaped. The host cannot be templated.
	URL       string
	Headers   map[string]string
	HeaderEnv map[string]string // header -> environment variable holding its value
	// AllowHosts are hosts redirects may go to, besides the tool's own host.
	AllowHosts  []string
	ArgsSchema  json.RawMessage
	Timeout     time.Duration
	MaxBytes    int64
	Idempotent  bool
	Approval    Approval
	Concurrency int
	ConfigKey   string
	LookupEnv   func(string) (string, bool)
	Lookup      LookupFunc
}

// HTTPTool calls one configured endpoint. Arguments fill the URL template;
// for POST and PUT the arguments not used in the URL are the JSON body, for
// GET they become query parameters. Header values taken from the
// environment are never logged nor shown in errors.
type HTTPTool struct {
	o       HTTPToolOptions
	header  http.Header
	guard   *netGuard
	client  *http.Client
	holes   []string // placeholder names, in template order
	queryAt int      // index of '?' in the template, or -1
}

var _ Tool = (*HTTPTool)(nil)

var placeholder = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// NewHTTPTool checks the declaration; errors name the config key.
func NewHTTPTool(o HTTPToolOptions) (*HTTPTool, error) {
	key := o.ConfigKey
	if key == "" {
		key = "http tool " + o.Name
	}
	if o.Method == "" {
		o.Method = http.MethodGet
	}
	o.Method = strings.ToUpper(o.Method)
	if o.Method != http.MethodGet && o.Method != http.MethodPost && o.Method != http.MethodPut {
		return nil, fmt.Errorf("%s.method: %q must be GET, POST or PUT", key, o.Method)
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultHTTPToolTimeout
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = defaultHTTPToolMaxBytes
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.Description == "" {
		o.Description = "Call the " + o.Name + " service."
	}
	// The authority must be literal: a model must never choose the host.
	rest, ok := strings.CutPrefix(o.URL, "https://")
	if !ok {
		rest, ok = strings.CutPrefix(o.URL, "http://")
	}
	if !ok {
		return nil, fmt.Errorf("%s.url: %q must start with http:// or https://", key, o.URL)
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	if strings.ContainsAny(authority, "{}@") || authority == "" {
		return nil, fmt.Errorf("%s.url: %q: the host must be written out, without {placeholders} or user info", key, o.URL)
	}
	if strings.Contains(o.URL, "#") {
		return nil, fmt.Errorf("%s.url: %q must not have a #fragment", key, o.URL)
	}
	probe, err := url.Parse(placeholder.ReplaceAllString(o.URL, "x"))
	if err != nil || probe.Hostname() == "" {
		return nil, fmt.Errorf("%s.url: %q is not a URL template, like \"https://api.example/v1/items/{id}\"", key, o.URL)
	}
	allow, err := NewAllowlist(o.AllowHosts)
	if err != nil {
		return nil, fmt.Errorf("tools.http.allow_hosts: %w", err)
	}
	t := &HTTPTool{o: o, header: http.Header{}, queryAt: strings.IndexByte(o.URL, '?')}
	for _, m := range placeholder.FindAllStringSubmatch(o.URL, -1) {
		t.holes = append(t.holes, m[1])
	}
	for _, h := range slices.Sorted(maps.Keys(o.Headers)) {
		t.header.Set(h, o.Headers[h])
	}
	for _, h := range slices.Sorted(maps.Keys(o.HeaderEnv)) {
		v, ok := o.LookupEnv(o.HeaderEnv[h])
		if !ok || v == "" {
			return nil, fmt.Errorf("%s.header_env.%s: environment variable %s is not set — set it in agentd's environment (EnvironmentFile)", key, h, o.HeaderEnv[h])
		}
		t.header.Set(h, v)
	}
	t.guard = &netGuard{
		allow:  allow.with(probe.Hostname(), urlPort(probe)),
		lookup: o.Lookup,
		what:   key + ".url and tools.http.allow_hosts",
		dialer: newDialer(o.Timeout),
	}
	t.client = t.guard.client(o.Timeout)
	return t, nil
}

// Spec implements Tool.
func (t *HTTPTool) Spec() Spec {
	return Spec{
		Name:        t.o.Name,
		Description: t.o.Description,
		ArgsSchema:  t.o.ArgsSchema,
		Idempotent:  t.o.Idempotent,
		Approval:    t.o.Approval,
		Timeout:     t.o.Timeout + 5*time.Second,
		Concurrency: t.o.Concurrency,
	}
}

// buildURL fills the template and returns the arguments it did not use.
func (t *HTTPTool) buildURL(args map[string]any) (string, map[string]any, error) {
	rest := maps.Clone(args)
	var firstErr error
	out := t.o.URL
	var sb strings.Builder
	last := 0
	for _, loc := range placeholder.FindAllStringSubmatchIndex(out, -1) {
		name := out[loc[2]:loc[3]]
		sb.WriteString(out[last:loc[0]])
		last = loc[1]
		v, ok := args[name]
		if !ok || v == nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%w: args.%s: missing property (it is part of the URL)", ErrInvalidArgs, name)
			}
			continue
		}
		s, err := scalarString(v)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%w: args.%s: %v", ErrInvalidArgs, name, err)
			}
			continue
		}
		delete(rest, name)
		inQuery := t.queryAt >= 0 && loc[0] > t.queryAt
		if inQuery {
			sb.WriteString(url.QueryEscape(s))
			continue
		}
		if s == "" || s == "." || s == ".." {
			if firstErr == nil {
				firstErr = fmt.Errorf("%w: args.%s: %q cannot be a URL path segment", ErrInvalidArgs, name, s)
			}
			continue
		}
		sb.WriteString(url.PathEscape(s))
	}
	sb.WriteString(out[last:])
	if firstErr != nil {
		return "", nil, firstErr
	}
	return sb.String(), rest, nil
}

func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case json.Number:
		return x.String(), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	default:
		return "", fmt.Errorf("must be a string, number or boolean to go into the URL")
	}
}

// Call implements Tool.
func (t *HTTPTool) Call(ctx context.Context, args json.RawMessage) (Result, error) {
	var a map[string]any
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.UseNumber()
	if err := dec.Decode(&a); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrInvalidArgs, err)
	}
	raw, rest, err := t.buildURL(a)
	if err != nil {
		return Result{}, err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Result{}, fmt.Errorf("%w: the filled URL does not parse: %v", ErrInvalidArgs, err)
	}
	var body io.Reader
	if t.o.Method == http.MethodGet {
		if len(rest) > 0 {
			q := u.Query()
			for _, k := range slices.Sorted(maps.Keys(rest)) {
				s, err := scalarString(rest[k])
				if err != nil {
					return Result{}, fmt.Errorf("%w: args.%s: %v", ErrInvalidArgs, k, err)
				}
				q.Set(k, s)
			}
			u.RawQuery = q.Encode()
		}
	} else {
		b, err := json.Marshal(rest)
		if err != nil {
			return Result{}, fmt.Errorf("%w: %v", ErrInvalidArgs, err)
		}
		if int64(len(b)) > t.o.MaxBytes {
			return Result{}, fmt.Errorf("%w: request body is %d bytes, the limit is %d", ErrTooLarge, len(b), t.o.MaxBytes)
		}
		body = bytes.NewReader(b)
	}
	if err := t.guard.checkURL(u); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, t.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, t.o.Method, u.String(), body)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrInvalidArgs, err)
	}
	req.Header = t.header.Clone()
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/*;q=0.9, */*;q=0.5")
	limitKey := "max_bytes"
	if t.o.ConfigKey != "" {
		limitKey = t.o.ConfigKey + ".max_bytes"
	}
	resp, err := doLimited(t.client, req, t.o.MaxBytes, limitKey)
	if err != nil {
		return Result{}, err
	}
	if resp.Status >= 400 {
		snippet := resp.Note
		if resp.JSON != nil {
			snippet = string(resp.JSON)
		} else if resp.Body != nil {
			snippet = *resp.Body
		}
		if len(snippet) > errorBodySnippet {
			snippet = snippet[:errorBodySnippet] + "…"
		}
		return Result{}, fmt.Errorf("%w: %s answered HTTP %d: %s", ErrFailed, t.o.Name, resp.Status, strings.TrimSpace(snippet))
	}
	return marshalResult(resp)
}
