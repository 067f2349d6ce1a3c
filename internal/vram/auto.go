package vram

import (
	"context"

	"errors"
	"fmt"
	"github.com/agentd/agentd/internal/config"
	"sync"
)

// NamedProber is a probe with the source name Auto reports once it has
// chosen it.
type NamedProber struct {
	Name   string
	Prober Prober
}

// Auto tries its probers in order (by default NVIDIA, then AMD, then None)
// and keeps the first that reports GPUs, so later samples do not pay for
// probing absent hardware again. A source that is present and failing
// (nvidia-smi installed but exiting non-zero) does not stop the search, but
// it does stop Auto from settling on "no GPU": if nothing else finds a GPU,
// its error is returned and nothing is remembered, so the next probe tries
// again rather than hiding a briefly sick driver for the daemon's lifetime.
type Auto struct {
	Probers []NamedProber

	mu     sync.Mutex
	chosen *NamedProber
}

var _ Prober = (*Auto)(nil)

// NewAuto returns an Auto over nv, AMD (sysfs under root, "" meaning "/")
// and None.
func NewAuto(nv *NVIDIA, root string) *Auto {
	return &Auto{Probers: []NamedProber{
		{Name: SourceNVIDIA, Prober: nv},
		{Name: SourceAMD, Prober: &AMD{Root: root}},
		{Name: SourceNone, Prober: None{}},
	}}
}

// NewProber builds the probe the [vram] section asks for: vram.probe
// ("auto", "nvidia", "amd" or "none"), with vram.nvidia_smi and
// vram.probe_timeout applied to the NVIDIA probe whether it was named or
// found by auto, and vram.sysfs_root to the AMD one.
func NewProber(c config.VRAMConfig) (Prober, error) {
	nv := &NVIDIA{Path: c.NvidiaSMI, Timeout: c.ProbeTimeout.D()}
	switch c.Probe {
	case SourceAuto, "":
		return NewAuto(nv, c.SysfsRoot), nil
	case SourceNVIDIA:
		return nv, nil
	case SourceAMD:
		return &AMD{Root: c.SysfsRoot}, nil
	case SourceNone:
		return None{}, nil
	}
	return nil, fmt.Errorf("vram.probe %q: must be one of auto, nvidia, amd, none", c.Probe)
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
	var (
		failed error // first present-but-failing source
		absent []error
	)
	for i := range a.Probers {
		p := &a.Probers[i]
		gpus, err := p.Prober.Probe(ctx)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch {
		case len(gpus) > 0 || (err == nil && failed == nil):
			a.chosen = p
			return gpus, err
		case err == nil:
			// Nothing found here, but an earlier source exists and failed:
			// that failure is the better answer.
			return nil, failed
		case errors.Is(err, ErrUnavailable):
			absent = append(absent, err)
		case failed == nil:
			failed = fmt.Errorf("probe %s: %w", p.Name, err)
		}
	}
	if failed != nil {
		return nil, failed
	}
	return nil, fmt.Errorf("no GPU source worked: %w", errors.Join(absent...))
}
