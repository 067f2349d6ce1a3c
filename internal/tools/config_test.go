package tools

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
)

func TestNewFromConfigDefaults(t *testing.T) {
	r, err := NewFromConfig(config.Default().Tools, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !slices.Equal(r.Names(), []string{"calc", "now"}) || r.DocsIndexer() != nil {
		t.Fatalf("default tools = %v", r.Names())
	}
}

func fullToolsConfig(t *testing.T) (config.ToolsConfig, Deps) {
	t.Helper()
	cfg := config.Default().Tools
	cfg.HTTP.Enabled = true
	cfg.HTTP.AllowHosts = []string{"api.example.org"}
	cfg.Files.Roots = []string{t.TempDir()}
	cfg.SQLite.Databases = []config.NamedPath{{Name: "sales", Path: makeSalesDB(t)}}
	cfg.Docs.Folders = []string{t.TempDir()}
	cfg.Command = []config.CommandToolConfig{{
		Name: "echo_tool", Description: "Echo the arguments.", Argv: []string{echotoolPath, "echo"},
		ArgsSchema: map[string]any{
			"type":       "object",
			"properties": map[string]any{"city": map[string]any{"type": "string", "maxLength": int64(10)}},
			"required":   []any{"city"},
		},
		Timeout: config.Duration(5 * time.Second), Concurrency: 1, Idempotent: true,
	}}
	cfg.HTTPTool = []config.HTTPToolConfig{{
		Name: "get_item", Description: "Fetch an item.", URL: "https://items.example.org/v1/{id}",
		ArgsSchema: map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}}, "required": []any{"id"}},
		Approval:   "required",
	}}
	cfg.Approval = map[string]string{"echo_tool": "required", "http_post": "required", "get_item": "none"}
	store, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "agentd.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return cfg, Deps{Docs: store, Embedder: &bagOfWords{}, EmbedModel: "fake-embed"}
}

func TestNewFromConfigFull(t *testing.T) {
	cfg, deps := fullToolsConfig(t)
	r, err := NewFromConfig(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := []string{"calc", "echo_tool", "get_item", "http_get", "http_post", "list_dir", "now", "read_file", "search_docs", "sqlite_query"}
	if !slices.Equal(r.Names(), want) {
		t.Fatalf("tools = %v\nwant %v", r.Names(), want)
	}
	if r.DocsIndexer() == nil {
		t.Fatal("no docs indexer")
	}
	approvals := map[string]Approval{"echo_tool": ApprovalRequired, "http_post": ApprovalRequired, "get_item": ApprovalNone, "http_get": ApprovalNone}
	for name, a := range approvals {
		if s, _ := r.Spec(name); s.Approval != a {
			t.Errorf("%s approval = %q, want %q", name, s.Approval, a)
		}
	}
	if s, _ := r.Spec("echo_tool"); s.Concurrency != 1 || !s.Idempotent {
		t.Errorf("echo_tool spec = %+v", s)
	}
	// Every schema is usable by the planner.
	for _, s := range r.List() {
		var m map[string]any
		if err := json.Unmarshal(s.ArgsSchema, &m); err != nil || m["type"] != "object" {
			t.Errorf("%s schema %s: %v", s.Name, s.ArgsSchema, err)
		}
	}
	err = r.Validate("echo_tool", json.RawMessage(`{"city":"Llanfairpwllgwyngyll"}`))
	wantErr(t, err, ErrInvalidArgs, "args.city: maxLength")
	res, err := r.Call(context.Background(), "echo_tool", json.RawMessage(`{"city":"Oslo"}`))
	if err != nil || string(res.Output) != `{"city":"Oslo"}` {
		t.Fatalf("echo_tool = %s, %v", res.Output, err)
	}
	res, err = r.Call(context.Background(), "sqlite_query", json.RawMessage(`{"sql":"SELECT count(*) AS n FROM orders"}`))
	if err != nil || !strings.Contains(string(res.Output), `"rows":[[30]]`) {
		t.Fatalf("sqlite_query = %s, %v", res.Output, err)
	}
}

func TestNewFromConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*config.ToolsConfig, *Deps)
		want   string
	}{
		{"http without hosts", func(c *config.ToolsConfig, _ *Deps) { c.HTTP.AllowHosts = nil }, "tools.http.allow_hosts"},
		{"bad host", func(c *config.ToolsConfig, _ *Deps) { c.HTTP.AllowHosts = []string{"https://x"} }, "tools.http.allow_hosts"},
		{"missing root", func(c *config.ToolsConfig, _ *Deps) { c.Files.Roots = []string{"/nonexistent/agentd"} }, "tools.files.roots[0]"},
		{"missing database", func(c *config.ToolsConfig, _ *Deps) { c.SQLite.Databases[0].Path = "/nonexistent/x.db" }, "tools.sqlite.databases[0].path"},
		{"docs without embedder", func(_ *config.ToolsConfig, d *Deps) { d.Embedder = nil }, "tools.docs.folders"},
		{"docs without model", func(_ *config.ToolsConfig, d *Deps) { d.EmbedModel = "" }, "models.embedding"},
		{"command program missing", func(c *config.ToolsConfig, _ *Deps) { c.Command[0].Argv = []string{"/nonexistent/prog"} }, "tools.command[0].argv[0]"},
		{"command schema not an object", func(c *config.ToolsConfig, _ *Deps) { c.Command[0].ArgsSchema = map[string]any{"type": "string"} }, "tools.command[0]"},
		{"command name taken", func(c *config.ToolsConfig, _ *Deps) { c.Command[0].Name = "calc" }, "tools.command[0]: register tool calc"},
		{"http tool url", func(c *config.ToolsConfig, _ *Deps) { c.HTTPTool[0].URL = "https://{host}/x" }, "tools.http_tool[0].url"},
		{"mcp", func(c *config.ToolsConfig, _ *Deps) {
			c.MCP = []config.MCPServerConfig{{Name: "fs", Argv: []string{"mcp-fs"}}}
		}, "tools.mcp[0]"},
		{"approval for unknown tool", func(c *config.ToolsConfig, _ *Deps) { c.Approval["nope"] = "required" }, "tools.approval.nope"},
		{"approval value", func(c *config.ToolsConfig, _ *Deps) { c.Approval["calc"] = "maybe" }, "tools.approval.calc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, deps := fullToolsConfig(t)
			tt.mutate(&cfg, &deps)
			_, err := NewFromConfig(cfg, deps)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// Approval for a built-in this config leaves off is fine.
	cfg := config.Default().Tools
	cfg.Approval = map[string]string{"http_post": "required"}
	r, err := NewFromConfig(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}
