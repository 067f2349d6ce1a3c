package vram

// ModelSize is a model and the VRAM it takes when loaded (Ollama's /api/ps
// size for the num_ctx in use, which is larger than the file on disk).
type ModelSize struct {
	Name  string `json:"name"`
	Bytes uint64 `json:"bytes"`
}

// FitResult says which models can be loaded together.
type FitResult struct {
	// Fits are the models that co-reside, in the order given.
	Fits []string `json:"fits"`
	// DoNotFit are the models left out, in the order given.
	DoNotFit []string `json:"do_not_fit"`
	// BudgetBytes is free VRAM minus headroom; LeftBytes is what remains of
	// it after the models that fit.
	BudgetBytes uint64 `json:"budget_bytes"`
	LeftBytes   uint64 `json:"left_bytes"`
}

// AllFit reports whether every model fits at once, the case where planner
// and executors can all stay loaded with a long keep_alive.
func (r FitResult) AllFit() bool { return len(r.DoNotFit) == 0 }

// Fit decides which models can be resident together in freeBytes of VRAM
// while keeping headroomBytes spare (KV cache growth, other processes).
// Models are taken in priority order, planner first: each is kept if it
// still fits, otherwise skipped, and a later smaller model may still fit.
// Priority beats packing on purpose: holding the planner matters more than
// holding the most models.
func Fit(freeBytes, headroomBytes uint64, models []ModelSize) FitResult {
	r := FitResult{Fits: []string{}, DoNotFit: []string{}}
	if freeBytes > headroomBytes {
		r.BudgetBytes = freeBytes - headroomBytes
	}
	r.LeftBytes = r.BudgetBytes
	for _, m := range models {
		if m.Bytes <= r.LeftBytes {
			r.Fits = append(r.Fits, m.Name)
			r.LeftBytes -= m.Bytes
			continue
		}
		r.DoNotFit = append(r.DoNotFit, m.Name)
	}
	return r
}

// TotalFreeBytes sums free VRAM over the GPUs whose free memory is known;
// ok is false when none is. Ollama can split one model across GPUs, so the
// sum is the right input to Fit for a multi-GPU machine.
func TotalFreeBytes(gpus []GPU) (free uint64, ok bool) {
	for _, g := range gpus {
		if f, known := g.FreeBytes(); known {
			free += f
			ok = true
		}
	}
	return free, ok
}
