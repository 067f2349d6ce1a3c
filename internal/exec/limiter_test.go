package exec

import (
	"context"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
)

func TestConfigLimiter(t *testing.T) {
	l := NewModelLimiter(config.ModelsConfig{Options: map[string]config.ModelOptions{"small": {MaxConcurrent: 1}}})
	ctx := context.Background()
	rel, err := l.Acquire(ctx, "small")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := l.Acquire(short, "small"); err == nil {
		t.Error("second call admitted over max_concurrent 1")
	}
	for range 3 { // no limit configured: never waits
		if _, err := l.Acquire(short, "other"); err != nil {
			t.Errorf("unlimited model: %v", err)
		}
	}
	rel()
	rel() // releasing twice frees one slot only
	rel2, err := l.Acquire(ctx, "small")
	if err != nil {
		t.Fatal(err)
	}
	rel2()
}

func TestModelsFromConfig(t *testing.T) {
	m := ModelsFromConfig(config.ModelsConfig{Fast: "f", Standard: "s", Summarizer: "sum"})
	for role, want := range map[string]string{"fast": "f", "standard": "s", RoleSummarizer: "sum", RoleScratchpad: "f", "": "f"} {
		if got := m.Model(role); got != want {
			t.Errorf("Model(%q) = %q, want %q", role, got, want)
		}
	}
}
