package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/api"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/daemon"
)

// apiClient talks to a running agentd over its HTTP API, as the dashboard
// and scripts do.
type apiClient struct {
	base  string // http://host:port
	token string
	// tokenErr is why no token could be read. It is reported only if the
	// daemon asks for one (401): when nothing answers, what to start
	// matters more.
	tokenErr error
	http     *http.Client
}

// clientFlags are the flags every API command takes.
type clientFlags struct {
	config, addr, token *string
}

func (m *Main) clientFlagSet(name string) (*flag.FlagSet, clientFlags) {
	fs, cfg := m.flags(name)
	cf := clientFlags{config: cfg}
	cf.addr = fs.String("addr", "", "agentd's address, host:port or URL (default: the agentd running on this machine, else server.listen from the config)")
	cf.token = fs.String("token", "", "API token (default: $AGENTD_TOKEN, then the running agentd's token file, then the config's)")
	return fs, cf
}

// client resolves the address and token: --addr and --token (or
// $AGENTD_TOKEN) first; then the running daemon found through its discovery
// file, a demo included (see runningDaemon); then the config's server.listen
// and token file.
func (m *Main) client(cf clientFlags) (*apiClient, error) {
	cfg, _, err := m.loadConfig(*cf.config)
	if err != nil {
		return nil, err
	}
	running, found := m.runningDaemon(cfg, *cf.config != "", *cf.addr)
	addr := *cf.addr
	switch {
	case addr != "":
	case found:
		addr = running.URL
	default:
		addr = cfg.Server.Listen
	}
	base, err := baseURL(addr)
	if err != nil {
		return nil, err
	}
	c := &apiClient{base: base, http: &http.Client{}}
	switch {
	case *cf.token != "":
		c.token = strings.TrimSpace(*cf.token)
	case m.Getenv("AGENTD_TOKEN") != "":
		c.token = strings.TrimSpace(m.Getenv("AGENTD_TOKEN"))
	case found:
		c.token, c.tokenErr = readTokenFile(running.TokenFile)
	case cfg.Server.Auth != "token":
	default:
		c.token, c.tokenErr = readTokenFile(cfg.ResolvePaths().TokenFile)
	}
	return c, nil
}

// runningDaemon finds a live agentd on this machine through its discovery
// file: the one in the config's state dir first, then the demo's. When the
// command names a daemon (--addr, or --config whose server.listen it is),
// only one answering on that port counts.
func (m *Main) runningDaemon(cfg *config.Config, explicitConfig bool, addr string) (*daemon.Discovery, bool) {
	if addr == "" && explicitConfig {
		addr = cfg.Server.Listen
	}
	for _, dir := range []string{cfg.ResolvePaths().StateDir, m.demoStateDir()} {
		d, ok := daemon.ReadDiscovery(dir)
		if ok && (addr == "" || portOf(addr) == portOf(d.URL)) {
			return d, true
		}
	}
	return nil, false
}

// portOf is the port of host:port or of a URL, "" when it has none.
func portOf(addr string) string {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		return u.Port()
	}
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// readTokenFile reads the API token for a client command, saying what to do
// when it cannot.
func readTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("no API token at %s — start agentd once to create it (`agentd serve`), or pass --token / set $AGENTD_TOKEN", path)
	case err != nil:
		return "", tokenAccessError(err, path)
	}
	return strings.TrimSpace(string(b)), nil
}

// baseURL turns server.listen (or --addr) into a URL to dial: a wildcard
// host means this machine's loopback.
func baseURL(addr string) (string, error) {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimRight(addr, "/"), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", usagef("address %q is not host:port (like 127.0.0.1:8484) — check --addr or server.listen", addr)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// apiError is an answer other than 2xx, with the API's own reason.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Message }

// statusOf is the HTTP status of an API error, 0 for other errors.
func statusOf(err error) int {
	var e *apiError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// apiReason is the API's own words for an error, trimmed of the prefixes
// the daemon adds ("cancel run X: conflict with the current state: ...").
func apiReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && i+2 < len(msg) {
		return msg[i+2:]
	}
	return msg
}

// do sends a request and decodes a 2xx answer into out (when not nil).
// Errors are written for the operator: daemon down, bad token, not found,
// conflict, each with what to do.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("agentd is not answering on %s — start it with `agentd serve` or `sudo systemctl start agentd` (or try it without models: `agentd demo`)", c.base)
		}
		return fmt.Errorf("agentd at %s: %w — is it running? (`agentd serve` or `sudo systemctl start agentd`)", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		if out == nil {
			return nil
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("agentd at %s answered %s with something that is not the expected JSON: %w", c.base, path, err)
		}
		return nil
	}
	var eb api.ErrorBody
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &apiError{Status: resp.StatusCode}
	if json.Unmarshal(raw, &eb) == nil && eb.Error.Message != "" {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
	} else {
		e.Message = strings.TrimSpace(string(raw))
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		if c.tokenErr != nil {
			return c.tokenErr
		}
		e.Message = fmt.Sprintf("agentd at %s refused the API token (401): it is not this daemon's — pass the one `agentd token` prints on its machine (for a packaged service: `sudo -u agentd agentd token`) with --token or $AGENTD_TOKEN", c.base)
	case http.StatusNotFound:
		if e.Message == "" || strings.Contains(e.Message, "404 page not found") {
			e.Message = fmt.Sprintf("agentd at %s has no %s (404) — is it an older version?", c.base, path)
		}
	case http.StatusServiceUnavailable:
		if e.Message == "" {
			e.Message = "agentd is not ready yet (503) — try again in a few seconds"
		}
	default:
		if e.Message == "" {
			e.Message = fmt.Sprintf("agentd answered %s", resp.Status)
		}
	}
	return e
}

// httpTimeout bounds a request that is not waiting on a run.
const httpTimeout = 30 * time.Second

// call makes one request to the running daemon under the CLI's timeout.
func (m *Main) call(ctx context.Context, cf clientFlags, method, path string, body, out any) error {
	c, err := m.client(cf)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	return c.do(ctx, method, path, body, out)
}
