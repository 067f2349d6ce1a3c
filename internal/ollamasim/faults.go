package ollamasim

import (
	"hash/fnv"
	"math/rand/v2"
	"sync"
)

// FaultClass names a kind of misbehaviour agentd must survive.
type FaultClass string

// Fault classes. Output faults apply only where they make sense: invalid
// JSON needs `format`, unknown tool and wrong arguments need a tool call.
const (
	// FaultInvalidJSON returns broken JSON although `format` was set.
	FaultInvalidJSON FaultClass = "invalid_json"
	// FaultUnknownTool calls a tool that was not offered.
	FaultUnknownTool FaultClass = "unknown_tool"
	// FaultWrongArguments calls an offered tool with arguments that
	// violate its schema (a required property missing or mistyped).
	FaultWrongArguments FaultClass = "wrong_arguments"
	// FaultTruncation cuts the output in half with done_reason "length".
	FaultTruncation FaultClass = "truncation"
	// FaultTimeout holds the slot and never answers until the client
	// gives up (its request context ends).
	FaultTimeout FaultClass = "timeout"
	// FaultBusy answers 503 with Ollama's max-queue wording.
	FaultBusy FaultClass = "busy"
	// FaultMidStream streams part of the output then an {"error": ...}
	// line (non-streaming requests get a 500), as when a runner crashes.
	FaultMidStream FaultClass = "mid_stream_error"
	// FaultRepeatAbort makes the model repeat its last token until the
	// server aborts the completion, as Ollama does after 31 identical
	// tokens: the stream ends with no final chunk and a clean close; a
	// non-streamed reply is HTTP 200 with "done": false and no metrics.
	FaultRepeatAbort FaultClass = "repeat_abort"
)

// FaultClasses lists every class, in the order faults are evaluated.
var FaultClasses = []FaultClass{FaultBusy, FaultTimeout, FaultMidStream, FaultTruncation, FaultInvalidJSON, FaultUnknownTool, FaultWrongArguments, FaultRepeatAbort}

// Fault injects Class with the given Probability (0..1) into requests for
// Model (empty = every model).
type Fault struct {
	Class       FaultClass
	Probability float64
	Model       string
}

// faultInjector draws faults from one seeded stream per class, so a fixed
// seed and request order give the same faults, and enabling one class does
// not shift the draws of another.
type faultInjector struct {
	mu     sync.Mutex
	seed   uint64
	faults []Fault
	rngs   map[FaultClass]*rand.Rand
}

func newFaultInjector(seed uint64, faults []Fault) *faultInjector {
	f := &faultInjector{seed: seed, rngs: map[FaultClass]*rand.Rand{}}
	for _, x := range faults {
		f.set(x)
	}
	return f
}

// set adds or replaces the fault for (Class, Model); probability <= 0
// removes it.
func (f *faultInjector) set(fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	model := ""
	if fault.Model != "" {
		model = normalizeName(fault.Model)
	}
	kept := f.faults[:0]
	for _, x := range f.faults {
		if x.Class != fault.Class || x.Model != model {
			kept = append(kept, x)
		}
	}
	f.faults = kept
	if fault.Probability > 0 {
		fault.Model = model
		f.faults = append(f.faults, fault)
	}
}

func (f *faultInjector) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

// roll decides whether class strikes this request for model. A
// model-specific fault takes precedence over a global one. No draw is
// consumed when no fault of the class applies.
func (f *faultInjector) roll(class FaultClass, model string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	model = normalizeName(model)
	p, found := 0.0, false
	for _, x := range f.faults {
		if x.Class != class {
			continue
		}
		if x.Model == model {
			p, found = x.Probability, true
			break
		}
		if x.Model == "" {
			p, found = x.Probability, true
		}
	}
	if !found {
		return false
	}
	rng, ok := f.rngs[class]
	if !ok {
		h := fnv.New64a()
		h.Write([]byte(class))
		rng = rand.New(rand.NewPCG(f.seed, h.Sum64()))
		f.rngs[class] = rng
	}
	return rng.Float64() < p
}
