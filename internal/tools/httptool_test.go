package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHTTPTool(t *testing.T) {
	type seen struct {
		Method, RawPath, RawQuery, Auth, Static, Body string
	}
	var last seen
	other := newTestServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "other") })
	api := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		last = seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("X-Site"), string(b)}
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/missing"):
			http.Error(w, `{"error":"no such item"}`, http.StatusNotFound)
		case strings.HasPrefix(r.URL.Path, "/v1/away"):
			http.Redirect(w, r, other.URL+"/", http.StatusFound)
		case strings.HasPrefix(r.URL.Path, "/v1/huge"):
			io.WriteString(w, strings.Repeat("z", 5000))
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true}`)
		}
	})
	env := map[string]string{"ITEMS_TOKEN": "Bearer s3cret"}
	lookupEnv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	mk := func(t *testing.T, method, tmpl string) *HTTPTool {
		t.Helper()
		h, err := NewHTTPTool(HTTPToolOptions{
			Name: "items", Method: method, URL: api.URL + tmpl,
			Headers: map[string]string{"X-Site": "mine-7"}, HeaderEnv: map[string]string{"Authorization": "ITEMS_TOKEN"},
			MaxBytes: 1000, Timeout: time.Second, ConfigKey: "tools.http_tool[0]", LookupEnv: lookupEnv,
		})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	t.Run("GET fills and escapes the template", func(t *testing.T) {
		h := mk(t, "", "/v1/items/{id}?q={q}")
		out, err := call(t, h, `{"id":"a/b c","q":"x&y=z","limit":10,"flag":true}`)
		if err != nil {
			t.Fatal(err)
		}
		if out["status"] != 200.0 || fmt.Sprint(out["json"]) != "map[ok:true]" {
			t.Fatalf("out = %v", out)
		}
		want := seen{Method: "GET", RawPath: "/v1/items/a%2Fb%20c", Auth: "Bearer s3cret", Static: "mine-7"}
		got := last
		got.RawQuery = ""
		if got != want {
			t.Fatalf("request = %+v, want %+v", got, want)
		}
		// Unused arguments become query parameters, after the template's.
		if last.RawQuery != "flag=true&limit=10&q=x%26y%3Dz" {
			t.Fatalf("query = %q", last.RawQuery)
		}
	})
	t.Run("POST sends the unused arguments as JSON", func(t *testing.T) {
		h := mk(t, "POST", "/v1/items/{id}")
		if _, err := call(t, h, `{"id":7,"name":"pump","qty":2}`); err != nil {
			t.Fatal(err)
		}
		if last.Method != "POST" || last.RawPath != "/v1/items/7" || last.Body != `{"name":"pump","qty":2}` {
			t.Fatalf("request = %+v", last)
		}
	})
	t.Run("refusals and failures", func(t *testing.T) {
		h := mk(t, "GET", "/v1/{what}")
		_, err := call(t, h, `{"what":"missing"}`)
		wantErr(t, err, ErrFailed, "HTTP 404", "no such item")
		_, err = call(t, h, `{"what":"away"}`)
		wantErr(t, err, ErrRefused, "redirect", "not allowed")
		_, err = call(t, h, `{"what":"huge"}`)
		wantErr(t, err, ErrTooLarge, "tools.http_tool[0].max_bytes")
		for _, bad := range []string{`{"what":".."}`, `{"what":"."}`, `{"what":""}`} {
			_, err = call(t, h, bad)
			wantErr(t, err, ErrInvalidArgs, "cannot be a URL path segment")
		}
		_, err = call(t, h, `{}`)
		wantErr(t, err, ErrInvalidArgs, "args.what: missing property")
		_, err = call(t, h, `{"what":{"a":1}}`)
		wantErr(t, err, ErrInvalidArgs, "args.what")
	})
	t.Run("secret header value never in errors", func(t *testing.T) {
		h := mk(t, "GET", "/v1/{what}")
		_, err := call(t, h, `{"what":"missing"}`)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("err = %v", err)
		}
		spec, _ := json.Marshal(h.Spec())
		if strings.Contains(string(spec), "s3cret") {
			t.Fatal("secret in the spec")
		}
	})
}

func TestHTTPToolRebinding(t *testing.T) {
	// The tool's own host is allowed, but not at a loopback or metadata
	// address it resolves to.
	for ip, want := range map[string]string{"127.0.0.1": "loopback", "169.254.169.254": "metadata"} {
		h, err := NewHTTPTool(HTTPToolOptions{Name: "x", URL: "http://api.example.test/v1/{id}", Lookup: fakeDNS(map[string][]string{"api.example.test": {ip}})})
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.Call(context.Background(), json.RawMessage(`{"id":"1"}`))
		wantErr(t, err, ErrRefused, want)
	}
}

func TestNewHTTPToolErrors(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	tests := []struct {
		o    HTTPToolOptions
		want string
	}{
		{HTTPToolOptions{URL: "ftp://x.org/"}, "tools.http_tool[3].url"},
		{HTTPToolOptions{URL: "https://{host}/v1"}, "host must be written out"},
		{HTTPToolOptions{URL: "https://x.org.{tld}/v1"}, "host must be written out"},
		{HTTPToolOptions{URL: "https://user@x.org/v1"}, "host must be written out"},
		{HTTPToolOptions{URL: "https://x.org/v1", Method: "DELETE"}, "tools.http_tool[3].method"},
		{HTTPToolOptions{URL: "https://x.org/v1", HeaderEnv: map[string]string{"Authorization": "NOPE_TOKEN"}}, "tools.http_tool[3].header_env.Authorization: environment variable NOPE_TOKEN is not set"},
	}
	for _, tt := range tests {
		tt.o.Name, tt.o.ConfigKey, tt.o.LookupEnv = "x", "tools.http_tool[3]", noEnv
		if _, err := NewHTTPTool(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewHTTPTool(%s) = %v, want %q", tt.o.URL, err, tt.want)
		}
	}
}
