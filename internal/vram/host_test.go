package vram

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/sensors"
)

func fakeMemory(total, used, avail uint64) func(context.Context) (*mem.VirtualMemoryStat, error) {
	return func(context.Context) (*mem.VirtualMemoryStat, error) {
		return &mem.VirtualMemoryStat{Total: total, Used: used, Available: avail}, nil
	}
}

func fakeLoad(context.Context) (*load.AvgStat, error) {
	return &load.AvgStat{Load1: 1.5, Load5: 1.25, Load15: 0.5}, nil
}

func TestHostProbe(t *testing.T) {
	const gib = 1 << 30
	coretemp := []sensors.TemperatureStat{{SensorKey: "coretemp_package_id_0", Temperature: 61}, {SensorKey: "nvme_composite", Temperature: 44}}
	tests := []struct {
		name         string
		host         *Host
		wantErr      string
		wantMemPct   float64
		wantLoad     bool
		wantTemps    int
		wantWarnings []string
	}{
		{
			name: "all readings",
			host: &Host{
				Root:          filepath.Join("testdata", "host", "t0"),
				VirtualMemory: fakeMemory(64*gib, 40*gib, 16*gib),
				LoadAvg:       fakeLoad,
				Temperatures:  func(context.Context) ([]sensors.TemperatureStat, error) { return coretemp, nil },
			},
			wantMemPct: 75, wantLoad: true, wantTemps: 2,
		},
		{
			name: "partial sensors keep their readings",
			host: &Host{
				Root:          filepath.Join("testdata", "host", "t0"),
				VirtualMemory: fakeMemory(64*gib, 32*gib, 32*gib),
				LoadAvg:       fakeLoad,
				Temperatures: func(context.Context) ([]sensors.TemperatureStat, error) {
					return coretemp[:1], &sensors.Warnings{List: []error{errors.New("read hwmon5: permission denied")}}
				},
			},
			wantMemPct: 50, wantLoad: true, wantTemps: 1,
			wantWarnings: []string{"temperature sensors (partial)"},
		},
		{
			name: "unsupported sensors and load are warnings, not errors",
			host: &Host{
				Root:          filepath.Join("testdata", "host", "garbage"),
				VirtualMemory: fakeMemory(8*gib, 2*gib, 6*gib),
				LoadAvg:       func(context.Context) (*load.AvgStat, error) { return nil, errors.New("not implemented yet") },
				Temperatures: func(context.Context) ([]sensors.TemperatureStat, error) {
					return []sensors.TemperatureStat{}, errors.New("not implemented yet")
				},
			},
			wantMemPct: 25,
			wantWarnings: []string{
				"load average: not implemented yet",
				`cpu percent: /proc/stat cpu column 2: "x" is not a number`,
				"temperature sensors: not implemented yet",
			},
		},
		{
			name: "memory failure is an error",
			host: &Host{
				VirtualMemory: func(context.Context) (*mem.VirtualMemoryStat, error) {
					return nil, errors.New("open /proc/meminfo: no such file")
				},
			},
			wantErr: "read host memory: open /proc/meminfo: no such file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.host.Probe(context.Background())
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantEq(t, "memory used percent", s.MemoryUsedPercent, tt.wantMemPct)
			wantEq(t, "load known", s.Load != nil, tt.wantLoad)
			if tt.wantLoad {
				wantEq(t, "load5", s.Load.Load5, 1.25)
			}
			wantEq(t, "temperatures", len(s.Temperatures), tt.wantTemps)
			wantNil(t, "first-sample cpu percent", s.CPUPercent)
			if len(s.Warnings) != len(tt.wantWarnings) {
				t.Fatalf("warnings = %q, want %d matching %q", s.Warnings, len(tt.wantWarnings), tt.wantWarnings)
			}
			for i, w := range tt.wantWarnings {
				if !strings.HasPrefix(s.Warnings[i], w) {
					t.Errorf("warning %d = %q, want prefix %q", i, s.Warnings[i], w)
				}
			}
		})
	}
}

// TestHostCPUPercent checks the /proc/stat delta: between t0 and t1, 800 of
// 2000 jiffies were busy (guest time is inside user and not added twice).
func TestHostCPUPercent(t *testing.T) {
	h := &Host{VirtualMemory: fakeMemory(1, 0, 1), LoadAvg: fakeLoad,
		Temperatures: func(context.Context) ([]sensors.TemperatureStat, error) { return nil, nil }}
	steps := []struct {
		root string
		want *float64
	}{
		{"t0", nil},
		{"t1", f64(40)},
		{"t1", nil}, // no time passed: unknown, not 0% or NaN
	}
	for i, st := range steps {
		h.Root = filepath.Join("testdata", "host", st.root)
		s, err := h.Probe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.want == nil {
			wantNil(t, "cpu percent step "+st.root, s.CPUPercent)
			continue
		}
		if s.CPUPercent == nil || *s.CPUPercent != *st.want {
			t.Errorf("step %d: cpu percent = %v, want %v", i, s.CPUPercent, *st.want)
		}
	}
}

// TestHostProbeReal runs the gopsutil defaults against this machine.
func TestHostProbeReal(t *testing.T) {
	h := &Host{}
	s, err := h.Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.MemoryTotalBytes == 0 || s.MemoryAvailableBytes > s.MemoryTotalBytes {
		t.Errorf("implausible memory: %+v", s)
	}
	if runtime.GOOS == "linux" {
		if s.Load == nil {
			t.Errorf("no load average on linux: warnings %q", s.Warnings)
		}
		if _, err := h.Probe(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHottest(t *testing.T) {
	s := HostSample{Temperatures: []Temperature{{Sensor: "a", Celsius: 40}, {Sensor: "b", Celsius: 72.5}, {Sensor: "c", Celsius: 55}}}
	hot, ok := s.Hottest()
	if !ok || hot.Sensor != "b" {
		t.Errorf("Hottest = %v, %v; want b", hot, ok)
	}
	if _, ok := (HostSample{}).Hottest(); ok {
		t.Error("Hottest on no sensors reported ok")
	}
}
