package tools

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// LookupFunc resolves a host name to addresses. Tests inject one to play a
// DNS server that lies (rebinding to 127.0.0.1 or 169.254.169.254).
type LookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

func defaultLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// hostRule is one allowlist entry: "api.example.org", "*.example.org"
// (subdomains only, not example.org itself), or either with ":port". An
// entry without a port allows every port of that host.
type hostRule struct {
	host     string // lower case, no trailing dot; for wildcards the suffix with its leading dot
	port     string // empty: any
	wildcard bool
}

// Allowlist is the set of hosts an HTTP tool may reach.
type Allowlist struct {
	rules []hostRule
}

// NewAllowlist parses allowlist entries; the error names the bad entry.
func NewAllowlist(entries []string) (*Allowlist, error) {
	a := &Allowlist{}
	for _, e := range entries {
		r, err := parseHostRule(e)
		if err != nil {
			return nil, err
		}
		a.rules = append(a.rules, r)
	}
	return a, nil
}

func parseHostRule(e string) (hostRule, error) {
	s := strings.TrimSpace(e)
	bad := func(why string) (hostRule, error) {
		return hostRule{}, fmt.Errorf("allowed host %q %s; use a host name or host:port, like \"api.example.org\", \"*.example.org\" or \"10.0.0.5:8080\"", e, why)
	}
	if s == "" || strings.ContainsAny(s, "/?#@ ") {
		return bad("is not a host")
	}
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
		if n, err := parsePort(p); err != nil || n == 0 {
			return bad("has an invalid port")
		}
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	host = normalizeHost(host)
	r := hostRule{host: host, port: port}
	if strings.HasPrefix(host, "*.") {
		r.wildcard, r.host = true, host[1:]
		if strings.Contains(r.host[1:], "*") || len(r.host) < 2 {
			return bad("has a misplaced wildcard")
		}
	} else if strings.Contains(host, "*") {
		return bad("has a misplaced wildcard: only a leading \"*.\" is supported")
	}
	return r, nil
}

func parsePort(p string) (int, error) {
	var n int
	if p == "" || len(p) > 5 {
		return 0, errors.New("bad port")
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, errors.New("bad port")
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, errors.New("bad port")
	}
	return n, nil
}

func normalizeHost(h string) string {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String()
	}
	return h
}

// Allows reports whether host:port matches an entry.
func (a *Allowlist) Allows(host, port string) bool {
	host = normalizeHost(host)
	for _, r := range a.rules {
		if r.port != "" && r.port != port {
			continue
		}
		if r.wildcard {
			if strings.HasSuffix(host, r.host) && len(host) > len(r.host) {
				return true
			}
			continue
		}
		if host == r.host {
			return true
		}
	}
	return false
}

// with returns a copy of a that also allows the given host:port exactly.
func (a *Allowlist) with(host, port string) *Allowlist {
	n := &Allowlist{rules: append([]hostRule{{host: normalizeHost(host), port: port}}, a.rules...)}
	return n
}

// metadataNames are cloud metadata host names, refused even if allowlisted.
var metadataNames = map[string]bool{
	"metadata.google.internal":   true,
	"metadata.goog":              true,
	"metadata":                   true,
	"instance-data":              true,
	"instance-data.ec2.internal": true,
}

// metadataAddrs are cloud metadata and host-agent addresses (AWS, GCP, Azure,
// Oracle on 169.254.169.254; AWS IPv6; Alibaba; Azure wire server).
var metadataAddrs = map[netip.Addr]bool{
	netip.MustParseAddr("169.254.169.254"): true,
	netip.MustParseAddr("fd00:ec2::254"):   true,
	netip.MustParseAddr("100.100.100.200"): true,
	netip.MustParseAddr("168.63.129.16"):   true,
}

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
)

// blockedAddr says why agentd must not connect to ip, or "" if it may.
// Loopback is allowed only when the URL's host is itself a loopback address
// or "localhost" and is on the allowlist: a public name that resolves to
// 127.0.0.1 is a DNS rebinding attempt.
func blockedAddr(ip netip.Addr, loopbackOK bool) string {
	ip = ip.Unmap()
	if ip.Is6() && nat64.Contains(ip) {
		b := ip.As16()
		if r := blockedAddr(netip.AddrFrom4([4]byte(b[12:])), loopbackOK); r != "" {
			return r + " (via NAT64)"
		}
	}
	switch {
	case metadataAddrs[ip]:
		return "a cloud metadata address"
	case ip.IsUnspecified() || (ip.Is4() && thisNetwork.Contains(ip)):
		return "an unspecified address"
	case ip.IsLinkLocalUnicast():
		return "a link-local address"
	case ip.IsMulticast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "a multicast or broadcast address"
	case ip.IsLoopback() && !loopbackOK:
		return "a loopback address (allowed only when the allowlist names 127.0.0.1, ::1 or localhost itself)"
	}
	return ""
}

func isLoopbackHost(host string) bool {
	host = normalizeHost(host)
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// netGuard dials only allowlisted hosts, and only at addresses that pass
// blockedAddr after resolution: the check is on the address actually dialed,
// so a DNS answer that changes between check and use cannot get through.
type netGuard struct {
	allow  *Allowlist
	lookup LookupFunc
	dialer net.Dialer
	// what names the allowlist in errors ("tools.http.allow_hosts").
	what string
}

func (g *netGuard) refuse(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, a...))
}

func (g *netGuard) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, g.refuse("bad address %q", addr)
	}
	host = normalizeHost(host)
	if !g.allow.Allows(host, port) {
		return nil, g.refuse("host %s is not allowed; allowed hosts are listed in %s", net.JoinHostPort(host, port), g.what)
	}
	if metadataNames[host] {
		return nil, g.refuse("%s is a cloud metadata service; agentd never connects to it", host)
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		lookup := g.lookup
		if lookup == nil {
			lookup = defaultLookup
		}
		addrs, err = lookup(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w — check the host name", host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("resolve %s: no addresses", host)
		}
	}
	loopbackOK := isLoopbackHost(host)
	// One bad address in the answer refuses the whole name: a resolver that
	// mixes a metadata address into its answers is not to be trusted.
	for _, ip := range addrs {
		if why := blockedAddr(ip, loopbackOK); why != "" {
			return nil, g.refuse("%s resolves to %s, %s; agentd never connects there", host, ip.Unmap(), why)
		}
	}
	var errs []error
	for _, ip := range addrs {
		want := ip.Unmap()
		d := g.dialer
		// Last line of defence: vet the address the socket really connects to.
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return g.refuse("cannot vet address %q", address)
			}
			if got := ap.Addr().Unmap(); got != want {
				return g.refuse("dial address %s differs from vetted %s", got, want)
			}
			if why := blockedAddr(ap.Addr(), loopbackOK); why != "" {
				return g.refuse("%s is %s", ap.Addr(), why)
			}
			return nil
		}
		c, err := d.DialContext(ctx, network, net.JoinHostPort(want.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("connect to %s: %w", net.JoinHostPort(host, port), errors.Join(errs...))
}

// checkURL vets a URL before any request is made, for an error that names the
// problem plainly. The dialer checks again on every connection.
func (g *netGuard) checkURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return g.refuse("URL scheme %q is not allowed; use http:// or https://", u.Scheme)
	}
	if u.User != nil {
		return g.refuse("URLs with user names or passwords are not allowed")
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%w: URL %q has no host", ErrInvalidArgs, u.Redacted())
	}
	host, port := normalizeHost(u.Hostname()), urlPort(u)
	if metadataNames[host] {
		return g.refuse("%s is a cloud metadata service; agentd never connects to it", host)
	}
	if !g.allow.Allows(host, port) {
		return g.refuse("host %s is not allowed; allowed hosts are listed in %s", net.JoinHostPort(host, port), g.what)
	}
	return nil
}

func urlPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

const maxRedirects = 5

// client returns an HTTP client that uses the guard for every connection,
// never a proxy from the environment (it would bypass the checks and see
// the traffic), and follows redirects only to allowed hosts.
func (g *netGuard) client(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           g.dialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("%w: more than %d redirects", ErrRefused, maxRedirects)
			}
			if err := g.checkURL(req.URL); err != nil {
				return fmt.Errorf("redirect to %s: %w", req.URL.Redacted(), err)
			}
			return nil
		},
	}
}

func newDialer(timeout time.Duration) net.Dialer {
	return net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
}
