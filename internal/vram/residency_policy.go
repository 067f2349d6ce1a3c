package vram

import (
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/llm"
)

// Residency modes the Manager runs in.
const (
	// ModeCoResident: every configured model fits in VRAM with headroom, so
	// all stay loaded with a long keep_alive and run side by side.
	ModeCoResident = "co-resident"
	// ModeSwap: they do not all fit, so the GPU serves one model (plus any
	// that fit beside it) at a time and queued calls are grouped by model.
	ModeSwap = "swap"
	// ModeUnmanaged: VRAM capacity is unknown (no GPU found, no override),
	// so only the per-model concurrency limits apply.
	ModeUnmanaged = "unmanaged"
)

// Where a model's size came from, best first.
const (
	SizeFromPS      = "ps"      // Ollama reported it loaded (/api/ps), this run
	SizeFromStore   = "store"   // learned from /api/ps in an earlier run
	SizeFromTags    = "tags"    // the download size (/api/tags); loaded is larger
	SizeFromUnknown = "unknown" // never seen: treated as not fitting beside others
)

// Defaults for ManagerConfig fields left zero.
const (
	defaultSwapKeepAlive = time.Minute
	defaultCoKeepAlive   = 30 * time.Minute
	defaultMaxBatch      = 32
	defaultMaxWait       = 2 * time.Minute
	defaultPollInterval  = 5 * time.Second
	externalNoiseFloor   = 64 << 20 // VRAM others use below this is ignored
	pullCommandPrefix    = "ollama pull "
	defaultParallelSlots = 1
)

// RoleModel is one configured model and the roles it serves.
type RoleModel struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

// RoleModels lists the models configured features call (see
// config.Config.ModelUses) once each, in the priority order Fit uses: the
// planner first (holding it matters most), then the executor tiers, then
// helpers.
func RoleModels(uses []config.ModelUse) []RoleModel {
	var out []RoleModel
	index := map[string]int{}
	for _, u := range uses {
		key := llm.ModelKey(u.Model)
		if i, ok := index[key]; ok {
			out[i].Roles = append(out[i].Roles, u.Role)
			continue
		}
		index[key] = len(out)
		out = append(out, RoleModel{Name: u.Model, Roles: []string{u.Role}})
	}
	return out
}

// policyInput is everything the residency decision depends on.
type policyInput struct {
	models        []RoleModel
	sizes         map[string]uint64 // by llm.ModelKey; missing = unknown
	capacity      uint64
	capacityKnown bool
	external      uint64 // VRAM held by other processes
	headroom      uint64
	keepAlive     time.Duration // models.keep_alive
	swapKeepAlive time.Duration
}

// policy is the decision: the mode, which models stay, and each model's
// keep_alive.
type policy struct {
	mode string
	// fit is Fit over the configured models in priority order; in swap mode
	// fit.Fits are the models allowed to linger.
	fit FitResult
	// budget is capacity minus other processes' use minus headroom: what
	// agentd's models may hold at once.
	budget    uint64
	keepAlive map[string]time.Duration // by llm.ModelKey
	unknown   []string                 // configured models of unknown size
}

// decidePolicy picks co-resident when every configured model's known size
// fits in the budget together, swap otherwise. A model of unknown size
// counts as not fitting, which is the safe side: swap mode only ever runs
// more models at once when their sizes are known to fit.
func decidePolicy(in policyInput) policy {
	long := in.keepAlive
	if long == 0 {
		long = defaultCoKeepAlive
	}
	short := in.swapKeepAlive
	if short <= 0 {
		short = defaultSwapKeepAlive
	}
	p := policy{keepAlive: map[string]time.Duration{}}
	if !in.capacityKnown {
		p.mode = ModeUnmanaged
		for _, m := range in.models {
			p.keepAlive[llm.ModelKey(m.Name)] = long
		}
		return p
	}
	free := uint64(0)
	if in.capacity > in.external {
		free = in.capacity - in.external
	}
	var sized []ModelSize
	for _, m := range in.models {
		k := llm.ModelKey(m.Name)
		b, ok := in.sizes[k]
		if !ok || b == 0 {
			p.unknown = append(p.unknown, m.Name)
			continue
		}
		sized = append(sized, ModelSize{Name: m.Name, Bytes: b})
	}
	p.fit = Fit(free, in.headroom, sized)
	p.fit.DoNotFit = append(p.fit.DoNotFit, p.unknown...)
	p.budget = p.fit.BudgetBytes
	p.mode = ModeSwap
	if p.fit.AllFit() {
		p.mode = ModeCoResident
	}
	for _, name := range p.fit.Fits {
		p.keepAlive[llm.ModelKey(name)] = long
	}
	for _, name := range p.fit.DoNotFit {
		p.keepAlive[llm.ModelKey(name)] = short
	}
	return p
}

// fits reports whether the models, by llm.ModelKey, can be resident together
// within the budget. Any unknown size fails the check.
func (p policy) fits(sizes map[string]uint64, keys map[string]bool) bool {
	var total uint64
	for k := range keys {
		b, ok := sizes[k]
		if !ok || b == 0 {
			return false
		}
		total += b
	}
	return total <= p.budget
}
