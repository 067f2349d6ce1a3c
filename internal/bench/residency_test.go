package bench

import (
	"context"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/vram"
)

func wantEq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// The figures asserted here are computed from the simulator's own load
// and inference durations and its load counter, not from wall-clock time,
// so they hold on a slow or busy host. The naive run's load count depends
// on the order in which the simulator wakes queued requests, so it varies
// a little from run to run; the bounds leave room for that.

func TestResidencyBenchSwap(t *testing.T) {
	tests := []struct {
		name           string
		cfg            ResidencyConfig
		minLoadRatio   float64
		minThroughput  float64
		maxAwareLoads  int64
		wantAwareBelow time.Duration // aware GPU time at most busy time plus this
	}{
		// Verbose calls (300-token plans, 100-token steps): inference
		// dominates (197 simulated seconds of it), so naive's 20-30 loads
		// add only 20-35% and no admission policy can beat about 1.3x here.
		{"default workload", ResidencyConfig{}, 3, 1.1, 6, 12 * time.Second},
		// Tool-call sized outputs on a disk that loads 1 GB/s: the loads are
		// a large share of the work, the case the figure is about.
		{"tool-call workload, 1 GB/s loads", ResidencyConfig{PlanOutputTokens: 150, StepOutputTokens: 30, LoadBytesPerSecond: 1e9}, 3, 1.5, 6, 25 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := RunResidency(context.Background(), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", r)
			wantEq(t, "mode", r.Mode, vram.ModeSwap)
			for _, run := range []ResidencyRun{r.Naive, r.Aware} {
				wantEq(t, run.Strategy+" warm-up loads", run.WarmupLoads, int64(0))
				// The same requests, each prompt its own from its first
				// characters (a prompt cache spares a few tokens of prefill
				// at most), so the same work within 0.1%.
				if d := run.BusyTime - r.Naive.BusyTime; d > r.Naive.BusyTime/1000 || -d > r.Naive.BusyTime/1000 {
					t.Errorf("%s busy time %v, naive %v: the same work should take the same time", run.Strategy, run.BusyTime, r.Naive.BusyTime)
				}
			}
			if r.Aware.LoadsAfterWarmup < 2 || r.Aware.LoadsAfterWarmup > tt.maxAwareLoads {
				t.Errorf("aware loads = %d, want 2..%d", r.Aware.LoadsAfterWarmup, tt.maxAwareLoads)
			}
			if r.LoadRatio < tt.minLoadRatio {
				t.Errorf("naive/aware loads = %.2f (%d/%d), want at least %.1f", r.LoadRatio, r.Naive.LoadsAfterWarmup, r.Aware.LoadsAfterWarmup, tt.minLoadRatio)
			}
			if r.ThroughputRatio < tt.minThroughput {
				t.Errorf("aware/naive throughput = %.2f, want at least %.2f", r.ThroughputRatio, tt.minThroughput)
			}
			if r.Aware.GPUTime > r.Aware.BusyTime+tt.wantAwareBelow {
				t.Errorf("aware GPU time %s, busy %s: more than %s spent loading", r.Aware.GPUTime, r.Aware.BusyTime, tt.wantAwareBelow)
			}
			checkBounds(t, r)
		})
	}
}

func TestResidencyBenchCoResident(t *testing.T) {
	r, err := RunResidency(context.Background(), ResidencyConfig{GPUBytes: 24 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", r)
	wantEq(t, "mode", r.Mode, vram.ModeCoResident)
	wantEq(t, "aware warm-up loads", r.Aware.WarmupLoads, int64(2))
	wantEq(t, "aware loads after warm-up", r.Aware.LoadsAfterWarmup, int64(0))
	wantEq(t, "aware evictions", r.Aware.Evictions, int64(0))
	wantEq(t, "naive loads", r.Naive.LoadsAfterWarmup, int64(2))
	checkBounds(t, r)
}

// checkBounds: the independent bounds are computed from the workload and
// the machine alone, so each strategy's simulated time must be at least
// the bound for its starting state — or the bound (or the simulator) is
// wrong. GPU time is simulated, so this holds however loaded the machine.
func checkBounds(t *testing.T, r ResidencyResult) {
	t.Helper()
	if r.BoundCold.Makespan <= 0 || r.BoundWarm.Makespan <= 0 || r.BoundWarm.Makespan > r.BoundCold.Makespan {
		t.Fatalf("bounds cold %v, warm %v", r.BoundCold, r.BoundWarm)
	}
	if r.Naive.GPUTime < r.BoundCold.Makespan*99/100 {
		t.Errorf("naive GPU time %s under the cold bound %s", r.Naive.GPUTime, r.BoundCold)
	}
	if r.Aware.MeasuredWall < r.BoundWarm.Makespan*99/100 {
		t.Errorf("aware measured wall %s under the warm bound %s", r.Aware.MeasuredWall, r.BoundWarm)
	}
}

func BenchmarkResidency(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  ResidencyConfig
	}{
		{"8GiB", ResidencyConfig{}},
		{"8GiB-toolcalls-1GBps", ResidencyConfig{PlanOutputTokens: 150, StepOutputTokens: 30, LoadBytesPerSecond: 1e9}},
		{"24GiB", ResidencyConfig{GPUBytes: 24 << 30}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var r ResidencyResult
			for b.Loop() {
				var err error
				if r, err = RunResidency(context.Background(), bc.cfg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(r.Naive.LoadsAfterWarmup), "naive-loads")
			b.ReportMetric(float64(r.Aware.LoadsAfterWarmup), "aware-loads")
			b.ReportMetric(r.Naive.GPUTime.Seconds(), "naive-sim-s")
			b.ReportMetric(r.Aware.GPUTime.Seconds(), "aware-sim-s")
			b.ReportMetric(r.Naive.Throughput, "naive-req/sim-min")
			b.ReportMetric(r.Aware.Throughput, "aware-req/sim-min")
			b.Logf("\n%s", r)
		})
	}
}
