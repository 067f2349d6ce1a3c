package ollamasim

import (
	"errors"
	"fmt"
)

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid simulator config")

// Validate reports the first unusable setting, naming the field, the bad
// value and what is allowed. New does not call it (it fills defaults and
// tolerates odd values); `agentd demo` and benchmarks should, so a typo in
// a hand-written catalog fails loudly instead of producing odd timings.
func (cfg Config) Validate() error {
	bad := func(field string, value any, allowed string) error {
		return fmt.Errorf("%w: %s = %v, want %s", ErrInvalidConfig, field, value, allowed)
	}
	if cfg.TimeScale < 0 {
		return bad("TimeScale", cfg.TimeScale, "0 (instant) or more")
	}
	if cfg.NumParallel < 0 {
		return bad("NumParallel", cfg.NumParallel, "0 (default 1) or more")
	}
	if cfg.MaxQueue < 0 {
		return bad("MaxQueue", cfg.MaxQueue, "0 (default 512) or more")
	}
	for _, f := range cfg.Faults {
		if f.Probability < 0 || f.Probability > 1 {
			return bad("Faults["+string(f.Class)+"].Probability", f.Probability, "0..1")
		}
		if !knownFault(f.Class) {
			return bad("Faults.Class", f.Class, fmt.Sprintf("one of %v", FaultClasses))
		}
	}
	seen := map[string]bool{}
	for i, m := range cfg.Models {
		field := fmt.Sprintf("Models[%d]", i)
		switch {
		case normalizeName(m.Name) == "":
			return bad(field+".Name", fmt.Sprintf("%q", m.Name), "a model name such as \"qwen3:8b\"")
		case seen[normalizeName(m.Name)]:
			return bad(field+".Name", m.Name, "a name not already in the catalog")
		case m.Size <= 0:
			return bad(field+".Size", m.Size, "bytes > 0")
		case m.PrefillTPS <= 0:
			return bad(field+".PrefillTPS", m.PrefillTPS, "tokens/s > 0")
		case m.Has(CapCompletion) && m.DecodeTPS <= 0:
			return bad(field+".DecodeTPS", m.DecodeTPS, "tokens/s > 0 for a completion model")
		case len(m.Capabilities) == 0:
			return bad(field+".Capabilities", "[]", "at least one of completion, tools, embedding, vision, thinking")
		}
		seen[normalizeName(m.Name)] = true
	}
	return nil
}

func knownFault(c FaultClass) bool {
	for _, k := range FaultClasses {
		if k == c {
			return true
		}
	}
	return false
}
