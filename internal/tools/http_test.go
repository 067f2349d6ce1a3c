package tools

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// hostPort returns the 127.0.0.1:port of a test server.
func hostPort(t *testing.T, s *httptest.Server) string {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// fakeDNS answers from a fixed table, like a resolver under an attacker's
// control would.
func fakeDNS(table map[string][]string) LookupFunc {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		ips, ok := table[host]
		if !ok {
			return nil, fmt.Errorf("no such host %s", host)
		}
		var out []netip.Addr
		for _, s := range ips {
			out = append(out, netip.MustParseAddr(s))
		}
		return out, nil
	}
}

func newTestServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestHTTPGet(t *testing.T) {
	const limit = 1000
	var hits atomic.Int64 // the servers' handlers run on their own goroutines
	api := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/json":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"temp": 21, "city": "Oslo"}`)
		case "/text":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "hello")
		case "/missing":
			http.Error(w, "no such page", http.StatusNotFound)
		case "/exact":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, strings.Repeat("a", limit))
		case "/big":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, strings.Repeat("a", limit+1))
		case "/big-chunked":
			w.Header().Set("Content-Type", "text/plain")
			for range 10 {
				io.WriteString(w, strings.Repeat("b", 200))
				w.(http.Flusher).Flush()
			}
		case "/binary":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write([]byte{0xff, 0xfe, 0xfd})
		case "/slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"method":%q,"type":%q,"body":%q}`, r.Method, r.Header.Get("Content-Type"), b)
		}
	})
	other := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "you should not see this")
	})
	redirector := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-other":
			http.Redirect(w, r, other.URL+"/", http.StatusFound)
		case "/to-api":
			http.Redirect(w, r, api.URL+"/text", http.StatusFound)
		case "/to-metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/to-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	})
	apiHP, redirHP := hostPort(t, api), hostPort(t, redirector)
	_, apiPort, _ := strings.Cut(apiHP, ":")
	dns := fakeDNS(map[string][]string{
		"rebind.test": {"127.0.0.1"},
		"meta.test":   {"169.254.169.254"},
		"mixed.test":  {"10.0.0.1", "169.254.169.254"},
		"v6meta.test": {"fd00:ec2::254"},
		"localhost":   {"127.0.0.1"},
	})
	opts := HTTPOptions{
		AllowHosts: []string{apiHP, redirHP, "rebind.test", "meta.test", "mixed.test", "v6meta.test", "localhost:" + apiPort,
			"metadata.google.internal", "169.254.169.254", "224.0.0.1",
			"0.0.0.0:" + apiPort, "[::]:" + apiPort, "169.254.1.1", "fe80::1"},
		MaxBytes: limit,
		Timeout:  300 * time.Millisecond,
		Lookup:   dns,
	}
	get, err := NewHTTPGet(opts)
	if err != nil {
		t.Fatal(err)
	}
	post, err := NewHTTPPost(opts)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("json", func(t *testing.T) {
		out, err := call(t, get, `{"url":"`+api.URL+`/json"}`)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := out["json"].(map[string]any)
		if out["status"] != 200.0 || j["city"] != "Oslo" || out["body"] != nil {
			t.Fatalf("out = %v", out)
		}
	})
	t.Run("text and error status", func(t *testing.T) {
		out, err := call(t, get, `{"url":"`+api.URL+`/text"}`)
		if err != nil || out["body"] != "hello" || !strings.HasPrefix(out["content_type"].(string), "text/plain") {
			t.Fatalf("out = %v, %v", out, err)
		}
		out, err = call(t, get, `{"url":"`+api.URL+`/missing"}`)
		if err != nil || out["status"] != 404.0 {
			t.Fatalf("404: out = %v, %v", out, err)
		}
	})
	t.Run("loopback by name when allowlisted as localhost", func(t *testing.T) {
		out, err := call(t, get, `{"url":"http://localhost:`+apiPort+`/text"}`)
		if err != nil || out["body"] != "hello" {
			t.Fatalf("out = %v, %v", out, err)
		}
	})
	t.Run("binary", func(t *testing.T) {
		out, err := call(t, get, `{"url":"`+api.URL+`/binary"}`)
		if err != nil || !strings.Contains(out["note"].(string), "binary content (3 bytes)") {
			t.Fatalf("out = %v, %v", out, err)
		}
	})
	t.Run("size limit", func(t *testing.T) {
		out, err := call(t, get, `{"url":"`+api.URL+`/exact"}`)
		if err != nil || len(out["body"].(string)) != limit {
			t.Fatalf("exactly the limit: %v", err)
		}
		_, err = call(t, get, `{"url":"`+api.URL+`/big"}`)
		wantErr(t, err, ErrTooLarge, "limit of 1000 bytes", "tools.http.max_bytes")
		_, err = call(t, get, `{"url":"`+api.URL+`/big-chunked"}`)
		wantErr(t, err, ErrTooLarge, "limit of 1000 bytes")
	})
	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		_, err := call(t, get, `{"url":"`+api.URL+`/slow"}`)
		if err == nil || time.Since(start) > 3*time.Second {
			t.Fatalf("slow: err = %v after %s", err, time.Since(start))
		}
	})
	t.Run("post", func(t *testing.T) {
		out, err := call(t, post, `{"url":"`+api.URL+`/echo","body":{"a":1}}`)
		j, _ := out["json"].(map[string]any)
		if err != nil || j["method"] != "POST" || j["type"] != "application/json" || j["body"] != `{"a":1}` {
			t.Fatalf("post json: %v, %v", out, err)
		}
		out, err = call(t, post, `{"url":"`+api.URL+`/echo","body":"a,b\n1,2","content_type":"text/csv"}`)
		j, _ = out["json"].(map[string]any)
		if err != nil || j["type"] != "text/csv" || j["body"] != "a,b\n1,2" {
			t.Fatalf("post text: %v, %v", out, err)
		}
		_, err = call(t, post, `{"url":"`+api.URL+`/echo","body":"`+strings.Repeat("x", limit+1)+`"}`)
		wantErr(t, err, ErrTooLarge, "request body")
	})
	t.Run("redirect to allowed host", func(t *testing.T) {
		out, err := call(t, get, `{"url":"`+redirector.URL+`/to-api"}`)
		if err != nil || out["body"] != "hello" || out["url"] != api.URL+"/text" {
			t.Fatalf("out = %v, %v", out, err)
		}
	})

	before := hits.Load()
	refusals := []struct {
		name string
		url  string
		want []string
	}{
		{"host not allowed", other.URL + "/", []string{"not allowed", "tools.http.allow_hosts"}},
		{"port not allowed", "http://localhost:1/", []string{"not allowed"}},
		{"redirect to host not allowed", redirector.URL + "/to-other", []string{"redirect", "not allowed"}},
		{"redirect to metadata", redirector.URL + "/to-metadata", []string{"169.254.169.254", "metadata"}},
		{"redirect to file", redirector.URL + "/to-file", []string{"scheme"}},
		{"redirect loop", redirector.URL + "/loop", []string{"redirects"}},
		{"DNS rebinding to loopback", "http://rebind.test:" + apiPort + "/json", []string{"rebind.test resolves to 127.0.0.1", "loopback"}},
		{"name resolving to metadata", "http://meta.test/", []string{"metadata"}},
		{"IPv6 metadata", "http://v6meta.test/", []string{"fd00:ec2::254", "metadata"}},
		{"mixed answer", "http://mixed.test/", []string{"169.254.169.254"}},
		{"metadata name", "http://metadata.google.internal/computeMetadata/v1/", []string{"metadata service"}},
		{"metadata literal", "http://169.254.169.254/latest/meta-data/", []string{"metadata"}},
		{"multicast", "http://224.0.0.1/", []string{"multicast"}},
		{"unspecified IPv4 (reaches localhost on Linux)", "http://0.0.0.0:" + apiPort + "/json", []string{"unspecified"}},
		{"unspecified IPv6", "http://[::]:" + apiPort + "/json", []string{"unspecified"}},
		{"link-local IPv4", "http://169.254.1.1/", []string{"link-local"}},
		{"link-local IPv6", "http://[fe80::1]/", []string{"link-local"}},
		{"loopback literal not allowlisted", "http://127.0.0.2:" + apiPort + "/", []string{"not allowed"}},
		{"file scheme", "file:///etc/passwd", []string{"scheme"}},
		{"credentials in URL", "http://user:pw@" + apiHP + "/json", []string{"passwords"}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			_, err := call(t, get, `{"url":"`+tt.url+`"}`)
			wantErr(t, err, ErrRefused, tt.want...)
		})
	}
	if n := hits.Load(); n != before {
		t.Fatalf("a refused request reached a server (%d hits)", n-before)
	}
}

func TestNewHTTPRejectsBadAllowlist(t *testing.T) {
	if _, err := NewHTTPGet(HTTPOptions{AllowHosts: []string{"https://x.org"}}); err == nil {
		t.Fatal("URL accepted as an allowlist entry")
	}
}
