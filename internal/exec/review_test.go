package exec

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

// reviewState leaves a run in review the way a crash does: a payment
// call started and never finished, so the step goes to the review queue and
// the receipt that depends on it is skipped.
func reviewState(t *testing.T, h *harness, runID string) (pay, receipt *fakeTool) {
	t.Helper()
	pay = h.tools.add(&fakeTool{name: "pay_" + runID, idempotent: false})
	receipt = h.tools.add(&fakeTool{name: "receipt_" + runID, idempotent: true})
	specs := []plan.Step{
		{ID: "pay", Tool: pay.name},
		{ID: "receipt", Tool: receipt.name, DependsOn: []string{"pay"}, Args: map[string]any{"of": "${pay}"}},
	}
	now := time.Now()
	steps := []*run.Step{
		{StepID: "pay", Status: run.StepRunning, Attempts: 1, Idempotent: false, StartedAt: &now},
		{StepID: "receipt", Status: run.StepPending, Idempotent: true},
	}
	crashState(t, h, runID, steps, specs)
	if _, err := h.store.BeginToolCall(context.Background(), steps[0], pay.name, []byte(`{}`), "h"); err != nil {
		t.Fatal(err)
	}
	return pay, receipt
}

func TestResolveReview(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	type outcome struct {
		pay, receipt *fakeTool
	}
	runs := map[string]outcome{}
	for _, id := range []string{"retry", "done", "fail"} {
		p, r := reviewState(t, h, id)
		runs[id] = outcome{p, r}
	}
	eng := h.start()
	for id := range runs {
		if r := h.wait(id); r.Status != run.Review {
			t.Fatalf("%s: status %s, want review", id, r.Status)
		}
		if got := h.steps(id); got["pay"].Status != run.StepReview || got["receipt"].Status != run.StepSkipped {
			t.Fatalf("%s: pay %s receipt %s", id, got["pay"].Status, got["receipt"].Status)
		}
	}
	if err := eng.ResolveReview(ctx, "retry", "pay", "reboot", "ops", ""); !errors.Is(err, ErrInvalidReview) {
		t.Errorf("bad action: %v", err)
	}
	if err := eng.ResolveReview(ctx, "retry", "receipt", ReviewRetry, "ops", ""); !errors.Is(err, ErrNoReview) {
		t.Errorf("step not in review: %v", err)
	}

	t.Run("retry runs the step once more", func(t *testing.T) {
		if err := eng.ResolveReview(ctx, "retry", "pay", ReviewRetry, "ops", "bank shows no charge"); err != nil {
			t.Fatal(err)
		}
		r := h.wait("retry")
		o := runs["retry"]
		if r.Status != run.Done || o.pay.calls.Load() != 1 || o.receipt.calls.Load() != 1 {
			t.Errorf("status %s, pay calls %d, receipt calls %d", r.Status, o.pay.calls.Load(), o.receipt.calls.Load())
		}
	})
	t.Run("done takes the person's result", func(t *testing.T) {
		if err := eng.ResolveReview(ctx, "done", "pay", ReviewDone, "ops", "charged 42 EUR, ref 77"); err != nil {
			t.Fatal(err)
		}
		r := h.wait("done")
		o := runs["done"]
		if r.Status != run.Done || o.pay.calls.Load() != 0 || o.receipt.calls.Load() != 1 {
			t.Fatalf("status %s, pay calls %d, receipt calls %d", r.Status, o.pay.calls.Load(), o.receipt.calls.Load())
		}
		if got := fmt.Sprint(o.receipt.args[0]["of"]); got != "charged 42 EUR, ref 77" {
			t.Errorf("receipt got %q, want the reviewer's result", got)
		}
	})
	t.Run("fail ends the run without planning around it", func(t *testing.T) {
		replans := func() int { h.planner.mu.Lock(); defer h.planner.mu.Unlock(); return len(h.planner.replans) }
		before := replans()
		if err := eng.ResolveReview(ctx, "fail", "pay", ReviewFail, "ops", "customer refunded"); err != nil {
			t.Fatal(err)
		}
		r := h.wait("fail")
		o := runs["fail"]
		if r.Status != run.Partial || o.pay.calls.Load() != 0 || o.receipt.calls.Load() != 0 {
			t.Errorf("status %s, pay calls %d, receipt calls %d", r.Status, o.pay.calls.Load(), o.receipt.calls.Load())
		}
		if !strings.Contains(h.steps("fail")["pay"].Error, "abandoned by ops in review: customer refunded") {
			t.Errorf("pay error %q", h.steps("fail")["pay"].Error)
		}
		if replans() != before {
			t.Error("a step given up in review was planned around")
		}
	})
	if n := h.count(`SELECT count(*) FROM review_items WHERE resolved_at IS NULL`); n != 0 {
		t.Errorf("%d review items still open", n)
	}
	if err := eng.ResolveReview(ctx, "done", "pay", ReviewDone, "ops", ""); !errors.Is(err, ErrNoReview) {
		t.Errorf("resolving twice: %v", err)
	}
}
