package vram

import "context"

// None is the probe for machines without a usable GPU, or where GPU
// probing is switched off (vram.probe = "none"). It reports no GPUs and no
// error: CPU-only is a valid configuration, not a failure.
type None struct{}

var _ Prober = None{}

// Probe returns an empty list.
func (None) Probe(context.Context) ([]GPU, error) { return []GPU{}, nil }
