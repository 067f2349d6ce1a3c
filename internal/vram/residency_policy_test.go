package vram

import (
	"slices"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
)

func TestRoleModels(t *testing.T) {
	cfg := &config.Config{Models: config.ModelsConfig{
		Router: "granite4:tiny-h", Planner: "gemma3:12b", Fast: "granite4:tiny-h", Standard: "qwen3:8b",
		Summarizer: "granite4:tiny-h", Validator: "nomic-embed-text", Embedding: "nomic-embed-text",
	}}
	cfg.Workflows = []config.WorkflowConfig{{Name: "w", Steps: []config.WorkflowStep{{ID: "a", Tool: "calc"}}}}
	cfg.Tools.Docs.Folders = []string{"/srv/docs"}
	got := RoleModels(cfg.ModelUses())
	want := []RoleModel{
		{"gemma3:12b", []string{"planner"}},
		{"qwen3:8b", []string{"standard"}},
		{"granite4:tiny-h", []string{"fast", "summarizer", "router"}},
		{"nomic-embed-text", []string{"embedding"}},
	}
	if len(got) != len(want) {
		t.Fatalf("RoleModels = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Name != want[i].Name || !slices.Equal(got[i].Roles, want[i].Roles) {
			t.Errorf("RoleModels[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestDecidePolicy(t *testing.T) {
	const gb = 1_000_000_000
	models := []RoleModel{{"planner:8g", []string{"planner"}}, {"exec:2g", []string{"fast"}}}
	sizes := map[string]uint64{"planner:8g": 8 * gb, "exec:2g": 2 * gb}
	long, short := 30*time.Minute, time.Minute
	tests := []struct {
		name          string
		sizes         map[string]uint64
		capacity      uint64
		known         bool
		external      uint64
		wantMode      string
		wantKeep      map[string]time.Duration
		wantUnknown   []string
		wantBudgetMin uint64
	}{
		{"both fit", sizes, 24 * gb, true, 0, ModeCoResident, map[string]time.Duration{"planner:8g": long, "exec:2g": long}, nil, 23 * gb},
		{"only planner fits", sizes, 9 * gb, true, 0, ModeSwap, map[string]time.Duration{"planner:8g": long, "exec:2g": short}, nil, 8 * gb},
		{"another process shrinks the budget", sizes, 12 * gb, true, 3 * gb, ModeSwap, map[string]time.Duration{"planner:8g": long, "exec:2g": short}, nil, 8 * gb},
		{"unknown size is not assumed to fit", map[string]uint64{"planner:8g": 8 * gb}, 24 * gb, true, 0, ModeSwap, map[string]time.Duration{"planner:8g": long, "exec:2g": short}, []string{"exec:2g"}, 23 * gb},
		{"capacity unknown", sizes, 0, false, 0, ModeUnmanaged, map[string]time.Duration{"planner:8g": long, "exec:2g": long}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decidePolicy(policyInput{
				models: models, sizes: tt.sizes, capacity: tt.capacity, capacityKnown: tt.known,
				external: tt.external, headroom: 512 << 20, keepAlive: long,
			})
			wantEq(t, "mode", p.mode, tt.wantMode)
			for k, d := range tt.wantKeep {
				wantEq(t, "keep_alive "+k, p.keepAlive[k], d)
			}
			if !slices.Equal(p.unknown, tt.wantUnknown) {
				t.Errorf("unknown = %v, want %v", p.unknown, tt.wantUnknown)
			}
			if p.budget < tt.wantBudgetMin {
				t.Errorf("budget = %d, want at least %d", p.budget, tt.wantBudgetMin)
			}
		})
	}
}

func TestPolicyFits(t *testing.T) {
	p := policy{budget: 10}
	sizes := map[string]uint64{"a": 6, "b": 4, "c": 5}
	wantEq(t, "a+b", p.fits(sizes, map[string]bool{"a": true, "b": true}), true)
	wantEq(t, "a+c", p.fits(sizes, map[string]bool{"a": true, "c": true}), false)
	wantEq(t, "unknown", p.fits(sizes, map[string]bool{"a": true, "z": true}), false)
}

// A model no configured feature calls is not planned for: no docs folders,
// no embedding model; no workflows, no router.
func TestRoleModelsOnlyWhatFeaturesCall(t *testing.T) {
	cfg := &config.Config{Models: config.ModelsConfig{Router: "router:1b", Planner: "p", Fast: "f", Standard: "s",
		Embedding: "nomic-embed-text", Validator: "v"}}
	for _, rm := range RoleModels(cfg.ModelUses()) {
		switch rm.Name {
		case "router:1b", "nomic-embed-text", "v":
			t.Errorf("%s (%v) is planned for, but nothing calls it", rm.Name, rm.Roles)
		}
	}
}
