package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentd/agentd/internal/config"
)

// siteMCP is an in-process MCP server on 127.0.0.1, spoken to over
// Streamable HTTP, with the SDK's own server code.
type siteMCP struct {
	srv       *mcp.Server
	http      *httptest.Server
	hits      atomic.Int64
	started   chan struct{} // a call of wait began
	cancelled chan struct{} // a call of wait saw its context end
}

type greetIn struct {
	Name string `json:"name" jsonschema:"who to greet"`
}

type greetOut struct {
	Greeting string `json:"greeting"`
}

func newSiteMCP(t *testing.T) *siteMCP {
	t.Helper()
	s := &siteMCP{started: make(chan struct{}, 1), cancelled: make(chan struct{}, 1)}
	s.srv = mcp.NewServer(&mcp.Implementation{Name: "site", Version: "1"}, nil)
	mcp.AddTool(s.srv, &mcp.Tool{Name: "greet", Description: "Greet someone.", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(_ context.Context, _ *mcp.CallToolRequest, in greetIn) (*mcp.CallToolResult, greetOut, error) {
			return nil, greetOut{Greeting: "hello, " + in.Name}, nil
		})
	mcp.AddTool(s.srv, &mcp.Tool{Name: "wait", Description: "Waits until cancelled."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			s.started <- struct{}{}
			<-ctx.Done()
			s.cancelled <- struct{}{}
			return nil, nil, ctx.Err()
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.srv }, nil)
	s.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.http.Close)
	return s
}

func (s *siteMCP) hostPort() string { return s.http.Listener.Addr().String() }

func TestMCPHTTP(t *testing.T) {
	site := newSiteMCP(t)
	cfg := config.Default().Tools
	cfg.HTTP.AllowHosts = []string{site.hostPort()}
	cfg.MCP = []config.MCPServerConfig{{Name: "site", URL: site.http.URL + "/mcp"}}
	r, err := NewFromConfig(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if !slices.Contains(r.Names(), "site_greet") || !slices.Contains(r.Names(), "site_wait") {
		t.Fatalf("tools = %v", r.Names())
	}
	if s, _ := r.Spec("site_greet"); !s.Idempotent || s.Description != "Greet someone." {
		t.Fatalf("site_greet spec = %+v", s)
	}
	res, err := r.Call(context.Background(), "site_greet", json.RawMessage(`{"name":"Ada"}`))
	if err != nil || string(res.Output) != `{"greeting":"hello, Ada"}` {
		t.Fatalf("greet = %s, %v", res.Output, err)
	}

	// A cancelled run cancels the call, and the cancellation reaches the
	// server's handler.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := r.Call(ctx, "site_wait", nil)
		errc <- err
	}()
	<-site.started
	cancel()
	wantErr(t, <-errc, context.Canceled)
	<-site.cancelled
	if _, err := r.Call(context.Background(), "site_greet", json.RawMessage(`{"name":"Bo"}`)); err != nil {
		t.Fatalf("after a cancelled call: %v", err)
	}
}

func TestMCPHTTPRefusesHostOffAllowlist(t *testing.T) {
	site := newSiteMCP(t)
	for _, allow := range [][]string{nil, {"api.example.org"}, {"127.0.0.1:1"}} {
		t.Run(fmt.Sprint(allow), func(t *testing.T) {
			cfg := config.Default().Tools
			cfg.HTTP.AllowHosts = allow
			cfg.MCP = []config.MCPServerConfig{{Name: "site", URL: site.http.URL + "/mcp"}}
			_, err := NewFromConfig(cfg, Deps{})
			wantErr(t, err, ErrRefused, "tools.mcp[0].url", site.hostPort(), "tools.http.allow_hosts")
		})
	}
	if n := site.hits.Load(); n != 0 {
		t.Fatalf("the server was reached %d times", n)
	}
}

// When the server says its tools changed, the registry follows: new tools
// appear, removed ones go, others are untouched.
func TestMCPToolListChanged(t *testing.T) {
	site := newSiteMCP(t)
	srv, err := NewMCPServer(context.Background(), MCPOptions{
		Name: "site", URL: site.http.URL + "/mcp", AllowHosts: []string{site.hostPort()}, ConfigKey: "tools.mcp[0]",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r := NewRegistry(nil)
	if err := r.Register(Calc{}); err != nil {
		t.Fatal(err)
	}
	for _, tool := range srv.Tools() {
		if err := r.Register(tool); err != nil {
			t.Fatal(err)
		}
	}
	changed := make(chan struct{})
	srv.Follow(func(old, tools []Tool) {
		r.Replace(old, tools, map[string]string{"site_bye": "required"})
		changed <- struct{}{}
	})

	mcp.AddTool(site.srv, &mcp.Tool{Name: "bye", Description: "Say goodbye."},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, greetOut, error) {
			return nil, greetOut{Greeting: "bye"}, nil
		})
	<-changed
	if want := []string{"calc", "site_bye", "site_greet", "site_wait"}; !slices.Equal(r.Names(), want) {
		t.Fatalf("after add: tools = %v, want %v", r.Names(), want)
	}
	if s, _ := r.Spec("site_bye"); s.Approval != ApprovalRequired {
		t.Fatalf("tools.approval not applied to a new tool: %q", s.Approval)
	}
	res, err := r.Call(context.Background(), "site_bye", nil)
	if err != nil || !strings.Contains(string(res.Output), "bye") {
		t.Fatalf("bye = %s, %v", res.Output, err)
	}

	site.srv.RemoveTools("greet")
	<-changed
	if want := []string{"calc", "site_bye", "site_wait"}; !slices.Equal(r.Names(), want) {
		t.Fatalf("after remove: tools = %v, want %v", r.Names(), want)
	}
	if _, err := r.Call(context.Background(), "site_greet", nil); !errors.Is(err, ErrUnknownTool) {
		t.Fatalf("removed tool: %v", err)
	}
}
