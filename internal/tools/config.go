package tools

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/agentd/agentd/internal/config"
)

// Deps are what NewFromConfig needs besides the config. Zero fields take
// their production default where one exists.
type Deps struct {
	Logger *slog.Logger
	// Now is the clock of the now tool; nil means time.Now.
	Now func() time.Time
	// LookupEnv reads agentd's environment for command tools' passthrough
	// variables and HTTP tools' header_env; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Lookup resolves host names for the HTTP tools; nil means the system
	// resolver.
	Lookup LookupFunc
	// Docs, Embedder and EmbedModel (models.embedding) are needed only when
	// tools.docs.folders is set.
	Docs       DocStore
	Embedder   Embedder
	EmbedModel string
}

// builtinNames are every built-in tool, enabled or not, so that
// tools.approval may name one that this config leaves off.
var builtinNames = []string{"calc", "now", "http_get", "http_post", "read_file", "list_dir", "sqlite_query", "search_docs"}

// NewFromConfig builds the registry: calc and now always; http_get and
// http_post when tools.http.enabled; read_file and list_dir when
// tools.files.roots is set; sqlite_query when tools.sqlite.databases is set;
// search_docs when tools.docs.folders is set (its Indexer is then returned by
// Registry.DocsIndexer, for the composition root to Run); then the command
// and HTTP tools from config; then the tools of each MCP server, named
// <server>_<tool> (the servers are started here and stopped by
// Registry.Close); then tools.approval overrides. Errors name the config key.
func NewFromConfig(cfg config.ToolsConfig, deps Deps) (*Registry, error) {
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := NewRegistry(log)
	fail := func(err error) (*Registry, error) {
		_ = r.Close()
		return nil, err
	}
	must := func(key string, t Tool) error {
		if err := r.Register(t); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	}

	if err := must("calc", Calc{}); err != nil {
		return fail(err)
	}
	if err := must("now", Now{Clock: deps.Now}); err != nil {
		return fail(err)
	}

	if cfg.HTTP.Enabled {
		if len(cfg.HTTP.AllowHosts) == 0 {
			return fail(fmt.Errorf("tools.http.allow_hosts: http_get and http_post are enabled but no host is allowed — list the hosts, like [\"api.example.org\", \"*.intranet.example\"]"))
		}
		o := HTTPOptions{AllowHosts: cfg.HTTP.AllowHosts, MaxBytes: int64(cfg.HTTP.MaxBytes), Timeout: cfg.HTTP.Timeout.D(), Lookup: deps.Lookup}
		get, err := NewHTTPGet(o)
		if err != nil {
			return fail(fmt.Errorf("tools.http.allow_hosts: %w", err))
		}
		post, err := NewHTTPPost(o)
		if err != nil {
			return fail(fmt.Errorf("tools.http.allow_hosts: %w", err))
		}
		if err := must("tools.http", get); err != nil {
			return fail(err)
		}
		if err := must("tools.http", post); err != nil {
			return fail(err)
		}
	}

	if len(cfg.Files.Roots) > 0 {
		fr, err := NewFileRoots(cfg.Files.Roots, int64(cfg.Files.MaxBytes))
		if err != nil {
			return fail(err)
		}
		fr.AllowHardLinks = cfg.Files.AllowHardLinks
		if err := must("tools.files", NewReadFile(fr)); err != nil {
			return fail(err)
		}
		if err := must("tools.files", NewListDir(fr)); err != nil {
			return fail(err)
		}
	}

	if len(cfg.SQLite.Databases) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		q, err := NewSQLiteQuery(ctx, cfg.SQLite.Databases, cfg.SQLite.MaxRows, 0)
		cancel()
		if err != nil {
			return fail(err)
		}
		if err := must("tools.sqlite", q); err != nil {
			_ = q.Close()
			return fail(err)
		}
	}

	if len(cfg.Docs.Folders) > 0 {
		ix, err := NewIndexer(deps.Docs, deps.Embedder, DocsOptions{
			Folders:      slices.Clone(cfg.Docs.Folders),
			Extensions:   slices.Clone(cfg.Docs.Extensions),
			ChunkChars:   cfg.Docs.ChunkChars,
			ChunkOverlap: cfg.Docs.ChunkOverlap,
			ReindexEvery: cfg.Docs.ReindexEvery.D(),
			TopK:         cfg.Docs.TopK,
			Model:        deps.EmbedModel,
		}, log)
		if err != nil {
			return fail(err)
		}
		if err := must("tools.docs", NewSearchDocs(ix)); err != nil {
			return fail(err)
		}
		r.indexer = ix
	}

	for i, c := range cfg.Command {
		key := fmt.Sprintf("tools.command[%d]", i)
		schema, err := schemaFromMap(c.ArgsSchema)
		if err != nil {
			return fail(fmt.Errorf("%s.args_schema: %w", key, err))
		}
		t, err := NewCommand(CommandOptions{
			Name: c.Name, Description: c.Description, Argv: c.Argv, ArgsSchema: schema,
			Timeout: c.Timeout.D(), OutputCap: int64(c.OutputCap), Env: c.Env, Dir: c.Dir,
			Idempotent: c.Idempotent, Approval: Approval(c.Approval), Concurrency: c.Concurrency,
			ConfigKey: key, LookupEnv: deps.LookupEnv, Logger: log,
		})
		if err != nil {
			return fail(err)
		}
		if err := must(key, t); err != nil {
			return fail(err)
		}
	}

	for i, h := range cfg.HTTPTool {
		key := fmt.Sprintf("tools.http_tool[%d]", i)
		schema, err := schemaFromMap(h.ArgsSchema)
		if err != nil {
			return fail(fmt.Errorf("%s.args_schema: %w", key, err))
		}
		t, err := NewHTTPTool(HTTPToolOptions{
			Name: h.Name, Description: h.Description, Method: h.Method, URL: h.URL,
			Headers: h.Headers, HeaderEnv: h.HeaderEnv, AllowHosts: cfg.HTTP.AllowHosts, ArgsSchema: schema,
			Timeout: h.Timeout.D(), MaxBytes: int64(h.MaxBytes), Idempotent: h.Idempotent,
			Approval: Approval(h.Approval), Concurrency: h.Concurrency,
			ConfigKey: key, LookupEnv: deps.LookupEnv, Lookup: deps.Lookup,
		})
		if err != nil {
			return fail(err)
		}
		if err := must(key, t); err != nil {
			return fail(err)
		}
	}

	for i, m := range cfg.MCP {
		key := fmt.Sprintf("tools.mcp[%d]", i)
		ctx, cancel := context.WithTimeout(context.Background(), mcpStartTimeout)
		srv, err := NewMCPServer(ctx, MCPOptions{
			Name: m.Name, Argv: m.Argv, URL: m.URL, AllowHosts: cfg.HTTP.AllowHosts, Lookup: deps.Lookup,
			Env: m.Env, Timeout: m.Timeout.D(), Approval: Approval(m.Approval),
			ConfigKey: key, LookupEnv: deps.LookupEnv, Logger: log,
		})
		cancel()
		if err != nil {
			return fail(err)
		}
		r.addCloser(srv)
		for _, t := range srv.Tools() {
			// A server's odd tool must not keep agentd from starting.
			if err := r.Register(t); err != nil {
				log.Warn("skip MCP tool", "config", key, "tool", t.Spec().Name, "error", err)
			}
		}
		// The registry follows the server's tool list as it changes.
		srv.Follow(func(old, tools []Tool) { r.Replace(old, tools, cfg.Approval) })
	}

	for _, name := range slices.Sorted(maps.Keys(cfg.Approval)) {
		key := "tools.approval." + name
		if _, ok := r.Get(name); !ok {
			if slices.Contains(builtinNames, name) {
				continue // a built-in this config leaves disabled
			}
			return fail(fmt.Errorf("%s: no tool is named %q; tools are %v", key, name, r.Names()))
		}
		if err := r.SetApproval(name, Approval(cfg.Approval[name])); err != nil {
			return fail(fmt.Errorf("%s: %w", key, err))
		}
	}
	log.Info("tools ready", "tools", r.Names())
	return r, nil
}
