package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/plan"
	agentrun "github.com/agentd/agentd/internal/run"
)

// A crash left a non-idempotent charge mid-call: the restarted daemon puts
// it in the review queue, `agentd reviews` shows it, and `agentd resolve
// --action done` finishes the run without charging again.
func TestReviewCommandsResolveACrashedRun(t *testing.T) {
	bin := countTool(t)
	logFile := filepath.Join(t.TempDir(), "calls.jsonl")
	simURL := startTestSim(t, jobPlans{})
	addr := freePort(t)
	cfg, state := simDaemonConfig(t, addr, simURL, commandTool(bin, logFile, "charge", false, "", 0))

	ctx := context.Background()
	store, err := db.Open(ctx, filepath.Join(state, "agentd.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spec := plan.Step{ID: "charge", Tool: "charge", Args: map[string]any{"job": "inv-9", "step": "charge"}}
	raw, _ := json.Marshal(plan.Plan{Goal: "pay", Steps: []plan.Step{spec}, Answer: "Report ${charge}"})
	specJSON, _ := json.Marshal(spec)
	now := time.Now()
	st := &agentrun.Step{RunID: "r_crashed", StepID: "charge", PlanVersion: 1, Kind: plan.KindTool, Tool: "charge", Spec: specJSON,
		Status: agentrun.StepRunning, Attempts: 1, Idempotent: false, StartedAt: &now}
	if err := store.InsertRun(ctx, &agentrun.Run{ID: "r_crashed", Status: agentrun.Running, Source: "api", Request: "pay invoice inv-9", Planner: "auto"}); err != nil {
		t.Fatal(err)
	}
	if err := store.SavePlan(ctx, "r_crashed", 1, "local", "gemma3:12b", raw, 1, nil, []*agentrun.Step{st}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.BeginToolCall(ctx, st, "charge", []byte(`{"job":"inv-9","step":"charge"}`), "h"); err != nil {
		t.Fatal(err)
	}
	store.Close()

	startDaemon(t, cfg, addr)
	c := []string{"--config", cfg}
	var out string
	pollUntil(t, "the charge in the review queue", func() bool {
		out, _ = run(t, nil, append([]string{"reviews"}, c...)...)
		return strings.Contains(out, "r_crashed") && strings.Contains(out, "charge")
	})
	if !strings.Contains(out, "agentd resolve RUN STEP") {
		t.Errorf("reviews does not say how to decide:\n%s", out)
	}
	out, code := run(t, nil, append([]string{"resolve", "r_crashed", "charge", "--action", "reboot"}, c...)...)
	if code != 2 {
		t.Errorf("bad action: exit %d\n%s", code, out)
	}
	out, code = run(t, nil, append([]string{"resolve", "r_crashed", "charge", "--action", "done", "--note", "bank shows the charge, ref 77"}, c...)...)
	if code != 0 || !strings.Contains(out, "the run resumes") {
		t.Fatalf("resolve: exit %d\n%s", code, out)
	}
	pollUntil(t, "r_crashed done", func() bool {
		out, _ = run(t, nil, append([]string{"run", "r_crashed"}, c...)...)
		return strings.Contains(out, "Status:   done")
	})
	if b, _ := os.ReadFile(logFile); len(b) != 0 {
		t.Errorf("the non-idempotent charge ran again:\n%s", b)
	}
	if out, _ = run(t, nil, append([]string{"reviews"}, c...)...); !strings.Contains(out, "the review queue is empty") {
		t.Errorf("queue after resolve:\n%s", out)
	}
}
