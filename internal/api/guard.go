package api

import (
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
)

// The guard stands in front of every route, in every auth mode. It refuses
// what a browser can be made to send on another site's behalf: requests
// for a Host agentd does not answer to (DNS rebinding), writes from another
// origin (CSRF, including another port of the same host, which SameSite
// does not cover), cookie writes that are not JSON; and it bounds how long
// a client may take to send a body.

// Defaults for the timeouts when Config leaves them zero.
const (
	defaultReadHeaderTimeout = 10 * time.Second
	defaultBodyTimeout       = 30 * time.Second
	defaultIdleTimeout       = 2 * time.Minute
	defaultUnauthPerIP       = 8
)

// guard wraps the whole mux.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r.Host) {
			WriteError(w, http.StatusMisdirectedRequest, "bad_host",
				fmt.Sprintf("agentd does not answer to the host name %q (a DNS-rebinding page, or a name agentd was not told about): add it to server.allowed_hosts", r.Host))
			return
		}
		if unsafeMethod(r.Method) {
			if status, code, msg := s.checkWrite(r); status != 0 {
				WriteError(w, status, code, msg)
				return
			}
		}
		if r.ContentLength != 0 {
			s.bodyDeadline(w, r)
		}
		next.ServeHTTP(w, r)
	})
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// hostAllowed reports whether agentd answers to hostport's host: any IP
// literal (a rebinding attack needs a name: a page served from an IP
// address cannot make the browser send another), "localhost", and the
// names of server.allowed_hosts (with the listen host among them). A
// request without a Host (HTTP/1.0) comes from no browser.
func (s *Server) hostAllowed(hostport string) bool {
	if hostport == "" {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || net.ParseIP(host) != nil {
		return true
	}
	for _, p := range s.cfg.AllowedHosts {
		if ok, _ := path.Match(strings.ToLower(p), host); ok {
			return true
		}
	}
	return false
}

// originAllowed checks a browser's Origin header: agentd's own origin (an
// allowed Host, with the port the request was sent to), or one of server.allowed_origins (a host pattern like
// "dash.example.com" or a full origin like "https://dash.example.com";
// path.Match syntax). Another port of the same host is another origin.
// A request without Origin is allowed here; checkWrite decides about it.
func (s *Server) originAllowed(r *http.Request) (bool, string) {
	o := r.Header.Get("Origin")
	if o == "" {
		return true, ""
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false, o // includes "null": sandboxed frames, file: pages
	}
	// The scheme is not compared: one port serves one of them, and behind
	// a proxy that ends TLS the browser's https origin meets plain HTTP.
	if (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, r.Host) && s.hostAllowed(u.Host) {
		return true, o
	}
	for _, p := range s.cfg.AllowedOrigins {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return true, o
		}
	}
	return false, o
}

// checkWrite decides about a POST, PUT, PATCH or DELETE: a foreign Origin
// is refused in every auth mode; without Origin, a browser's Sec-Fetch-Site
// must not say cross-site. A write authenticated by the dashboard's cookie
// (no Authorization header) must prove it comes from the dashboard's own
// page (same-origin Origin, or Sec-Fetch-Site: same-origin) and be JSON or
// bodiless, which no HTML form can send. It returns status 0 to let the
// request through.
func (s *Server) checkWrite(r *http.Request) (int, string, string) {
	ok, origin := s.originAllowed(r)
	if !ok {
		return http.StatusForbidden, "bad_origin",
			fmt.Sprintf("a page from origin %q may not write to agentd; if it is yours, add it to server.allowed_origins", origin)
	}
	fetchSite := r.Header.Get("Sec-Fetch-Site")
	if origin == "" && fetchSite != "" && fetchSite != "same-origin" && fetchSite != "none" {
		return http.StatusForbidden, "bad_origin",
			fmt.Sprintf("a %s request may not write to agentd (Sec-Fetch-Site: %s)", fetchSite, fetchSite)
	}
	if !s.cookieAuthenticated(r) {
		return 0, "", ""
	}
	if origin == "" && fetchSite != "same-origin" {
		return http.StatusForbidden, "bad_origin",
			"the dashboard's session cookie is accepted on writes only from the dashboard's own page (Origin or Sec-Fetch-Site: same-origin); API clients send `Authorization: Bearer <token>`"
	}
	if ct := r.Header.Get("Content-Type"); ct != "" || r.ContentLength != 0 {
		mt, _, _ := mime.ParseMediaType(ct)
		if mt != "application/json" {
			return http.StatusUnsupportedMediaType, "bad_content_type",
				fmt.Sprintf("Content-Type is %q; writes with the session cookie must send application/json", ct)
		}
	}
	return 0, "", ""
}

// cookieAuthenticated reports whether r would be authenticated by the
// session cookie: it carries the cookie and no Authorization header.
func (s *Server) cookieAuthenticated(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" {
		return false
	}
	_, err := r.Cookie(SessionCookie)
	return err == nil
}

// bearerToken returns the token of an `Authorization: Bearer` header; the
// scheme is case-insensitive (RFC 7235).
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// bodyDeadline gives the client BodyTimeout to send the whole body. The
// deadline is lifted once the body has been read, so a long answer (a run
// waited for, an OpenAI stream) is not cut; the event stream has no body
// and never gets one.
func (s *Server) bodyDeadline(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(s.bodyTimeout())); err != nil {
		return // not a deadline-capable connection (tests' recorders)
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, left: r.ContentLength}
}

type deadlineBody struct {
	io.ReadCloser
	rc     *http.ResponseController
	left   int64 // -1: unknown (chunked)
	lifted bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.left > 0 {
		b.left -= int64(n)
	}
	if !b.lifted && (err == io.EOF || b.left == 0) {
		b.lifted = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (s *Server) bodyTimeout() time.Duration {
	if s.cfg.BodyTimeout > 0 {
		return s.cfg.BodyTimeout
	}
	return defaultBodyTimeout
}

// perIP bounds the unauthenticated requests in progress per client
// address, so one client cannot hold every connection on the login route.
type perIP struct {
	mu    sync.Mutex
	max   int
	inUse map[string]int
}

func (p *perIP) acquire(ip string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inUse[ip] >= p.max {
		return false
	}
	p.inUse[ip]++
	return true
}

func (p *perIP) release(ip string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inUse[ip]--; p.inUse[ip] <= 0 {
		delete(p.inUse, ip)
	}
}

// limitUnauthenticated wraps a public route: writes (login, logout) are
// bounded per client address; reads of static assets are not.
func (s *Server) limitUnauthenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !unsafeMethod(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = r.RemoteAddr
		}
		if !s.unauth.acquire(ip) {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Connection", "close")
			WriteError(w, http.StatusTooManyRequests, "too_many_requests",
				fmt.Sprintf("more than %d unauthenticated requests at once from %s; wait for the others to finish", s.unauth.max, ip))
			return
		}
		defer s.unauth.release(ip)
		next.ServeHTTP(w, r)
	})
}
