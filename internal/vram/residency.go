package vram

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/ollama/ollama/api"
)

// RunningLister is the one call residency needs from Ollama; it matches
// (*api.Client).ListRunning, which reads GET /api/ps.
type RunningLister interface {
	ListRunning(ctx context.Context) (*api.ProcessResponse, error)
}

var _ RunningLister = (*api.Client)(nil)

// Residency is one model Ollama holds loaded, and how much of it is on the
// GPU. Sizes are bytes.
type Residency struct {
	Name      string    `json:"name"`
	Model     string    `json:"model"`
	SizeBytes uint64    `json:"size_bytes"`
	VRAMBytes uint64    `json:"size_vram_bytes"`
	ExpiresAt time.Time `json:"expires_at"`
	// ContextLength is the num_ctx the model was loaded with; a request with
	// another value makes Ollama reload it.
	ContextLength int `json:"context_length,omitempty"`
	// Spill is true when part of the model runs on the CPU (size_vram <
	// size), which makes generation several times slower.
	Spill bool `json:"spill"`
	// CPUPercent is the share of the model not in VRAM, 0-100.
	CPUPercent float64 `json:"cpu_percent"`
	// Warning explains a spill to a person; empty without one.
	Warning string `json:"warning,omitempty"`
}

// LogValue logs the residency without the warning prose.
func (r Residency) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", r.Name),
		slog.Uint64("size_bytes", r.SizeBytes),
		slog.Uint64("size_vram_bytes", r.VRAMBytes),
		slog.Bool("spill", r.Spill),
		slog.Time("expires_at", r.ExpiresAt),
	)
}

// ReadResidency asks Ollama which models are loaded (/api/ps) and reports
// each with its VRAM share and a warning for those spilling to the CPU.
func ReadResidency(ctx context.Context, l RunningLister) ([]Residency, error) {
	resp, err := l.ListRunning(ctx)
	if err != nil {
		return nil, fmt.Errorf("list models loaded in ollama (/api/ps): %w", err)
	}
	if resp == nil {
		return []Residency{}, nil
	}
	out := make([]Residency, 0, len(resp.Models))
	for _, m := range resp.Models {
		out = append(out, residencyOf(m))
	}
	return out, nil
}

func residencyOf(m api.ProcessModelResponse) Residency {
	r := Residency{
		Name:          m.Name,
		Model:         m.Model,
		SizeBytes:     nonNegative(m.Size),
		VRAMBytes:     nonNegative(m.SizeVRAM),
		ExpiresAt:     m.ExpiresAt,
		ContextLength: m.ContextLength,
	}
	if r.Name == "" {
		r.Name = r.Model
	}
	if r.SizeBytes == 0 || r.VRAMBytes >= r.SizeBytes {
		return r
	}
	r.Spill = true
	r.CPUPercent = float64(r.SizeBytes-r.VRAMBytes) / float64(r.SizeBytes) * 100
	r.Warning = fmt.Sprintf("%s is %s on CPU (size %s, in VRAM %s): expect slow generation — free VRAM or choose a smaller model",
		r.Name, percentText(r.CPUPercent), gigabytes(r.SizeBytes), gigabytes(r.VRAMBytes))
	return r
}

func nonNegative(v int64) uint64 {
	if v < 0 {
		return 0
	}
	return uint64(v)
}

// percentText rounds to a whole percent but never claims a spill is 0% or
// a partial load is 100%.
func percentText(p float64) string {
	switch r := math.Round(p); {
	case r < 1:
		return "<1%"
	case r >= 100 && p < 100:
		return ">99%"
	default:
		return fmt.Sprintf("%.0f%%", r)
	}
}

// gigabytes formats decimal gigabytes with one decimal, as Ollama's own
// `ollama ps` does.
func gigabytes(b uint64) string {
	return fmt.Sprintf("%.1f GB", float64(b)/1e9)
}
