// Package makespan computes a lower bound on how long a set of agent runs
// must take, from what the runs have to do and what the machine has — the
// plans, the model calls each step needs, tool latencies, the models'
// speeds, parallel slots, sizes and load rate — without looking at any run.
// The bench compares agentd's measured wall time with it: a scheduler that
// wastes time (waits it did not need, loads it could have avoided, slots
// left idle) shows as distance from the bound, which the run itself cannot
// hide by construction.
//
// The bound is the largest of:
//   - each run's critical path: its calls and tools along the longest
//     dependency chain, each call no earlier than its model can have been
//     loaded, and nothing before the run arrives;
//   - each model's work: all calls on it, divided over its parallel slots,
//     after its first load if it starts unloaded;
//   - the loads: Ollama loads one model at a time, so the models that start
//     unloaded take at least the sum of their load times;
//   - each pair of models that do not fit in VRAM together: they never run
//     or load at the same time, so their work and loads add up.
//
// Every term is a valid lower bound on its own, so their maximum is one.
package makespan

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Model is a model as the latency model sees it.
type Model struct {
	SizeBytes  int64
	PrefillTPS float64 // prompt tokens a second
	DecodeTPS  float64 // output tokens a second
	Slots      int     // parallel requests the server runs at once; 0 = 1
}

// Resources are the machine's: the models, VRAM, how fast weights load,
// and which models are loaded when the first run arrives.
type Resources struct {
	Models          map[string]Model
	VRAMBytes       int64 // 0: everything fits
	LoadBytesPerSec float64
	Resident        map[string]bool
}

// Call is one model call: its model and the tokens it reads and writes.
type Call struct {
	Model        string
	PromptTokens int
	OutputTokens int
}

// Step is one plan step: a tool's fixed latency and/or model calls made
// one after another (a task step's executor turns).
type Step struct {
	ID        string
	DependsOn []string
	Tool      time.Duration
	Calls     []Call
	// Written, above zero, is how many output tokens of the call that
	// writes this step have come out when the step is complete in it: a
	// planner that streams its plan lets the step start then rather than
	// after the whole reply. The writer is WrittenBy's last call, or the
	// run's last Before call when WrittenBy is empty; a dependency on
	// WrittenBy is then met by that point of its last call.
	Written   int
	WrittenBy string
}

// Run is one request's work: planning calls one after another, the plan's
// steps as a DAG, then the calls that write the answer. Arrive is when it
// is submitted, from time zero.
type Run struct {
	Name   string
	Arrive time.Duration
	Before []Call
	Steps  []Step
	After  []Call
}

// Result is the bound and what set it.
type Result struct {
	Makespan time.Duration
	// Binding names the term that set Makespan: "path:<run>",
	// "model:<name>", "loads" or "exclusive:<a>+<b>".
	Binding string
	// Path is each run's critical-path bound, from its arrival to its end.
	Path []time.Duration
}

func (r Result) String() string {
	return fmt.Sprintf("%s (%s)", r.Makespan.Round(time.Millisecond), r.Binding)
}

// Service is the time one call takes on its model at full speed.
func (res Resources) Service(c Call) (time.Duration, error) {
	m, ok := res.Models[c.Model]
	if !ok {
		return 0, fmt.Errorf("model %q is not in the resources", c.Model)
	}
	if m.PrefillTPS <= 0 || m.DecodeTPS <= 0 {
		return 0, fmt.Errorf("model %q has no speed", c.Model)
	}
	s := float64(c.PromptTokens)/m.PrefillTPS + float64(c.OutputTokens)/m.DecodeTPS
	return time.Duration(s * float64(time.Second)), nil
}

// Load is how long model takes to load, 0 when it starts resident.
func (res Resources) Load(model string) time.Duration {
	if res.Resident[model] || res.LoadBytesPerSec <= 0 {
		return 0
	}
	return time.Duration(float64(res.Models[model].SizeBytes) / res.LoadBytesPerSec * float64(time.Second))
}

// Bound computes the lower bound for runs on res.
func Bound(runs []Run, res Resources) (Result, error) {
	var out Result
	set := func(d time.Duration, why string) {
		if d > out.Makespan {
			out.Makespan, out.Binding = d, why
		}
	}
	work := map[string]time.Duration{}
	for _, r := range runs {
		end, err := pathEnd(r, res, work)
		if err != nil {
			return Result{}, fmt.Errorf("run %s: %w", r.Name, err)
		}
		out.Path = append(out.Path, end-r.Arrive)
		set(end, "path:"+r.Name)
	}
	for name, w := range work {
		slots := max(res.Models[name].Slots, 1)
		set(res.Load(name)+w/time.Duration(slots), "model:"+name)
	}
	set(LoadBound(runs, res), "loads")
	// Two models that do not fit in VRAM together never run or load at the
	// same time: their work and their loads add up.
	names := make([]string, 0, len(work))
	for name := range work {
		names = append(names, name)
	}
	sort.Strings(names)
	for i, a := range names {
		for _, b := range names[i+1:] {
			if res.VRAMBytes > 0 && res.Models[a].SizeBytes+res.Models[b].SizeBytes > res.VRAMBytes {
				sa, sb := time.Duration(max(res.Models[a].Slots, 1)), time.Duration(max(res.Models[b].Slots, 1))
				set(res.Load(a)+res.Load(b)+work[a]/sa+work[b]/sb, "exclusive:"+a+"+"+b)
			}
		}
	}
	return out, nil
}

// pathEnd is the run's earliest possible end: every call starts no earlier
// than its model could be loaded, every step after its dependencies. It
// adds each call's service time to work[model].
func pathEnd(r Run, res Resources, work map[string]time.Duration) (time.Duration, error) {
	// calls runs cs one after another from start; it returns the end and
	// the last call's start.
	calls := func(start time.Duration, cs []Call) (end, lastStart time.Duration, err error) {
		end = start
		for _, c := range cs {
			d, err := res.Service(c)
			if err != nil {
				return 0, 0, err
			}
			work[c.Model] += d
			lastStart = max(end, res.Load(c.Model))
			end = lastStart + d
		}
		return end, lastStart, nil
	}
	// writer is where each step's writing call starts, and which call it
	// is: "" for the last Before call.
	type writer struct {
		start time.Duration
		call  Call
	}
	writers := map[string]writer{}
	planned, start, err := calls(r.Arrive, r.Before)
	if err != nil {
		return 0, err
	}
	if n := len(r.Before); n > 0 {
		writers[""] = writer{start, r.Before[n-1]}
	}
	finish := map[string]time.Duration{}
	order, err := topo(r.Steps)
	if err != nil {
		return 0, err
	}
	last := planned
	for _, s := range order {
		begin := planned
		w, streamed := writers[s.WrittenBy]
		streamed = streamed && s.Written > 0
		if streamed {
			head := w.call
			head.OutputTokens = min(s.Written, head.OutputTokens)
			d, err := res.Service(head)
			if err != nil {
				return 0, err
			}
			begin = w.start + d
		}
		for _, d := range s.DependsOn {
			if streamed && d == s.WrittenBy {
				continue
			}
			begin = max(begin, finish[d])
		}
		end, lastStart, err := calls(begin+s.Tool, s.Calls)
		if err != nil {
			return 0, err
		}
		if n := len(s.Calls); n > 0 {
			writers[s.ID] = writer{lastStart, s.Calls[n-1]}
		}
		finish[s.ID] = end
		last = max(last, end)
	}
	end, _, err := calls(last, r.After)
	return end, err
}

// LoadBound is the time the loads alone need. Ollama loads one model at a
// time, so the models that start unloaded and are used take at least the
// sum of their load times. When the models used cannot all be resident at
// once (their sizes sum past VRAMBytes), it adds nothing more: how many
// reloads a mix forces depends on the order of its calls, and a bound must
// hold for every order — so this term stays conservative.
func LoadBound(runs []Run, res Resources) time.Duration {
	used := map[string]bool{}
	for _, r := range runs {
		for _, c := range r.Before {
			used[c.Model] = true
		}
		for _, s := range r.Steps {
			for _, c := range s.Calls {
				used[c.Model] = true
			}
		}
		for _, c := range r.After {
			used[c.Model] = true
		}
	}
	var total time.Duration
	for m := range used {
		total += res.Load(m)
	}
	return total
}

// topo orders steps so that each comes after its dependencies.
func topo(steps []Step) ([]Step, error) {
	byID := map[string]Step{}
	for _, s := range steps {
		byID[s.ID] = s
	}
	var out []Step
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(id string) error
	visit = func(id string) error {
		switch state[id] {
		case 1:
			return fmt.Errorf("dependency cycle at step %s", id)
		case 2:
			return nil
		}
		state[id] = 1
		s, ok := byID[id]
		if !ok {
			return fmt.Errorf("unknown step %s", id)
		}
		deps := slices.Clone(s.DependsOn)
		sort.Strings(deps)
		for _, d := range deps {
			if _, ok := byID[d]; !ok {
				continue // a step of an earlier plan: already done
			}
			if err := visit(d); err != nil {
				return err
			}
		}
		state[id] = 2
		out = append(out, s)
		return nil
	}
	for _, s := range steps {
		if err := visit(s.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}
