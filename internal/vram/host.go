package vram

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/sensors"

	"github.com/agentd/agentd/internal/events"
)

// HostSample is the host's memory, CPU and temperatures at one moment.
// Memory is in bytes. Values that could not be read are nil (CPU percent is
// nil on the first sample: it needs two readings) and the reason is in
// Warnings.
type HostSample struct {
	MemoryTotalBytes     uint64 `json:"memory_total_bytes"`
	MemoryUsedBytes      uint64 `json:"memory_used_bytes"`
	MemoryAvailableBytes uint64 `json:"memory_available_bytes"`
	// MemoryUsedPercent is (total-available)/total*100: memory the kernel
	// cannot hand to a new process (a model load) without swapping.
	MemoryUsedPercent float64 `json:"memory_used_percent"`
	// CPUPercent is all-core busy time since the previous sample, 0-100.
	CPUPercent   *float64      `json:"cpu_percent"`
	Load         *LoadAverage  `json:"load"`
	Temperatures []Temperature `json:"temperatures,omitempty"`
	Warnings     []string      `json:"warnings,omitempty"`
}

// LoadAverage is the 1, 5 and 15 minute run-queue averages; the host
// sample's event carries the same type.
type LoadAverage = events.LoadAverage

// Temperature is one sensor reading in degrees Celsius.
type Temperature = events.Temperature

// LogValue logs memory, CPU and load; the sensor list is summarised by its
// hottest reading to keep log lines short.
func (h HostSample) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.Uint64("memory_total_bytes", h.MemoryTotalBytes),
		slog.Uint64("memory_available_bytes", h.MemoryAvailableBytes),
		slog.Float64("memory_used_percent", h.MemoryUsedPercent),
	}
	attrs = appendFloat(attrs, "cpu_percent", h.CPUPercent)
	if h.Load != nil {
		attrs = append(attrs, slog.Float64("load1", h.Load.Load1))
	}
	if t, ok := h.Hottest(); ok {
		attrs = append(attrs, slog.String("hottest_sensor", t.Sensor), slog.Float64("hottest_c", t.Celsius))
	}
	if len(h.Warnings) > 0 {
		attrs = append(attrs, slog.Int("warnings", len(h.Warnings)))
	}
	return slog.GroupValue(attrs...)
}

// Hottest is the highest temperature reading, if any.
func (h HostSample) Hottest() (Temperature, bool) {
	if len(h.Temperatures) == 0 {
		return Temperature{}, false
	}
	hot := h.Temperatures[0]
	for _, t := range h.Temperatures[1:] {
		if t.Celsius > hot.Celsius {
			hot = t
		}
	}
	return hot, true
}

// HostProber reports host metrics. Monitor uses it; Host implements it.
type HostProber interface {
	Probe(ctx context.Context) (HostSample, error)
}

// Host reads host metrics with gopsutil. Memory is required (an error if it
// cannot be read); load, CPU and temperatures are best effort and their
// failures become warnings. The function fields are test seams; nil means
// the gopsutil call.
type Host struct {
	// Root is the filesystem root for /proc/stat; empty means "/".
	// CPU percent is computed from /proc/stat deltas (Linux only).
	Root string

	VirtualMemory func(ctx context.Context) (*mem.VirtualMemoryStat, error)
	LoadAvg       func(ctx context.Context) (*load.AvgStat, error)
	Temperatures  func(ctx context.Context) ([]sensors.TemperatureStat, error)

	mu       sync.Mutex
	prevCPU  cpuTimes
	havePrev bool
}

var _ HostProber = (*Host)(nil)

// Probe takes one host sample.
func (h *Host) Probe(ctx context.Context) (HostSample, error) {
	var s HostSample
	vm := h.VirtualMemory
	if vm == nil {
		vm = mem.VirtualMemoryWithContext
	}
	m, err := vm(ctx)
	if err != nil {
		return HostSample{}, fmt.Errorf("read host memory: %w", err)
	}
	s.MemoryTotalBytes, s.MemoryUsedBytes, s.MemoryAvailableBytes = m.Total, m.Used, m.Available
	if m.Total > 0 && m.Available <= m.Total {
		s.MemoryUsedPercent = float64(m.Total-m.Available) / float64(m.Total) * 100
	}

	la := h.LoadAvg
	if la == nil {
		la = load.AvgWithContext
	}
	if l, err := la(ctx); err != nil {
		s.Warnings = append(s.Warnings, fmt.Sprintf("load average: %v", err))
	} else {
		s.Load = &LoadAverage{Load1: l.Load1, Load5: l.Load5, Load15: l.Load15}
	}

	pct, err := h.cpuPercent()
	if err != nil {
		s.Warnings = append(s.Warnings, fmt.Sprintf("cpu percent: %v", err))
	}
	s.CPUPercent = pct

	temps := h.Temperatures
	if temps == nil {
		temps = sensors.TemperaturesWithContext
	}
	ts, err := temps(ctx)
	// gopsutil returns what it could read together with a *Warnings for the
	// sensors it could not; keep the readings either way.
	var partial *sensors.Warnings
	switch {
	case errors.As(err, &partial):
		s.Warnings = append(s.Warnings, fmt.Sprintf("temperature sensors (partial): %v", err))
	case err != nil:
		s.Warnings = append(s.Warnings, fmt.Sprintf("temperature sensors: %v", err))
	}
	for _, t := range ts {
		s.Temperatures = append(s.Temperatures, Temperature{Sensor: t.SensorKey, Celsius: t.Temperature})
	}
	return s, nil
}

// cpuTimes are the aggregate jiffy counters from the first line of
// /proc/stat.
type cpuTimes struct {
	busy, total uint64
}

// cpuPercent is busy time over total time since the last call; nil on the
// first call.
func (h *Host) cpuPercent() (*float64, error) {
	root := h.Root
	if root == "" {
		root = "/"
	}
	b, err := os.ReadFile(filepath.Join(root, "proc", "stat"))
	if err != nil {
		return nil, err
	}
	cur, err := parseProcStat(b)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	prev, had := h.prevCPU, h.havePrev
	h.prevCPU, h.havePrev = cur, true
	if !had || cur.total <= prev.total || cur.busy < prev.busy {
		return nil, nil
	}
	pct := float64(cur.busy-prev.busy) / float64(cur.total-prev.total) * 100
	return &pct, nil
}

// parseProcStat reads the "cpu" line: user nice system idle iowait irq
// softirq steal [guest guest_nice]. Guest time is already counted in user,
// so only the first eight columns are summed; idle and iowait are not busy.
func parseProcStat(b []byte) (cpuTimes, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 5 {
			return cpuTimes{}, fmt.Errorf("/proc/stat cpu line has %d columns, want at least 4 counters", len(f))
		}
		var t cpuTimes
		for i, s := range f[1:min(len(f), 9)] {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return cpuTimes{}, fmt.Errorf("/proc/stat cpu column %d: %q is not a number", i+1, s)
			}
			t.total += v
			if i != 3 && i != 4 { // idle, iowait
				t.busy += v
			}
		}
		return t, nil
	}
	return cpuTimes{}, errors.New("/proc/stat has no aggregate cpu line")
}
