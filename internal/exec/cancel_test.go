package exec

import (
	"context"
	"errors"
	osexec "os/exec"
	"syscall"
	"testing"

	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

// Cancelling a run kills the child process its tool started: the tool gets
// the cancelled context.
func TestCancelKillsChildProcess(t *testing.T) {
	if _, err := osexec.LookPath("sleep"); err != nil {
		t.Fatalf("sleep not found: %v", err)
	}
	h := newHarness(t)
	pids := make(chan int, 1)
	h.tools.add(&fakeTool{name: "sleeper", idempotent: true, fn: func(ctx context.Context, args map[string]any) (ToolResult, error) {
		cmd := osexec.CommandContext(ctx, "sleep", "60")
		if err := cmd.Start(); err != nil {
			return ToolResult{}, err
		}
		pids <- cmd.Process.Pid
		err := cmd.Wait()
		return ToolResult{Output: "woke"}, err
	}})
	h.planner.plan = onePlan(plan.Step{ID: "nap", Tool: "sleeper"})
	eng := h.start()
	r := h.submit("sleep")
	pid := <-pids
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("child not running: %v", err)
	}
	if err := eng.Cancel(context.Background(), r.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	got := h.wait(r.ID)
	if got.Status != run.Canceled || got.Error != "canceled by alice" {
		t.Errorf("status %s error %q", got.Status, got.Error)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("child %d still exists after cancel (kill 0: %v)", pid, err)
	}
	if st := h.steps(r.ID)["nap"]; st.Status != run.StepCanceled {
		t.Errorf("step %s", st.Status)
	}
	if err := eng.Cancel(context.Background(), r.ID, "bob"); !errors.Is(err, ErrRunFinished) {
		t.Errorf("second cancel: %v", err)
	}
}

// A queued run that is cancelled never starts.
func TestCancelQueued(t *testing.T) {
	h := newHarness(t)
	tool := h.tools.add(&fakeTool{name: "t", idempotent: true})
	h.planner.plan = onePlan(plan.Step{ID: "a", Tool: "t"})
	h.eng = New(h.cfg, h.deps()) // not running: nothing is admitted
	r := h.submit("x")
	if err := h.eng.Cancel(context.Background(), r.ID, "api"); err != nil {
		t.Fatal(err)
	}
	h.start2()
	got := h.wait(r.ID)
	if got.Status != run.Canceled || tool.calls.Load() != 0 {
		t.Errorf("status %s calls %d", got.Status, tool.calls.Load())
	}
}
