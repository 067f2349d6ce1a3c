package vram

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/events"
)

// seqProber returns one scripted result per call, repeating the last.
type seqProber struct {
	mu      sync.Mutex
	results []proberResult
	calls   int
}

func (p *seqProber) Probe(context.Context) ([]GPU, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.results[min(p.calls, len(p.results)-1)]
	p.calls++
	return r.gpus, r.err
}

type seqHost struct {
	mu      sync.Mutex
	samples []HostSample
	calls   int
}

func (h *seqHost) Probe(context.Context) (HostSample, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.samples[min(h.calls, len(h.samples)-1)]
	h.calls++
	return s, nil
}

type publishedEvent struct {
	typ string
	ev  ThresholdEvent
}

type recordingPublisher struct {
	mu     sync.Mutex
	events []publishedEvent
}

func (p *recordingPublisher) Publish(data events.Payload) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, publishedEvent{data.EventType(), data.(ThresholdEvent)})
}

func (p *recordingPublisher) types() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, e := range p.events {
		out = append(out, e.typ+"@"+e.ev.Subject)
	}
	return out
}

// chanSink hands every sample to the test, so Run tests wait on samples
// instead of sleeping.
type chanSink struct {
	samples chan Sample
	err     error
}

func (s *chanSink) RecordSample(_ context.Context, smp Sample) error {
	s.samples <- smp
	return s.err
}

// recordHandler keeps log records for assertions.
type recordHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) count(level slog.Level, msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.records {
		if r.Level == level && r.Message == msg {
			n++
		}
	}
	return n
}

// gpuAt builds a 10000 MiB GPU with the given VRAM used percent and
// temperature; a negative value means unknown.
func gpuAt(uuid string, usedPct, tempC float64) GPU {
	g := GPU{Source: SourceNVIDIA, UUID: uuid, Name: "Test GPU", MemoryTotalBytes: u64(10000 * mib)}
	if usedPct >= 0 {
		g.MemoryUsedBytes = u64(uint64(usedPct * 100 * mib))
	}
	if tempC >= 0 {
		g.TemperatureC = f64(tempC)
	}
	return g
}

func TestMonitorThresholdHysteresis(t *testing.T) {
	th := Thresholds{
		VRAMUsedPercent:       Threshold{High: 90, Low: 80},
		GPUTemperatureC:       Threshold{High: 85, Low: 75},
		HostMemoryUsedPercent: Threshold{High: 90, Low: 80},
	}
	tests := []struct {
		name  string
		gpus  [][]GPU
		host  []float64 // host memory used percent per sample; nil for none
		want  []string
		value float64 // Value of the first event, if any
	}{
		{
			name: "above, hover, below: two events, no flapping",
			gpus: [][]GPU{
				{gpuAt("A", 50, 40)}, {gpuAt("A", 91, 40)}, {gpuAt("A", 89, 40)}, {gpuAt("A", 92, 40)},
				{gpuAt("A", 81, 40)}, {gpuAt("A", 80, 40)}, {gpuAt("A", 85, 40)}, {gpuAt("A", 90, 40)},
			},
			want:  []string{EventVRAMHigh + "@A", EventVRAMNormal + "@A", EventVRAMHigh + "@A"},
			value: 91,
		},
		{
			name: "unknown reading keeps state",
			gpus: [][]GPU{{gpuAt("A", 95, -1)}, {gpuAt("A", -1, -1)}, {gpuAt("A", 95, -1)}, {gpuAt("A", 10, -1)}},
			want: []string{EventVRAMHigh + "@A", EventVRAMNormal + "@A"},
		},
		{
			name: "per GPU state and temperature",
			gpus: [][]GPU{
				{gpuAt("A", 10, 86), gpuAt("B", 95, 60)},
				{gpuAt("A", 10, 80), gpuAt("B", 95, 60)},
				{gpuAt("A", 10, 70), gpuAt("B", 50, 60)},
			},
			want: []string{EventGPUTempHigh + "@A", EventVRAMHigh + "@B", EventGPUTempNormal + "@A", EventVRAMNormal + "@B"},
		},
		{
			name: "host memory",
			gpus: [][]GPU{{}},
			host: []float64{85, 95, 85, 70, 70},
			want: []string{EventHostMemoryHigh + "@host", EventHostMemoryNormal + "@host"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var results []proberResult
			for _, g := range tt.gpus {
				results = append(results, proberResult{gpus: g})
			}
			pub := &recordingPublisher{}
			m := &Monitor{GPU: &seqProber{results: results}, Publisher: pub, Thresholds: th,
				Logger: slog.New(&recordHandler{})}
			n := len(tt.gpus)
			if tt.host != nil {
				var hs []HostSample
				for _, p := range tt.host {
					hs = append(hs, HostSample{MemoryTotalBytes: 100, MemoryUsedPercent: p})
				}
				m.Host = &seqHost{samples: hs}
				n = max(n, len(tt.host))
			}
			for range n {
				if _, err := m.Collect(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			got := pub.types()
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("events = %q, want %q", got, tt.want)
			}
			if tt.value != 0 {
				ev := pub.events[0].ev
				if ev.Value < tt.value-0.01 || ev.Value > tt.value+0.01 || ev.High != 90 || ev.Low != 80 || ev.Metric != "vram_used_percent" {
					t.Errorf("first event = %+v, want value %v, high 90, low 80", ev, tt.value)
				}
			}
		})
	}
}

// TestMonitorRun drives Run with a tick channel the test owns: a sample at
// start and one per tick, the injected clock on each, the sink and Latest
// fed, and a clean nil on cancel.
func TestMonitorRun(t *testing.T) {
	ticks := make(chan time.Time)
	stopped := make(chan struct{})
	base := time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)
	var clockMu sync.Mutex
	clock := base
	sink := &chanSink{samples: make(chan Sample)}
	m := &Monitor{
		GPU:        &seqProber{results: []proberResult{{gpus: []GPU{gpuAt("A", 10, 40)}}}},
		Host:       &seqHost{samples: []HostSample{{MemoryTotalBytes: 100, MemoryUsedPercent: 10}}},
		Sink:       sink,
		Thresholds: DefaultThresholds(),
		Interval:   time.Minute,
		Now: func() time.Time {
			clockMu.Lock()
			defer clockMu.Unlock()
			return clock
		},
		Tick: func(d time.Duration) (<-chan time.Time, func()) {
			if d != time.Minute {
				t.Errorf("ticker interval = %s, want 1m", d)
			}
			return ticks, func() { close(stopped) }
		},
		Logger: slog.New(&recordHandler{}),
	}
	if _, ok := m.Latest(); ok {
		t.Fatal("Latest reported a sample before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	for i := range 3 {
		s := <-sink.samples
		if want := base.Add(time.Duration(i) * time.Minute); !s.Time.Equal(want) {
			t.Errorf("sample %d time = %s, want %s", i, s.Time, want)
		}
		if len(s.GPUs) != 1 || s.Host == nil || s.GPUSource != SourceNVIDIA {
			t.Errorf("sample %d = %+v, want one nvidia GPU and host metrics", i, s)
		}
		latest, ok := m.Latest()
		if !ok || !latest.Time.Equal(s.Time) {
			t.Errorf("Latest = %v, %v; want the sample just recorded", latest.Time, ok)
		}
		clockMu.Lock()
		clock = clock.Add(time.Minute)
		clockMu.Unlock()
		if i < 2 {
			ticks <- clock
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
	select {
	case <-stopped:
	default:
		t.Error("ticker was not stopped")
	}
}

func TestMonitorRunRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name    string
		m       *Monitor
		wantErr string
	}{
		{"no prober", &Monitor{}, "no GPU prober"},
		{"bad thresholds", &Monitor{GPU: None{}, Thresholds: Thresholds{VRAMUsedPercent: Threshold{High: 80, Low: 90}}}, "vram_used_percent.low = 90"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Run = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestThresholdsValidate(t *testing.T) {
	tests := []struct {
		name    string
		th      Thresholds
		wantErr string
	}{
		{"defaults", DefaultThresholds(), ""},
		{"all disabled", Thresholds{}, ""},
		{"low above high", Thresholds{GPUTemperatureC: Threshold{High: 80, Low: 80}}, "gpu_temperature_c.low = 80: must be at least 0 and below high (80)"},
		{"percent over 100", Thresholds{HostMemoryUsedPercent: Threshold{High: 120, Low: 80}}, "host_memory_used_percent.high = 120: a percentage must be at most 100"},
		{"low without high", Thresholds{VRAMUsedPercent: Threshold{Low: 50}}, "vram_used_percent.high = 0: must be above 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.th.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidThreshold) {
				t.Fatalf("error = %v, want ErrInvalidThreshold containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestMonitorLogsProbeFailureOnce: the same failure on every tick is one
// warning; a different failure is another; recovery is one info line.
func TestMonitorLogsProbeFailureOnce(t *testing.T) {
	e1 := errors.New("nvidia-smi exited with status 9: driver gone")
	e2 := errors.New("nvidia-smi did not answer within 5s and was killed")
	h := &recordHandler{}
	m := &Monitor{
		GPU: &seqProber{results: []proberResult{
			{err: e1}, {err: e1}, {err: e1}, {err: e2}, {err: e2}, {gpus: []GPU{gpuAt("A", 1, 1)}}, {gpus: []GPU{gpuAt("A", 1, 1)}},
		}},
		Sink:   &chanSink{samples: make(chan Sample, 10), err: errors.New("database is locked")},
		Logger: slog.New(h),
	}
	var last Sample
	for range 7 {
		s, err := m.Collect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if s.GPUError == "" && len(s.GPUs) == 0 {
			t.Error("a failed probe left no GPUError")
		}
		last = s
	}
	wantEq(t, "probe failure warnings", h.count(slog.LevelWarn, "gpu probe failed"), 2)
	wantEq(t, "recoveries", h.count(slog.LevelInfo, "gpu probe recovered"), 1)
	wantEq(t, "sink failure warnings", h.count(slog.LevelWarn, "record sample failed"), 1)
	wantEq(t, "last sample error", last.GPUError, "")
}

// TestMonitorCollectCancelled: a probe cut short by shutdown is neither
// recorded nor kept as Latest.
func TestMonitorCollectCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sink := &chanSink{samples: make(chan Sample, 1)}
	m := &Monitor{
		GPU: proberFunc(func(ctx context.Context) ([]GPU, error) {
			cancel()
			return nil, ctx.Err()
		}),
		Sink:   sink,
		Logger: slog.New(&recordHandler{}),
	}
	if _, err := m.Collect(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Collect = %v, want context.Canceled", err)
	}
	if _, ok := m.Latest(); ok {
		t.Error("cancelled sample became Latest")
	}
	wantEq(t, "recorded samples", len(sink.samples), 0)
	if err := m.Run(ctx); err != nil {
		t.Errorf("Run on cancelled context = %v, want nil", err)
	}
}

type proberFunc func(ctx context.Context) ([]GPU, error)

func (f proberFunc) Probe(ctx context.Context) ([]GPU, error) { return f(ctx) }

func TestLogValue(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, nil))
	s := Sample{
		Time:      time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC),
		GPUSource: SourceNVIDIA,
		GPUs:      []GPU{{Source: SourceNVIDIA, Index: 0, Name: "RTX", MemoryTotalBytes: u64(1024), TemperatureC: f64(50)}},
		Host:      &HostSample{MemoryTotalBytes: 2048, MemoryUsedPercent: 12.5, Temperatures: []Temperature{{Sensor: "cpu", Celsius: 60}}},
	}
	log.Info("x", "sample", s)
	out := buf.String()
	for _, want := range []string{"sample.gpu0.memory_total_bytes=1024", "sample.gpu0.temperature_c=50", "sample.host.memory_used_percent=12.5", "sample.host.hottest_sensor=cpu", "sample.gpu_source=nvidia"} {
		if !strings.Contains(out, want) {
			t.Errorf("log line lacks %q: %s", want, out)
		}
	}
	if strings.Contains(out, "power_draw_w") {
		t.Errorf("unknown power was logged: %s", out)
	}
}
