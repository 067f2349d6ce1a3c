package daemon

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/ollamatest"
	"github.com/agentd/agentd/internal/run"
)

// TestRealHostLoss runs agentd on two real Ollama servers and kills one
// while runs are in their model calls: every run must still end done (its
// calls move to the other server, which has the same models), and the
// log shows how much longer the runs took than a round with both up.
//
//	AGENTD_TEST_OLLAMA_BIN=../shared/ollama/ollama go test ./internal/daemon -run TestRealHostLoss -v
func TestRealHostLoss(t *testing.T) {
	a1, b1 := ollamatest.Start(t), ollamatest.Start(t)
	cfg := realConfig(t, a1.URL)
	cfg.Ollama.Endpoints = []config.EndpointConfig{{Name: "a", URL: a1.URL, ParallelSlots: 1}, {Name: "b", URL: b1.URL, ParallelSlots: 1}}
	// Each run: a task step on the executor model and the summarizer's
	// answer, two model calls whatever the random-weight model says.
	cfg.Workflows = append(cfg.Workflows, config.WorkflowConfig{Name: "story", Description: "A task and an answer.",
		Steps: []config.WorkflowStep{{ID: "t", Task: "Write a long story about the pump in bay 3.", Tier: "standard"}}})
	a := startReal(t, a1, cfg)

	round := func(kill func()) ([]time.Duration, []apiRun) {
		const runs = 6
		ids := make([]string, runs)
		starts := make([]time.Time, runs)
		for i := range ids {
			starts[i] = time.Now()
			ids[i] = a.submit(map[string]any{"request": "a story", "workflow": "story"})
		}
		if kill != nil {
			kill()
		}
		walls := make([]time.Duration, runs)
		out := make([]apiRun, runs)
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Go(func() {
				out[i] = a.wait(id)
				walls[i] = time.Since(starts[i])
			})
		}
		wg.Wait()
		return walls, out
	}

	round(nil) // loads the models on both servers
	base, runs := round(nil)
	for _, r := range runs {
		if r.Status != run.Done {
			t.Fatalf("with both servers up: %s %q", r.Status, oneLineReason(r))
		}
	}
	lossWalls, runs := round(func() {
		// Into the round's model calls: one is on the server to kill.
		waitUntil(t, "a model call in flight on server a", func() bool {
			for _, ep := range a.d.LLM.Endpoints() {
				if ep.Name == "a" && ep.InFlight > 0 {
					return true
				}
			}
			return false
		})
		a1.Kill()
	})
	lost := 0
	for _, r := range runs {
		if r.Status != run.Done {
			lost++
			t.Errorf("run %s ended %s after a server was killed: %q", r.ID, r.Status, oneLineReason(r))
		}
	}
	// The calls the killed server failed were made again on the other.
	moved := 0
	for _, r := range runs {
		calls, err := a.d.Store.RunModelCalls(context.Background(), r.ID)
		must(t, err)
		for _, c := range calls {
			if c.Endpoint == "a" && c.Error != "" {
				moved++
			}
		}
	}
	if moved == 0 {
		t.Error("no call failed on the killed server: the kill came after the round's calls, so this round shows nothing")
	}
	t.Logf("host loss: runs lost %d of %d; %d calls failed on the killed server and were made again on the other; median run wall %v with both up, %v with one killed mid-round",
		lost, len(runs), moved, median(base), median(lossWalls))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
