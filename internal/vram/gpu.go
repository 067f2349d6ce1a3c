// Package vram watches the machine agentd runs on: GPU memory and use
// (nvidia-smi, AMD sysfs), host memory, CPU and temperatures, and which
// models Ollama holds resident. It samples on an interval, keeps the latest
// sample for status pages, hands every sample to a sink, and publishes
// threshold events with hysteresis.
package vram

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
)

// GPU is one accelerator as a probe saw it. Sizes are bytes, percentages are
// 0-100, temperatures degrees Celsius and power watts. A nil pointer means the
// source could not report the value ("[N/A]", "[Not Supported]", a missing
// sysfs file); it never stands for zero.
type GPU struct {
	Source             string   `json:"source"` // "nvidia", "amd" or "simulated"
	Index              int      `json:"index"`
	UUID               string   `json:"uuid,omitempty"`
	Name               string   `json:"name"`
	MemoryTotalBytes   *uint64  `json:"memory_total_bytes"`
	MemoryUsedBytes    *uint64  `json:"memory_used_bytes"`
	MemoryFreeBytes    *uint64  `json:"memory_free_bytes"`
	UtilizationPercent *float64 `json:"utilization_percent"`
	TemperatureC       *float64 `json:"temperature_c"`
	PowerDrawW         *float64 `json:"power_draw_w"`
	PowerLimitW        *float64 `json:"power_limit_w"`
	// Simulated marks a GPU that does not exist: the demo's, modelled by
	// the Ollama simulator. Dashboards and status label it so.
	Simulated bool `json:"simulated,omitempty"`
}

// ID names the GPU stably across samples: its UUID when the source has one,
// otherwise source and index.
func (g GPU) ID() string {
	if g.UUID != "" {
		return g.UUID
	}
	return g.Source + ":" + strconv.Itoa(g.Index)
}

// FreeBytes is the VRAM free now. Sources that report only total and used
// (AMD sysfs) get total-used; ok is false when neither way is known.
func (g GPU) FreeBytes() (free uint64, ok bool) {
	if g.MemoryFreeBytes != nil {
		return *g.MemoryFreeBytes, true
	}
	if g.MemoryTotalBytes != nil && g.MemoryUsedBytes != nil {
		if *g.MemoryUsedBytes >= *g.MemoryTotalBytes {
			return 0, true
		}
		return *g.MemoryTotalBytes - *g.MemoryUsedBytes, true
	}
	return 0, false
}

// VRAMUsedPercent is used/total*100; ok is false when either is unknown or
// the total is zero.
func (g GPU) VRAMUsedPercent() (pct float64, ok bool) {
	if g.MemoryTotalBytes == nil || g.MemoryUsedBytes == nil || *g.MemoryTotalBytes == 0 {
		return 0, false
	}
	return float64(*g.MemoryUsedBytes) / float64(*g.MemoryTotalBytes) * 100, true
}

// LogValue logs the known fields only, so an unknown value is absent rather
// than a misleading zero.
func (g GPU) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("source", g.Source),
		slog.Int("index", g.Index),
		slog.String("name", g.Name),
	}
	if g.UUID != "" {
		attrs = append(attrs, slog.String("uuid", g.UUID))
	}
	attrs = appendUint(attrs, "memory_total_bytes", g.MemoryTotalBytes)
	attrs = appendUint(attrs, "memory_used_bytes", g.MemoryUsedBytes)
	attrs = appendUint(attrs, "memory_free_bytes", g.MemoryFreeBytes)
	attrs = appendFloat(attrs, "utilization_percent", g.UtilizationPercent)
	attrs = appendFloat(attrs, "temperature_c", g.TemperatureC)
	attrs = appendFloat(attrs, "power_draw_w", g.PowerDrawW)
	attrs = appendFloat(attrs, "power_limit_w", g.PowerLimitW)
	return slog.GroupValue(attrs...)
}

func appendUint(attrs []slog.Attr, key string, v *uint64) []slog.Attr {
	if v == nil {
		return attrs
	}
	return append(attrs, slog.Uint64(key, *v))
}

func appendFloat(attrs []slog.Attr, key string, v *float64) []slog.Attr {
	if v == nil {
		return attrs
	}
	return append(attrs, slog.Float64(key, *v))
}

// Prober reports the GPUs of one source. A probe may return GPUs together
// with an error when the result is partial (one unreadable line of several);
// callers should keep the GPUs and surface the error.
type Prober interface {
	Probe(ctx context.Context) ([]GPU, error)
}

// ErrUnavailable marks a source that is not present on this machine (no
// nvidia-smi binary, no AMD card in sysfs), as opposed to one that is present
// and failing. Auto moves on to the next source only for this error.
var ErrUnavailable = errors.New("gpu source unavailable")

// unavailableError carries a message written for the user while still
// matching ErrUnavailable with errors.Is.
type unavailableError struct{ msg string }

func (e *unavailableError) Error() string        { return e.msg }
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// Probe source names, as used in config (vram.probe) and GPU.Source.
const (
	SourceAuto   = "auto"
	SourceNVIDIA = "nvidia"
	SourceAMD    = "amd"
	SourceNone   = "none"
)
