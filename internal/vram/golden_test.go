package vram

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata from current output")

// probeResult is what a golden file holds for one fixture: the GPUs and the
// error text, so a partial parse is pinned as well as a clean one.
type probeResult struct {
	GPUs  []GPU  `json:"gpus"`
	Error string `json:"error,omitempty"`
}

// checkGolden compares got, as indented JSON, with the file at path, or
// rewrites the file when -update is set.
func checkGolden(t *testing.T, path string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	b = append(b, '\n')
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatalf("write golden: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run `go test ./internal/vram/ -update` to create it): %v", err)
	}
	if !bytes.Equal(want, b) {
		t.Errorf("%s differs from output (rerun with -update if the change is intended)\n--- want\n%s\n--- got\n%s", path, want, b)
	}
}

func u64(v uint64) *uint64   { return &v }
func f64(v float64) *float64 { return &v }
