package api

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// send sends one request with the given headers (Host may be set) and
// returns the status and the error code of the JSON body.
func (env *testEnv) send(method, path, body string, hdr map[string]string) (int, string) {
	env.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, env.url+path, r)
	if err != nil {
		env.t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		env.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e ErrorBody
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error.Code
}

func TestDNSRebindingIsRefused(t *testing.T) {
	for _, auth := range []bool{true, false} {
		name := map[bool]string{true: "token", false: "none"}[auth]
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t, func(c *Config, _ *Deps) {
				c.AuthRequired = auth
				c.AllowedHosts = []string{"agentd.lan"}
			})
			port := env.url[strings.LastIndexByte(env.url, ':')+1:]
			bearer := "Bearer " + env.token
			for _, host := range []string{"evil.example:" + port, "evil.example", "127.0.0.1.evil.example:" + port} {
				if st, code := env.send("GET", "/api/v1/runs", "", map[string]string{"Host": host, "Authorization": bearer}); st != http.StatusMisdirectedRequest || code != "bad_host" {
					t.Errorf("GET /api/v1/runs with Host %s: %d %q, want 421 bad_host", host, st, code)
				}
				if st, code := env.send("POST", "/api/v1/runs", `{"request":"x"}`, map[string]string{"Host": host, "Authorization": bearer,
					"Content-Type": "application/json", "Origin": "http://" + host}); st != http.StatusMisdirectedRequest || code != "bad_host" {
					t.Errorf("POST /api/v1/runs with Host %s: %d %q", host, st, code)
				}
			}
			// The event stream: a rebinding page's Origin equals its Host,
			// which the old check took for the same origin.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			_, resp, err := env.dial(ctx, "", &websocket.DialOptions{Host: "evil.example:" + port,
				HTTPHeader: http.Header{"Origin": {"http://evil.example:" + port}, "Authorization": {bearer}}})
			if err == nil || resp == nil || resp.StatusCode != http.StatusMisdirectedRequest {
				t.Errorf("event stream with Host evil.example: err %v resp %v, want 421", err, resp)
			}
			for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "[::1]:" + port, "agentd.lan:" + port} {
				if st, _ := env.send("GET", "/api/v1/runs", "", map[string]string{"Host": host, "Authorization": bearer}); st != 200 {
					t.Errorf("GET with Host %s: %d, want 200", host, st)
				}
			}
		})
	}
}

func TestCrossOriginWritesAreRefused(t *testing.T) {
	tests := []struct {
		name   string
		auth   bool
		hdr    func(env *testEnv) map[string]string
		body   string
		status int
	}{
		{"auth none: cross-site text/plain form", false, func(env *testEnv) map[string]string {
			return map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"}
		}, `{"request":"x"}`, 403},
		{"auth none: page on another port of the same host", false, func(env *testEnv) map[string]string {
			return map[string]string{"Origin": "http://127.0.0.1:1", "Content-Type": "application/json"}
		}, `{"request":"x"}`, 403},
		{"auth none: null origin", false, func(env *testEnv) map[string]string {
			return map[string]string{"Origin": "null", "Content-Type": "application/json"}
		}, `{"request":"x"}`, 403},
		{"auth none: cross-site fetch without Origin", false, func(env *testEnv) map[string]string {
			return map[string]string{"Sec-Fetch-Site": "same-site", "Content-Type": "text/plain"}
		}, `{"request":"x"}`, 403},
		{"auth none: own page", false, func(env *testEnv) map[string]string {
			return map[string]string{"Origin": env.url, "Content-Type": "application/json"}
		}, `{"request":"x"}`, 201},
		{"auth none: not a browser", false, func(env *testEnv) map[string]string {
			return map[string]string{"Content-Type": "application/json"}
		}, `{"request":"x"}`, 201},
		{"cookie: another port", true, func(env *testEnv) map[string]string {
			return map[string]string{"Cookie": SessionCookie + "=" + env.token, "Origin": "http://127.0.0.1:1", "Content-Type": "application/json"}
		}, `{"request":"x"}`, 403},
		{"cookie: no Origin, no Sec-Fetch-Site", true, func(env *testEnv) map[string]string {
			return map[string]string{"Cookie": SessionCookie + "=" + env.token, "Content-Type": "application/json"}
		}, `{"request":"x"}`, 403},
		{"cookie: same origin but a form's content type", true, func(env *testEnv) map[string]string {
			return map[string]string{"Cookie": SessionCookie + "=" + env.token, "Origin": env.url, "Content-Type": "text/plain"}
		}, `{"request":"x"}`, 415},
		{"cookie: same origin JSON", true, func(env *testEnv) map[string]string {
			return map[string]string{"Cookie": SessionCookie + "=" + env.token, "Origin": env.url, "Content-Type": "application/json; charset=utf-8"}
		}, `{"request":"x"}`, 201},
		{"cookie: Sec-Fetch-Site same-origin JSON", true, func(env *testEnv) map[string]string {
			return map[string]string{"Cookie": SessionCookie + "=" + env.token, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}
		}, `{"request":"x"}`, 201},
		{"bearer: no Origin", true, func(env *testEnv) map[string]string {
			return map[string]string{"Authorization": "Bearer " + env.token, "Content-Type": "application/json"}
		}, `{"request":"x"}`, 201},
		{"bearer: lowercase scheme (RFC 7235)", true, func(env *testEnv) map[string]string {
			return map[string]string{"Authorization": "bearer " + env.token, "Content-Type": "application/json"}
		}, `{"request":"x"}`, 201},
		{"bearer: foreign Origin", true, func(env *testEnv) map[string]string {
			return map[string]string{"Authorization": "Bearer " + env.token, "Origin": "http://evil.example", "Content-Type": "application/json"}
		}, `{"request":"x"}`, 403},
	}
	envs := map[bool]*testEnv{}
	for _, auth := range []bool{true, false} {
		envs[auth] = newTestEnv(t, func(c *Config, _ *Deps) { c.AuthRequired = auth })
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := envs[tc.auth]
			before := len(env.engine.submittedCopy())
			st, code := env.send("POST", "/api/v1/runs", tc.body, tc.hdr(env))
			if st != tc.status {
				t.Fatalf("status %d (%s), want %d", st, code, tc.status)
			}
			if got := len(env.engine.submittedCopy()) - before; (st == 201) != (got == 1) {
				t.Fatalf("status %d but %d runs submitted", st, got)
			}
		})
	}
	// The OpenAI endpoint and approvals are writes like any other.
	env := envs[false]
	if st, _ := env.send("POST", "/v1/chat/completions", `{"model":"agentd","messages":[{"role":"user","content":"hi"}]}`,
		map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"}); st != 403 {
		t.Errorf("cross-site chat completion: %d, want 403", st)
	}
	if st, _ := env.send("POST", "/api/v1/approvals/run001/send", `{"decision":"approve"}`,
		map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"}); st != 403 {
		t.Errorf("cross-site approval: %d, want 403", st)
	}
}

func TestStreamOriginIsCheckedAgainstTheAllowlist(t *testing.T) {
	env := newTestEnv(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	port := env.url[strings.LastIndexByte(env.url, ':')+1:]
	bearer := "Bearer " + env.token
	for origin, want := range map[string]int{
		"http://127.0.0.1:1":          403, // another port: another origin
		"http://localhost:" + port:    403, // Host is 127.0.0.1: another origin
		"ftp://127.0.0.1:" + port:     403,
		"http://127.0.0.1:" + port:    0,
		"http://evil.example:" + port: 403,
	} {
		c, resp, err := env.dial(ctx, "", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}, "Authorization": {bearer}}})
		if want == 0 {
			if err != nil {
				t.Errorf("origin %s refused: %v", origin, err)
				continue
			}
			c.CloseNow()
			continue
		}
		if err == nil {
			c.CloseNow()
			t.Errorf("origin %s accepted", origin)
		} else if resp == nil || resp.StatusCode != want {
			t.Errorf("origin %s: %v %v, want %d", origin, err, resp, want)
		}
	}
}

// TestSlowClientsAreCut trickles a body (and, separately, headers) to the
// unauthenticated login route: every connection is closed within the
// stated timeouts, and one address cannot hold more than its share.
func TestSlowClientsAreCut(t *testing.T) {
	const (
		bodyTimeout   = 300 * time.Millisecond
		headerTimeout = 300 * time.Millisecond
		perIP         = 4
		conns         = 40
		bound         = 2 * time.Second // timeout + the scheduling of 40 conns on a busy 2-core box
	)
	env := newTestEnv(t, func(c *Config, _ *Deps) {
		c.BodyTimeout, c.ReadHeaderTimeout, c.MaxUnauthenticatedPerIP = bodyTimeout, headerTimeout, perIP
	})
	addr := strings.TrimPrefix(env.url, "http://")
	type result struct {
		held   time.Duration
		status string
	}
	results := make([]result, conns+1)
	var wg sync.WaitGroup
	trickle := func(i int, head string) {
		defer wg.Done()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		start := time.Now()
		_ = c.SetDeadline(start.Add(10 * time.Second))
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			if _, err := io.WriteString(c, head); err != nil {
				return
			}
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
		br := bufio.NewReader(c)
		line, _ := br.ReadString('\n')
		_, _ = io.Copy(io.Discard, br) // until the server closes
		results[i] = result{held: time.Since(start), status: strings.TrimSpace(line)}
	}
	body := "POST /api/v1/login HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"token\":"
	wg.Add(conns + 1)
	for i := range conns {
		go trickle(i, body)
	}
	go trickle(conns, "POST /api/v1/login HTTP/1.1\r\nHost: "+addr+"\r\n") // headers never end
	wg.Wait()
	limited := 0
	for i, r := range results {
		if r.held > bound {
			t.Errorf("connection %d held %s (status %q), want closed within %s", i, r.held, r.status, bound)
		}
		if strings.Contains(r.status, " 200 ") {
			t.Errorf("connection %d: a trickled login succeeded: %q", i, r.status)
		}
		if strings.Contains(r.status, " 429 ") {
			limited++
		}
	}
	if limited < conns-2*perIP {
		t.Errorf("%d of %d connections were refused by the per-address limit of %d", limited, conns, perIP)
	}
	// A long answer after a quick body is not cut by the body deadline.
	env.engine.mu.Lock()
	env.engine.stepDelay = 150 * time.Millisecond
	env.engine.mu.Unlock()
	resp, b := env.do("POST", "/api/v1/runs", `{"request":"slow","wait":true}`, true)
	if resp.StatusCode != 201 || !strings.Contains(string(b), `"done"`) {
		t.Errorf("waited submit: %d %s", resp.StatusCode, b)
	}
}

func TestSubmitWorkflowAloneAndParams(t *testing.T) {
	env := newTestEnv(t)
	resp, b := env.do("POST", "/api/v1/runs", `{"workflow":"triage","params":{"ticket":"T-1","max":3}}`, true)
	if resp.StatusCode != 201 {
		t.Fatalf("workflow alone: %d %s", resp.StatusCode, b)
	}
	got := env.engine.submittedCopy()
	if len(got) != 1 || got[0].Workflow != "triage" || got[0].Params["ticket"] != "T-1" ||
		got[0].Request != `Run workflow triage with parameters {"max":3,"ticket":"T-1"}` {
		t.Fatalf("submitted %+v", got)
	}
	resp, b = env.do("POST", "/api/v1/runs", `{"workflow":"  "}`, true)
	if resp.StatusCode != 400 {
		t.Errorf("blank workflow: %d %s", resp.StatusCode, b)
	}
}

// selfSigned returns a TLS certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agentd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

func TestServesHTTPS(t *testing.T) {
	cert, pool := selfSigned(t)
	env := newTestEnv(t, func(c *Config, _ *Deps) { c.TLS = &tls.Config{Certificates: []tls.Certificate{cert}} })
	url := strings.Replace(env.url, "http://", "https://", 1)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("POST", url+"/api/v1/login", strings.NewReader(`{"token":"`+env.token+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", url)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("login over TLS: %d", resp.StatusCode)
	}
	var secure bool
	for _, c := range resp.Cookies() {
		secure = secure || (c.Name == SessionCookie && c.Secure)
	}
	if !secure {
		t.Error("the session cookie over TLS is not Secure")
	}
	// Plain HTTP on the TLS port gets nowhere.
	if r, err := http.Get(env.url + "/healthz"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Error("plain HTTP answered on the TLS listener")
		}
	}
}
