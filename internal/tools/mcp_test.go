package tools

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
)

func newFakeMCP(t *testing.T, timeout time.Duration) (*MCPServer, *Registry) {
	t.Helper()
	srv, err := NewMCPServer(context.Background(), MCPOptions{Name: "fs", Argv: []string{echotoolPath, "mcp"}, Timeout: timeout, ConfigKey: "tools.mcp[0]"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r := NewRegistry(nil)
	for _, tool := range srv.Tools() {
		if err := r.Register(tool); err != nil && tool.Spec().Name != "fs_broken" {
			t.Fatalf("register %s: %v", tool.Spec().Name, err)
		}
	}
	return srv, r
}

func TestMCPTools(t *testing.T) {
	srv, r := newFakeMCP(t, 300*time.Millisecond)
	ctx := context.Background()
	var names []string
	for _, tool := range srv.Tools() {
		names = append(names, tool.Spec().Name)
	}
	want := []string{"fs_echo", "fs_say_text", "fs_fail", "fs_slow", "fs_crash", "fs_env", "fs_broken"}
	if !slices.Equal(names, want) {
		t.Fatalf("tools = %v, want %v (both pages of tools/list)", names, want)
	}
	// The SDK offers its newest revision; this older server answers with
	// its own, and the session falls back to it.
	if v := srv.conn.cs.InitializeResult().ProtocolVersion; v != "2025-06-18" {
		t.Fatalf("negotiated protocol %q, want the server's 2025-06-18", v)
	}
	if s, _ := r.Spec("fs_echo"); !s.Idempotent || s.Description != "Echo the arguments." {
		t.Fatalf("fs_echo spec = %+v", s)
	}
	if s, _ := r.Spec("fs_fail"); s.Idempotent {
		t.Fatal("a tool without hints is idempotent")
	}
	if _, ok := r.Get("fs_broken"); ok {
		t.Fatal("a tool with a non-object schema was registered")
	}

	res, err := r.Call(ctx, "fs_echo", json.RawMessage(`{"msg":"hi"}`))
	if err != nil || string(res.Output) != `{"msg":"hi"}` {
		t.Fatalf("echo = %s, %v", res.Output, err)
	}
	_, err = r.Call(ctx, "fs_echo", json.RawMessage(`{}`))
	wantErr(t, err, ErrInvalidArgs, "args.msg: missing property")
	res, err = r.Call(ctx, "fs_say_text", nil)
	if err != nil || string(res.Output) != `{"text":"line one\n[image content omitted]"}` {
		t.Fatalf("say_text = %s, %v", res.Output, err)
	}
	_, err = r.Call(ctx, "fs_fail", nil)
	wantErr(t, err, ErrFailed, "disk on fire")

	// A call that never answers times out; the server stays usable.
	_, err = r.Call(ctx, "fs_slow", nil)
	wantErr(t, err, context.DeadlineExceeded)
	if _, err := r.Call(ctx, "fs_echo", json.RawMessage(`{"msg":"still there"}`)); err != nil {
		t.Fatal(err)
	}

	// No secret reaches the server.
	t.Setenv("AGENTD_TEST_SECRET", "hunter2")
	res, err = r.Call(ctx, "fs_env", nil)
	if err != nil || strings.Contains(string(res.Output), "hunter2") || !strings.Contains(string(res.Output), "PATH=") {
		t.Fatalf("env = %s, %v", res.Output, err)
	}

	// A crash fails the call with the server's last words; the next call
	// restarts it.
	pid := srv.conn.pid
	_, err = r.Call(ctx, "fs_crash", nil)
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("crash: %v", err)
	}
	waitDead(t, pid)
	if _, err := r.Call(ctx, "fs_echo", json.RawMessage(`{"msg":"again"}`)); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if srv.conn.pid == pid {
		t.Fatal("server was not restarted")
	}

	pid = srv.conn.pid
	if err := r.Close(); err != nil { // the registry does not own srv here
		t.Fatal(err)
	}
	srv.Close()
	waitDead(t, pid)
	if _, err := r.Call(ctx, "fs_echo", json.RawMessage(`{"msg":"x"}`)); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("after close: %v", err)
	}
}

func TestMCPFromConfig(t *testing.T) {
	cfg := config.Default().Tools
	cfg.MCP = []config.MCPServerConfig{{Name: "fs", Argv: []string{echotoolPath, "mcp"}, Approval: "required"}}
	cfg.Approval = map[string]string{"fs_echo": "none"}
	r, err := NewFromConfig(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	names := r.Names()
	if !slices.Contains(names, "fs_echo") || slices.Contains(names, "fs_broken") {
		t.Fatalf("tools = %v", names)
	}
	if s, _ := r.Spec("fs_fail"); s.Approval != ApprovalRequired {
		t.Fatalf("server approval not applied: %q", s.Approval)
	}
	if s, _ := r.Spec("fs_echo"); s.Approval != ApprovalNone {
		t.Fatalf("tools.approval override not applied: %q", s.Approval)
	}
	if _, err := r.Call(context.Background(), "fs_echo", json.RawMessage(`{"msg":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Call(context.Background(), "fs_echo", json.RawMessage(`{"msg":"x"}`)); err == nil {
		t.Fatal("call after Close succeeded")
	}
}

func TestMCPStartErrors(t *testing.T) {
	tests := []struct {
		argv []string
		want string
	}{
		{nil, "tools.mcp[2].argv"},
		{[]string{"/nonexistent/mcp"}, "tools.mcp[2].argv[0]"},
		{[]string{echotoolPath, "text"}, "MCP handshake"},       // prints text and exits
		{[]string{echotoolPath, "fail"}, "boom: the input had"}, // dies with a message
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := NewMCPServer(ctx, MCPOptions{Name: "x", Argv: tt.argv, ConfigKey: "tools.mcp[2]"})
		cancel()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewMCPServer(%v) = %v, want %q", tt.argv, err, tt.want)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("NewMCPServer(%v) waited for the timeout instead of noticing the exit", tt.argv)
		}
	}
}
