package exec

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

func approvalPlan(h *harness) (*fakeTool, *fakeTool) {
	deploy := h.tools.add(&fakeTool{name: "deploy", approval: true})
	other := h.tools.add(&fakeTool{name: "other", idempotent: true})
	h.planner.plan = onePlan(plan.Step{ID: "ship", Tool: "deploy", Args: map[string]any{"env": "prod"}},
		plan.Step{ID: "side", Tool: "other"})
	return deploy, other
}

func (h *harness) runStatus(id string) run.Status {
	r, err := h.store.GetRun(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return r.Status
}

// A step that needs approval waits (the run shows waiting_approval once
// nothing else runs) while the rest of the plan goes on; approved, it runs.
func TestApprovalApproved(t *testing.T) {
	h := newHarness(t)
	deploy, other := approvalPlan(h)
	eng := h.start()
	r := h.submit("ship it")
	waitFor(t, "waiting_approval", func() bool { return h.runStatus(r.ID) == run.WaitingApproval })
	if other.calls.Load() != 1 || deploy.calls.Load() != 0 {
		t.Fatalf("other %d deploy %d", other.calls.Load(), deploy.calls.Load())
	}
	if st := h.steps(r.ID)["ship"]; st.Status != run.StepWaitingApproval {
		t.Fatalf("ship %s", st.Status)
	}
	if err := eng.Approve(context.Background(), r.ID, "ship", "alice", "looks right"); err != nil {
		t.Fatal(err)
	}
	got := h.wait(r.ID)
	if got.Status != run.Done || deploy.calls.Load() != 1 {
		t.Fatalf("status %s (%s) deploy calls %d", got.Status, got.Error, deploy.calls.Load())
	}
	if n := h.count(`SELECT count(*) FROM approvals WHERE run_id = ? AND status = 'approved' AND decided_by = 'alice' AND reason = 'looks right'`, r.ID); n != 1 {
		t.Errorf("approval row not recorded")
	}
	if h.events.count(events.ApprovalRequested) != 1 || h.events.count(events.ApprovalDecided) != 1 {
		t.Errorf("approval events")
	}
	if err := eng.Approve(context.Background(), r.ID, "ship", "bob", ""); !errors.Is(err, ErrNoPendingApproval) {
		t.Errorf("second decision: %v", err)
	}
}

func TestApprovalDenied(t *testing.T) {
	h := newHarness(t)
	deploy, _ := approvalPlan(h)
	eng := h.start()
	r := h.submit("ship it")
	waitFor(t, "waiting_approval", func() bool { return h.runStatus(r.ID) == run.WaitingApproval })
	if err := eng.Deny(context.Background(), r.ID, "ship", "alice", "not on a Friday"); err != nil {
		t.Fatal(err)
	}
	got := h.wait(r.ID)
	if deploy.calls.Load() != 0 {
		t.Error("denied tool ran")
	}
	st := h.steps(r.ID)["ship"]
	if st.Status != run.StepFailed || st.Error != "denied by alice: not on a Friday" {
		t.Errorf("ship %s %q", st.Status, st.Error)
	}
	if got.Status != run.Partial || !strings.Contains(got.Answer, "denied by alice: not on a Friday") {
		t.Errorf("status %s answer %q", got.Status, got.Answer)
	}
	if h.count(`SELECT count(*) FROM review_items WHERE run_id = ?`, r.ID) != 0 {
		t.Error("a denial is a person's decision, not a review item")
	}
}

func TestApprovalTimeoutDenies(t *testing.T) {
	h := newHarness(t)
	h.cfg.Executor.ApprovalTimeout = config.Duration(30 * time.Millisecond)
	deploy, _ := approvalPlan(h)
	h.start()
	got := h.wait(h.submit("ship it").ID)
	st := h.steps(got.ID)["ship"]
	if deploy.calls.Load() != 0 || st.Status != run.StepFailed || !strings.HasPrefix(st.Error, "denied by timeout: no decision within") {
		t.Errorf("deploy %d ship %s %q", deploy.calls.Load(), st.Status, st.Error)
	}
	if n := h.count(`SELECT count(*) FROM approvals WHERE run_id = ? AND status = 'expired'`, got.ID); n != 1 {
		t.Errorf("expired approvals %d", n)
	}
}
