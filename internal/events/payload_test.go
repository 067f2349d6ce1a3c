package events_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/fallback"
	"github.com/agentd/agentd/internal/vram"
)

// TestEventTypesAgree: the packages that publish keep their own names for
// some types; they must be the payloads' types.
func TestEventTypesAgree(t *testing.T) {
	for got, want := range map[string]string{
		fallback.EventDeferredExpired:   events.DeferredExpiredData{}.EventType(),
		fallback.EventDeferredDrained:   events.DeferredDrainedData{}.EventType(),
		fallback.EventCapReached:        events.BudgetCapReachedData{}.EventType(),
		fallback.EventProviderSuspended: events.ProviderSuspendedData{}.EventType(),
		fallback.EventProviderEnabled:   events.ProviderEnabledData{}.EventType(),
		vram.EventModelSpill:            events.ModelSpillData{}.EventType(),
		vram.EventModelSpillCleared:     events.ModelSpillData{Cleared: true}.EventType(),
	} {
		if got != want {
			t.Errorf("publisher's type %q, payload's %q", got, want)
		}
	}
}

// TestGPUSampleIsVRAMSample: gpu.sample's data is vram.Sample's JSON, field
// for field, so the status page, the metrics and the stream agree.
func TestGPUSampleIsVRAMSample(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	f := func(v float64) *float64 { return &v }
	s := vram.Sample{Time: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), GPUSource: "nvidia", GPUError: "partial",
		GPUs: []vram.GPU{{Source: "nvidia", Index: 1, UUID: "GPU-1", Name: "RTX", MemoryTotalBytes: u(20e9),
			MemoryUsedBytes: u(9e9), MemoryFreeBytes: u(11e9), UtilizationPercent: f(55), TemperatureC: f(61),
			PowerDrawW: f(70), PowerLimitW: f(130), Simulated: true}},
		Host: &vram.HostSample{MemoryTotalBytes: 64e9, MemoryUsedBytes: 30e9, MemoryAvailableBytes: 34e9,
			MemoryUsedPercent: 46.9, CPUPercent: f(12.5), Load: &vram.LoadAverage{Load1: 1, Load5: 2, Load15: 3},
			Temperatures: []vram.Temperature{{Sensor: "cpu", Celsius: 50}}, Warnings: []string{"w"}},
		HostError: "none"}
	want, _ := json.Marshal(s)
	got, _ := json.Marshal(s.EventData())
	var a, b any
	_ = json.Unmarshal(want, &a)
	_ = json.Unmarshal(got, &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("gpu.sample data\n%s\nvram.Sample\n%s", got, want)
	}
	// Every field of the host is carried: a field added to HostSample
	// and not to events.HostData shows here.
	if n, m := reflect.TypeFor[vram.HostSample]().NumField(), reflect.TypeFor[events.HostData]().NumField(); n != m {
		t.Errorf("vram.HostSample has %d fields, events.HostData %d", n, m)
	}
}

func TestDecode(t *testing.T) {
	b := events.New(nil, 16, quiet)
	ev := b.Emit("r", events.StepStatusData{StepID: "a", Status: "done"})
	if d, ok := events.Decode[events.StepStatusData](ev); !ok || d.StepID != "a" {
		t.Errorf("decode step.status: %+v %v", d, ok)
	}
	if _, ok := events.Decode[events.RunStatusData](ev); ok {
		t.Error("a step.status decoded as run.status")
	}
	th := b.Emit("", events.ThresholdData{Type: events.VRAMHigh, Metric: "vram_used_percent", Level: "high"})
	if d, ok := events.Decode[events.ThresholdData](th); !ok || d.Type != events.VRAMHigh || th.Type != events.VRAMHigh {
		t.Errorf("threshold: event %s, decoded %+v %v", th.Type, d, ok)
	}
}
