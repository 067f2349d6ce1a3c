// Package api is agentd's HTTP surface: health, status, the run API, the
// WebSocket event stream, the OpenAI-compatible endpoint, metrics and the
// embedded dashboard. Everything under /api/ and /v1/ needs the token.
package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Config is what the server needs to know of agentd's configuration.
type Config struct {
	AuthRequired    bool
	MaxRequestBytes int64
	AllowedOrigins  []string
	// AllowedHosts are the host names (path.Match patterns) agentd answers
	// to besides IP literals and "localhost": server.allowed_hosts and the
	// listen host. Any other Host header is refused (DNS rebinding).
	AllowedHosts    []string
	ShutdownTimeout time.Duration
	// ReadHeaderTimeout, BodyTimeout and IdleTimeout bound slow clients:
	// the request headers, the request body (lifted once it is read, so
	// long answers and streams are not cut), and a kept-alive connection
	// between requests. Zero: 10 s, 30 s, 2 min.
	ReadHeaderTimeout time.Duration
	BodyTimeout       time.Duration
	IdleTimeout       time.Duration
	// MaxUnauthenticatedPerIP bounds the unauthenticated writes (login,
	// logout) one client address may have in progress. Zero: 8.
	MaxUnauthenticatedPerIP int
	// TLS, when set, serves HTTPS on the listener.
	TLS *tls.Config
}

// Server serves the HTTP API on a listener bound by the caller, so "port in
// use" is reported at start, before anything else runs.
type Server struct {
	cfg    Config
	ln     net.Listener
	token  *TokenFile
	log    *slog.Logger
	mux    *http.ServeMux
	ready  atomic.Bool
	status func(context.Context) any
	ping   func(context.Context) error
	// base is Run's context, set before serving: handlers tell a stopping
	// daemon (base ended) from a client that hung up (only theirs ended).
	base context.Context
	// unauth bounds unauthenticated requests per client address.
	unauth *perIP
}

// New builds the server. status renders /api/v1/status; ping checks the
// database for /readyz.
func New(cfg Config, ln net.Listener, token *TokenFile, status func(context.Context) any, ping func(context.Context) error, log *slog.Logger) *Server {
	s := &Server{cfg: cfg, ln: ln, token: token, log: log.With("component", "api"), mux: http.NewServeMux(), status: status, ping: ping}
	if cfg.MaxUnauthenticatedPerIP <= 0 {
		cfg.MaxUnauthenticatedPerIP = defaultUnauthPerIP
	}
	s.unauth = &perIP{max: cfg.MaxUnauthenticatedPerIP, inUse: map[string]int{}}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.Handle("GET /api/v1/status", http.HandlerFunc(s.getStatus))
	// Every path under /api/ that no route takes answers in the API's
	// JSON error shape, as the docs promise, not net/http's plain text.
	for _, m := range apiMethods {
		s.mux.HandleFunc(m+" /api/", s.noRoute)
	}
	return s
}

// apiMethods are the methods the API's routes use.
var apiMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// noRoute answers a request no API route takes: 405 with Allow when the
// path exists for other methods, 404 otherwise.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range apiMethods {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != m+" /api/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed",
			fmt.Sprintf("%s is not allowed on %s; use %s (see docs/api.md)", r.Method, r.URL.Path, strings.Join(allow, " or ")))
		return
	}
	WriteError(w, http.StatusNotFound, "no_route", fmt.Sprintf("no API route %s %s (see docs/api.md)", r.Method, r.URL.Path))
}

// Handle registers an authenticated handler.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.authenticate(s.limitBody(h)))
}

// HandlePublic registers a handler that needs no token (login page, static
// assets that hold no data).
func (s *Server) HandlePublic(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.limitUnauthenticated(h))
}

// SetReady marks the daemon ready (or not) for /readyz.
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Handler is the whole mux behind the guard (Host, Origin and body checks).
func (s *Server) Handler() http.Handler { return s.guard(s.mux) }

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: orDuration(s.cfg.ReadHeaderTimeout, defaultReadHeaderTimeout),
		IdleTimeout:       orDuration(s.cfg.IdleTimeout, defaultIdleTimeout),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	s.base = ctx
	errc := make(chan error, 1)
	ln := s.ln
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("listening", "addr", s.ln.Addr().String(), "auth", s.cfg.AuthRequired, "tls", s.cfg.TLS != nil)
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	s.ready.Store(false)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	_ = srv.Close()
	return nil
}

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// stopping reports whether Run's context has ended.
func (s *Server) stopping() bool { return s.base != nil && s.base.Err() != nil }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		WriteError(w, http.StatusServiceUnavailable, "not_ready", "agentd is starting or stopping")
		return
	}
	if s.ping != nil {
		if err := s.ping(r.Context()); err != nil {
			WriteError(w, http.StatusServiceUnavailable, "database", "database not answering: "+err.Error())
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready\n"))
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, s.status(r.Context()))
}

// SessionCookie is the dashboard's login cookie.
const SessionCookie = "agentd_session"

func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.cfg.AuthRequired || s.Authorized(r) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentd"`)
		WriteError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong token: send `Authorization: Bearer <token>` (see `agentd token`)")
	})
}

// Authorized reports whether r carries the token, as a bearer header or the
// dashboard's session cookie.
func (s *Server) Authorized(r *http.Request) bool {
	if !s.cfg.AuthRequired {
		return true
	}
	if tok, ok := bearerToken(r); ok {
		return s.token.Check(tok)
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		return s.token.Check(c.Value)
	}
	return false
}

func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.MaxRequestBytes {
			WriteError(w, http.StatusRequestEntityTooLarge, "too_large",
				fmt.Sprintf("request body is %d bytes; the limit is %d (server.max_request_bytes)", r.ContentLength, s.cfg.MaxRequestBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBytes)
		next.ServeHTTP(w, r)
	})
}

// ErrorBody is every error response's shape.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// WriteError writes a JSON error with a reason a person can act on.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	var b ErrorBody
	b.Error.Code, b.Error.Message = code, msg
	WriteJSON(w, status, b)
}

// WriteJSON writes v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
