package bench

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/scenarios"
)

func TestFallbackBenchEscalatesHardRequestsOnlyAndSendsNoToolResults(t *testing.T) {
	ctx := context.Background()
	base := config.Default()
	sc, ok := scenarios.Find(scenarios.NameOrder)
	if !ok {
		t.Fatal("order scenario missing")
	}
	env, err := newBenchEnv(ctx, base, "", 0.01, scenarios.Script(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer env.close()
	res, err := env.benchFallback(ctx, []scenarios.Scenario{sc}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 3 || res.Done != 3 {
		t.Fatalf("requests %d done %d, want 3 and 3", res.Requests, res.Done)
	}
	if res.Escalated != 1 || res.RemoteRequests != 1 {
		t.Errorf("escalated %d, remote requests %d: want only the hard variant to go remote", res.Escalated, res.RemoteRequests)
	}
	if res.LocalFirstUSD <= 0 || res.LocalFirstUSD >= res.RemoteOnlyUSD {
		t.Errorf("local-first $%g vs remote-only $%g", res.LocalFirstUSD, res.RemoteOnlyUSD)
	}
	if len(res.StepOutputs) == 0 || len(res.RemoteBodies) != 1 {
		t.Fatalf("outputs %d bodies %d", len(res.StepOutputs), len(res.RemoteBodies))
	}
	for _, out := range res.StepOutputs {
		if len(out) > 12 && strings.Contains(res.RemoteBodies[0], out) {
			t.Errorf("a tool result left the machine: %q", out)
		}
	}
	var buf bytes.Buffer
	res.Render(&buf, base.Fallback.Model)
	if !strings.Contains(buf.String(), "escalated to the remote planner 1 (33%)") {
		t.Errorf("render:\n%s", buf.String())
	}
}

// A saving made by runs that failed is no saving.
func TestFallbackRenderFailedRunsWinNothing(t *testing.T) {
	r := FallbackResult{Requests: 4, Done: 3, LocalFirstUSD: 0.001, RemoteOnlyUSD: 1}
	var buf bytes.Buffer
	r.Render(&buf, "m")
	if out := buf.String(); !strings.Contains(out, "NOT met") || !strings.Contains(out, "1 of 4 local-first runs did not end done") {
		t.Errorf("report claims a saving from failed runs:\n%s", out)
	}
	r.Done = 4
	buf.Reset()
	r.Render(&buf, "m")
	if out := buf.String(); strings.Contains(out, "NOT met") {
		t.Errorf("every run done and 99.9%% less, yet:\n%s", out)
	}
}
