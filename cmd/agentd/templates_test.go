package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/api"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/plancache"
	agentrun "github.com/agentd/agentd/internal/run"
)

// learnStockTemplate teaches a plan cache on the database at dbPath one
// stock-check template, as a run that ended done would, and returns the
// cache and the template's id.
func learnStockTemplate(t *testing.T, dbPath, use string) (*plancache.Cache, *db.Store, string) {
	t.Helper()
	store, err := db.Open(t.Context(), dbPath, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cache, err := plancache.Open(t.Context(), config.PlanCacheConfig{Enabled: true, Use: use, MaxTemplates: 10, RetireAfter: 2}, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &plan.Plan{Goal: "stock", Answer: "Say how many units of W-100 the east warehouse has.",
		Steps: []plan.Step{{ID: "stock", Tool: "get_stock", Args: map[string]any{"sku": "W-100", "warehouse": "east"}}}}
	cache.Ended(t.Context(), plancache.Outcome{RunID: "r_learn", Request: "Stock check for SKU W-100 in the east warehouse",
		Status: agentrun.Done, Plan: p, PlanVersion: 1, PlanSource: "local"})
	list := cache.List()
	if len(list) != 1 {
		t.Fatalf("learned %d templates, want 1", len(list))
	}
	return cache, store, list[0].ID
}

// templateServer serves the real API routes over a real plan cache; the
// run engine is not used by the template commands.
func templateServer(t *testing.T, cache *plancache.Cache) (url, token string) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	tf, err := api.LoadOrCreateToken(filepath.Join(t.TempDir(), "token"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Config{AuthRequired: true, MaxRequestBytes: 64 << 10, ShutdownTimeout: 2 * time.Second}, ln, tf,
		func(context.Context) any { return map[string]any{} }, nil, quiet)
	deps := api.Deps{Engine: struct{ api.Engine }{}, Runs: struct{ api.RunReader }{}, Events: events.New(nil, 16, quiet), Templates: cache}
	if err := api.RegisterRoutes(srv, deps); err != nil {
		t.Fatal(err)
	}
	srv.SetReady(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String(), tf.Token()
}

// The template commands list, show, approve, pin, edit and delete a
// learned template through the daemon's API.
func TestTemplatesCommand(t *testing.T) {
	cache, store, id := learnStockTemplate(t, filepath.Join(t.TempDir(), "agentd.db"), "approved")
	defer store.Close()
	url, token := templateServer(t, cache)
	cfg := writeConfig(t, "")
	cli := func(stdin string, args ...string) (string, int) {
		var out bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &out, Stdin: strings.NewReader(stdin), Getenv: func(string) string { return "" }}
		code := m.Run(context.Background(), append(args, "--config", cfg, "--addr", url, "--token", token))
		return out.String(), code
	}

	out, code := cli("", "templates")
	for _, want := range []string{"ID", "SUCCESS", id, "learned_get_stock", "pending", "100%", "local", "agentd templates approve ID"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("templates (exit %d) lacks %q:\n%s", code, want, out)
		}
	}
	out, code = cli("", "templates", "show", id)
	for _, want := range []string{"Stock check for SKU {{sku}} in the {{warehouse}} warehouse", "W-100", "get_stock", `"sku":"{{sku}}"`,
		"Answer pattern:  none", "r_learn", "sku=W-100, warehouse=east", "agentd templates approve " + id} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("templates show (exit %d) lacks %q:\n%s", code, want, out)
		}
	}

	out, code = cli("", "templates", "approve", id)
	if got, _ := cache.Get(id); code != 0 || got.State != plancache.Active || got.ApprovedBy != "api" || !strings.Contains(out, "approved template") {
		t.Errorf("approve (exit %d): %+v\n%s", code, got, out)
	}
	if out, code = cli("", "templates", "pin", id); code != 0 || !strings.Contains(out, "pinned") {
		t.Errorf("pin (exit %d):\n%s", code, out)
	}
	out, code = cli("", "templates", "show", id, "--json")
	var v api.TemplateView
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || !v.Pinned || v.SuccessRate != 1 {
		t.Errorf("show --json (exit %d):\n%s", code, out)
	}

	edit := filepath.Join(t.TempDir(), "edit.json")
	if err := os.WriteFile(edit, []byte(`{"name":"stock_check","answer_pattern":"{{sku}}: ${stock.units} units"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = cli("", "templates", "edit", id, "--file", edit)
	if got, _ := cache.Get(id); code != 0 || got.Name != "stock_check" || got.Workflow.AnswerPattern == "" {
		t.Errorf("edit (exit %d): %+v\n%s", code, got, out)
	}
	if out, code = cli(`{"phrasings":["{{sku}}"]}`, "templates", "edit", id, "--file", "-"); code != 2 || !strings.Contains(out, "would match too much") {
		t.Errorf("a bad edit (exit %d, want 2):\n%s", code, out)
	}
	if out, code = cli("", "templates", "edit", id); code != 2 || !strings.Contains(out, "--file") {
		t.Errorf("edit without --file (exit %d, want 2):\n%s", code, out)
	}
	if out, code = cli("", "templates", "disable", "tpl-nope"); code != 1 || !strings.Contains(out, "no template tpl-nope") {
		t.Errorf("unknown id (exit %d, want 1):\n%s", code, out)
	}
	if out, code = cli("", "templates", "retire", id); code != 2 {
		t.Errorf("unknown verb (exit %d, want 2):\n%s", code, out)
	}
	if out, code = cli("", "templates", "delete", id); code != 0 || len(cache.List()) != 0 {
		t.Errorf("delete (exit %d):\n%s", code, out)
	}
	if out, code = cli("", "templates"); code != 0 || !strings.Contains(out, "no learned templates yet") {
		t.Errorf("empty list (exit %d):\n%s", code, out)
	}
}

// Without a plan cache the commands pass on the daemon's reason.
func TestTemplatesCommandCacheOff(t *testing.T) {
	url, token := templateServer(t, nil)
	cfg := writeConfig(t, "")
	var out bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &out, Stdin: strings.NewReader(""), Getenv: func(string) string { return "" }}
	if code := m.Run(context.Background(), []string{"templates", "--config", cfg, "--addr", url, "--token", token}); code != 1 || !strings.Contains(out.String(), "[planner.cache]") {
		t.Errorf("exit %d:\n%s", code, out.String())
	}
}

// `agentd export workflows` reads the learned templates from the
// database with no daemon running; what it prints, pasted into a config,
// loads and compiles as workflow templates.
func TestExportWorkflows(t *testing.T) {
	state := t.TempDir()
	_, store, _ := learnStockTemplate(t, filepath.Join(state, "agentd.db"), "auto")
	store.Close()
	base := fmt.Sprintf("[storage]\nstate_dir = %q\n[vram]\nprobe = \"none\"\n", state)
	cfg := writeConfig(t, base)

	var out, errs bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errs, Stdin: strings.NewReader(""), Getenv: func(string) string { return "" }}
	if code := m.Run(context.Background(), []string{"export", "workflows", "--config", cfg}); code != 0 {
		t.Fatalf("export workflows: exit %d\n%s", code, errs.String())
	}
	if !strings.Contains(out.String(), "\n[[workflows]]") {
		t.Fatalf("no [[workflows]] entry:\n%s", out.String())
	}
	pasted := writeConfig(t, base+"\n"+out.String())
	loaded, _, err := config.Load(pasted)
	if err != nil {
		t.Fatalf("the exported workflows do not load: %v\n%s", err, out.String())
	}
	if len(loaded.Workflows) != 1 || loaded.Workflows[0].Name != "learned_get_stock" || loaded.Workflows[0].Steps[0].Args["sku"] != "{{sku}}" {
		t.Errorf("loaded workflows %+v", loaded.Workflows)
	}
	if _, err := localplanner.NewTemplates(loaded.Workflows, nil, nil, loaded.Planner, loaded.Models, nil); err != nil {
		t.Errorf("the exported workflows do not compile as templates: %v", err)
	}

	file := filepath.Join(t.TempDir(), "workflows.toml")
	errs.Reset()
	if code := m.Run(context.Background(), []string{"export", "workflows", "--out", file, "--config", cfg}); code != 0 || !strings.Contains(errs.String(), "wrote 1 workflows to "+file) {
		t.Errorf("export workflows --out: exit %d\n%s", code, errs.String())
	}
}
