package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/ollamatest"
)

// runSplit runs the agentd binary and returns stdout and stderr apart.
func runSplit(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(agentdBin, args...)
	cmd.Env = os.Environ()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// TestPlanJSONFailure: when no plan is made, `plan --json` says why on
// stderr and still prints one JSON object on stdout, with "error" set and
// "plan" null. The planner is a real Ollama's tiny model held to four
// output tokens with no repair call, so planning always fails.
func TestPlanJSONFailure(t *testing.T) {
	srv := ollamatest.Start(t)
	const tinyModels = `
[planner]
repair_attempts = 0
[models]
planner = "tiny"
standard = "tiny"
fast = "tiny"
summarizer = "tiny"
router = "tiny"
validator = "tiny"
[models.options.tiny]
num_predict = 4
`
	cfgFor := func(url, extra string) string {
		return writeConfig(t, fmt.Sprintf(`
[storage]
state_dir = %q
[vram]
probe = "none"
[[ollama.endpoints]]
name = "local"
url = %q
parallel_slots = 1
max_queue = 4
%s`, t.TempDir(), url, extra))
	}
	for _, tc := range []struct {
		name      string
		cfg       string
		code      int
		wantErr   []string // in stderr and in the JSON "error"
		wantCalls int
		problem   string // in one of the JSON "problems"
	}{
		{
			name:      "no valid plan from the model",
			cfg:       cfgFor(srv.URL, tinyModels),
			code:      1,
			wantErr:   []string{"local planner produced no valid plan", "raising planner.repair_attempts"},
			wantCalls: 1,
			problem:   "reply cut short at 4 output tokens",
		},
		{
			name:      "ollama unreachable",
			cfg:       cfgFor("http://127.0.0.1:1", tinyModels+"[ollama]\nmax_retries = 0\n"),
			code:      1,
			wantErr:   []string{"ollama not reachable at http://127.0.0.1:1", "is `ollama serve` running?"},
			wantCalls: 1,
		},
		{
			name:    "bad config",
			cfg:     cfgFor(srv.URL, "[planner]\nrepair_atempts = 1\n"),
			code:    2,
			wantErr: []string{"planner.repair_atempts"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runSplit(t, "plan", "--json", "--config", tc.cfg, "count the files in /tmp")
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			var got planOutput
			dec := json.NewDecoder(strings.NewReader(stdout))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil || dec.More() {
				t.Fatalf("stdout is not one JSON object (%v):\n%s", err, stdout)
			}
			if !strings.HasPrefix(stderr, "agentd plan: ") || !strings.Contains(stderr, got.Error) {
				t.Errorf("stderr does not give the error %q:\n%s", got.Error, stderr)
			}
			if got.Plan != nil || got.Request != "count the files in /tmp" || got.PlannerCalls != tc.wantCalls {
				t.Errorf("JSON = %+v, want no plan, the request and %d planner calls", got, tc.wantCalls)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(got.Error, w) {
					t.Errorf("JSON error lacks %q: %q", w, got.Error)
				}
			}
			if tc.problem != "" && !strings.Contains(strings.Join(got.Problems, "\n"), tc.problem) {
				t.Errorf("JSON problems lack %q: %q", tc.problem, got.Problems)
			}
		})
	}
}
