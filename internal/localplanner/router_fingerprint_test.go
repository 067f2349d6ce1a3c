package localplanner

import (
	"context"
	"testing"
)

func TestFingerprintOfShortRequestsDiffers(t *testing.T) {
	a, b := Fingerprint("what is 2+2"), Fingerprint("what is 3+5")
	if a == b {
		t.Fatalf("short requests share fingerprint %s", a)
	}
	if Fingerprint("What is 2 + 2?") != a {
		t.Error("fingerprint depends on case or punctuation")
	}
	if Fingerprint("") == a {
		t.Error("empty and non-empty requests share a fingerprint")
	}
}

func TestClassificationOnlyWhenRelated(t *testing.T) {
	tests := []struct {
		mode, text string
		calls      int
	}{
		{"related", "weather in Oslo", 0},    // shares no word with any workflow
		{"related", "incident at pump 3", 0}, // matched by keyword, no call either
		{"related", "two numbers please", 1}, // shares "numbers" with the sum workflow
		{"always", "weather in Oslo", 1},
		{"never", "two numbers please", 0},
	}
	for _, tt := range tests {
		m := &scriptedModel{replies: []ChatResponse{reply(`{"workflow":"none"}`)}}
		cfg := testPlannerConfig()
		cfg.ClassifyWorkflows = tt.mode
		d, err := NewRouter(cfg, weatherTools(), newTestTemplates(t, m), nil, nil, nil).Route(context.Background(), Request{Text: tt.text})
		if err != nil {
			t.Fatal(err)
		}
		if d.Usage.Calls != tt.calls {
			t.Errorf("%s %q: %d classification calls, want %d (%v)", tt.mode, tt.text, d.Usage.Calls, tt.calls, d.Reasons)
		}
	}
}
