package vram

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// NamedProber is a probe with the source name Auto reports once it has
// chosen it.
type NamedProber struct {
	Name   string
	Prober Prober
}

// Auto tries its probers in order (by default NVIDIA, then AMD, then None)
// and keeps the first that works, so later samples do not pay for probing
// absent hardware again. A source that is merely absent (ErrUnavailable) is
// passed over; one that is present and failing (nvidia-smi exits non-zero)
// is reported and nothing is remembered, so the next probe tries again
// rather than settling on "no GPU" because a driver was briefly sick.
type Auto struct {
	Probers []NamedProber

	mu     sync.Mutex
	chosen *NamedProber
}

var _ Prober = (*Auto)(nil)

// NewAuto returns an Auto over NVIDIA (nvidia-smi in PATH), AMD (sysfs under
// root, "" meaning "/") and None.
func NewAuto(root string) *Auto {
	return &Auto{Probers: []NamedProber{
		{Name: SourceNVIDIA, Prober: &NVIDIA{}},
		{Name: SourceAMD, Prober: &AMD{Root: root}},
		{Name: SourceNone, Prober: None{}},
	}}
}

// NewProber builds the probe for a config value of vram.probe: "auto",
// "nvidia", "amd" or "none".
func NewProber(source, root string) (Prober, error) {
	switch source {
	case SourceAuto, "":
		return NewAuto(root), nil
	case SourceNVIDIA:
		return &NVIDIA{}, nil
	case SourceAMD:
		return &AMD{Root: root}, nil
	case SourceNone:
		return None{}, nil
	}
	return nil, fmt.Errorf("vram.probe %q: must be one of auto, nvidia, amd, none", source)
}

// Source is the name of the chosen prober, or "" before one has worked.
func (a *Auto) Source() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.chosen == nil {
		return ""
	}
	return a.chosen.Name
}

// Probe runs the remembered prober, or searches for one.
func (a *Auto) Probe(ctx context.Context) ([]GPU, error) {
	// One probe at a time: the search must not run twice concurrently, and
	// nvidia-smi is not worth running in parallel with itself anyway.
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.chosen != nil {
		return a.chosen.Prober.Probe(ctx)
	}
	var failures []error
	for i := range a.Probers {
		p := &a.Probers[i]
		gpus, err := p.Prober.Probe(ctx)
		if err == nil || len(gpus) > 0 {
			a.chosen = p
			return gpus, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, ErrUnavailable) {
			return nil, fmt.Errorf("probe %s: %w", p.Name, err)
		}
		failures = append(failures, err)
	}
	return nil, fmt.Errorf("no GPU source worked: %w", errors.Join(failures...))
}
