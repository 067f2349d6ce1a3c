package api

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/plancache"
	"github.com/agentd/agentd/internal/run"
)

// learnedCache is a real plan cache on a real SQLite store that learned
// one stock-check template from a run that ended done. With use =
// "approved" the template waits for a person.
func learnedCache(t *testing.T, use string) (*plancache.Cache, string) {
	t.Helper()
	store, err := db.Open(t.Context(), filepath.Join(t.TempDir(), "agentd.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := config.PlanCacheConfig{Enabled: true, Use: use, MaxTemplates: 10, RetireAfter: 2}
	c, err := plancache.Open(t.Context(), cfg, store, quiet)
	if err != nil {
		t.Fatal(err)
	}
	p := &plan.Plan{Goal: "stock", Answer: "Say how many units of W-100 the east warehouse has.",
		Steps: []plan.Step{{ID: "stock", Tool: "get_stock", Args: map[string]any{"sku": "W-100", "warehouse": "east"}}}}
	c.Ended(t.Context(), plancache.Outcome{RunID: "r_learn", Request: "Stock check for SKU W-100 in the east warehouse",
		Status: run.Done, Plan: p, PlanVersion: 1, PlanSource: "local"})
	list := c.List()
	if len(list) != 1 {
		t.Fatalf("the cache learned %d templates, want 1", len(list))
	}
	return c, list[0].ID
}

func decodeView(t *testing.T, body []byte) TemplateView {
	t.Helper()
	var v TemplateView
	if err := json.Unmarshal(body, &v); err != nil || v.Template == nil {
		t.Fatalf("not a template: %v\n%s", err, body)
	}
	return v
}

// The operator endpoints list, show, approve, pin, disable, edit and
// delete a learned template, and refuse what they cannot do with a reason.
func TestTemplateEndpoints(t *testing.T) {
	cache, id := learnedCache(t, "approved")
	env := newTestEnv(t, func(_ *Config, d *Deps) { d.Templates = cache })

	resp, body := env.do("GET", "/api/v1/templates", "", true)
	var list struct {
		Templates []TemplateView `json:"templates"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list.Templates) != 1 {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	if got := list.Templates[0]; got.ID != id || got.State != plancache.Pending || got.SuccessRate != 1 || len(got.Phrasings) != 1 {
		t.Errorf("listed %+v", got.Template)
	}
	resp, body = env.do("GET", "/api/v1/templates/"+id, "", true)
	if v := decodeView(t, body); resp.StatusCode != http.StatusOK || v.Examples[0].RunID != "r_learn" || v.Params[0].Example == "" {
		t.Errorf("get: %d %s", resp.StatusCode, body)
	}

	steps := []struct {
		method, path, body string
		check              func(v TemplateView) bool
	}{
		{"POST", "/approve", "", func(v TemplateView) bool { return v.State == plancache.Active && v.ApprovedBy == "api" }},
		{"POST", "/pin", "", func(v TemplateView) bool { return v.Pinned }},
		{"POST", "/unpin", "", func(v TemplateView) bool { return !v.Pinned }},
		{"POST", "/disable", "", func(v TemplateView) bool { return v.State == plancache.Disabled }},
		{"PATCH", "", `{"name":"stock_check","phrasings":["How many {{sku}} are in the {{warehouse}} warehouse"]}`, func(v TemplateView) bool {
			return v.Name == "stock_check" && len(v.Phrasings) == 1 && v.ApprovedBy == ""
		}},
	}
	for _, s := range steps {
		resp, body := env.do(s.method, "/api/v1/templates/"+id+s.path, s.body, true)
		if resp.StatusCode != http.StatusOK || !s.check(decodeView(t, body)) {
			t.Errorf("%s %s: %d %s", s.method, s.path, resp.StatusCode, body)
		}
	}

	for _, bad := range []struct{ body, want string }{
		{`{"phrasings":["{{sku}}"]}`, "would match too much"},
		{`{"steps":[{"id":"stock","tool":"get_stock","args":{"sku":"{{colour}}"}}]}`, "colour"},
		{`{}`, "changes nothing"},
		{`{"owner":"me"}`, "owner"},
	} {
		resp, body := env.do("PATCH", "/api/v1/templates/"+id, bad.body, true)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), bad.want) {
			t.Errorf("edit %s: %d %s, want 400 naming %q", bad.body, resp.StatusCode, body, bad.want)
		}
	}
	if got, _ := cache.Get(id); got.Name != "stock_check" {
		t.Errorf("a refused edit changed the template: %+v", got)
	}

	resp, body = env.do("POST", "/api/v1/templates/tpl-nope/approve", "", true)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "agentd templates") {
		t.Errorf("unknown id: %d %s", resp.StatusCode, body)
	}
	if resp, _ := env.do("GET", "/api/v1/templates", "", false); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %d", resp.StatusCode)
	}
	resp, body = env.do("DELETE", "/api/v1/templates/"+id, "", true)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"deleted_by": "api"`) || len(cache.List()) != 0 {
		t.Errorf("delete: %d %s", resp.StatusCode, body)
	}
	if resp, _ := env.do("DELETE", "/api/v1/templates/"+id, "", true); resp.StatusCode != http.StatusNotFound {
		t.Errorf("delete twice: %d, want 404", resp.StatusCode)
	}
}

// Export writes the usable templates as [[workflows]] the config loader
// reads back; a pending one is not exported unless named.
func TestTemplateExport(t *testing.T) {
	cache, id := learnedCache(t, "approved")
	env := newTestEnv(t, func(_ *Config, d *Deps) { d.Templates = cache })

	var got struct {
		Workflows []config.WorkflowConfig `toml:"workflows"`
	}
	resp, body := env.do("GET", "/api/v1/templates/export", "", true)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/toml" || toml.Unmarshal(body, &got) != nil || len(got.Workflows) != 0 {
		t.Errorf("export with only a pending template: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if _, err := cache.Approve(t.Context(), id, "test"); err != nil {
		t.Fatal(err)
	}
	resp, body = env.do("GET", "/api/v1/templates/export", "", true)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "\n[[workflows]]") {
		t.Fatalf("export: %d\n%s", resp.StatusCode, body)
	}
	if err := toml.Unmarshal(body, &got); err != nil || len(got.Workflows) != 1 || got.Workflows[0].Steps[0].Args["sku"] != "{{sku}}" {
		t.Errorf("exported TOML: %v %+v\n%s", err, got, body)
	}
	if resp, body := env.do("GET", "/api/v1/templates/export?id=tpl-nope", "", true); resp.StatusCode != http.StatusNotFound {
		t.Errorf("export of an unknown id: %d %s", resp.StatusCode, body)
	}
}

// Without a plan cache every template endpoint says how to turn it on.
func TestTemplatesWithoutCache(t *testing.T) {
	var off *plancache.Cache // what a daemon without a cache hands over
	env := newTestEnv(t, func(_ *Config, d *Deps) { d.Templates = off })
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/templates"}, {"GET", "/api/v1/templates/export"}, {"POST", "/api/v1/templates/x/approve"}, {"DELETE", "/api/v1/templates/x"},
	} {
		resp, body := env.do(r.method, r.path, "", true)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "[planner.cache]") {
			t.Errorf("%s %s: %d %s", r.method, r.path, resp.StatusCode, body)
		}
	}
}
