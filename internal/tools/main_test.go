package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// echotoolPath is the test helper program built once for the whole package.
var echotoolPath string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "agentd-tools-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	echotoolPath = filepath.Join(dir, "echotool")
	build := exec.Command("go", "build", "-o", echotoolPath, "./testdata/echotool")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build echotool:", err)
		return 1
	}
	return m.Run()
}

// call runs a tool directly with JSON args given as a string.
func call(t *testing.T, tool Tool, args string) (map[string]any, error) {
	t.Helper()
	res, err := tool.Call(context.Background(), json.RawMessage(args))
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if uerr := json.Unmarshal(res.Output, &out); uerr != nil {
		t.Fatalf("output is not a JSON object: %s: %v", res.Output, uerr)
	}
	return out, nil
}

// wantErr checks that err wraps want (nil: no error) and mentions every
// fragment.
func wantErr(t *testing.T, err, want error, fragments ...string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got no error, want %v", want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %q does not wrap %v", err, want)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not mention %q", err, f)
		}
	}
}
