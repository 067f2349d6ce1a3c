package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/ollamasim"
	"github.com/agentd/agentd/internal/vram"
)

type oneGPU struct{}

func (oneGPU) Probe(context.Context) ([]vram.GPU, error) {
	total, used := uint64(24<<30), uint64(3<<30)
	return []vram.GPU{{Source: "simulated", Name: "Test GPU", MemoryTotalBytes: &total, MemoryUsedBytes: &used, Simulated: true}}, nil
}

// The dashboard's live GPU chart and model panel follow gpu.sample and
// model.residency: the running daemon publishes both (nothing did).
func TestDaemonPublishesGPUSamplesAndResidency(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := startOnSimulatorOpts(t, ctx, ollamasim.Config{Seed: 1}, Options{Prober: oneGPU{}}, func(c *config.Config) {
		c.VRAM.SampleInterval = config.Duration(50 * time.Millisecond)
	})
	_, sub, err := d.Bus.Subscribe(ctx, -1, 256, func(e events.Event) bool {
		return e.Type == events.GPUSample || e.Type == events.ModelResidency
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	seen := map[string]bool{}
	timeout := time.After(20 * time.Second)
	for !seen[events.GPUSample] || !seen[events.ModelResidency] {
		select {
		case e := <-sub.C:
			seen[e.Type] = true
			if e.Type == events.GPUSample {
				g, ok := events.Decode[events.GPUSampleData](e)
				if !ok || len(g.GPUs) != 1 || g.GPUs[0].Name != "Test GPU" || !g.GPUs[0].Simulated {
					t.Fatalf("gpu.sample data = %s", e.Data)
				}
			}
		case <-timeout:
			t.Fatalf("published within 20 s: %v, want gpu.sample and model.residency", seen)
		}
	}
	cancel()
	<-done
}

// The demo's examples reach /api/v1/status from the options the demo
// command fills; a daemon that is not a demo lists none.
func TestStatusDemoExamples(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ex := []DemoExample{{Name: "cities", Request: "Which cities are similar?"}}
	d := startOnSimulatorOpts(t, ctx, ollamasim.Config{Seed: 1}, Options{Demo: true, DemoExamples: ex}, nil)
	if st := d.status(ctx).(Status); len(st.DemoExamples) != 1 || st.DemoExamples[0] != ex[0] {
		t.Errorf("demo status examples = %+v", st.DemoExamples)
	}
	d2 := startOnSimulatorOpts(t, ctx, ollamasim.Config{Seed: 1}, Options{DemoExamples: ex}, nil)
	if st := d2.status(ctx).(Status); len(st.DemoExamples) != 0 {
		t.Errorf("a daemon that is not a demo lists examples: %+v", st.DemoExamples)
	}
}
