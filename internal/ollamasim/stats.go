package ollamasim

import (
	"sync"
	"time"
)

// ModelStats counts what happened to one model. Durations are simulated.
type ModelStats struct {
	Requests     int64 // chat, generate and embed requests that got a slot
	Loads        int64
	PartialLoads int64 // loads with size_vram < size (CPU spill)
	Unloads      int64 // all unloads, whatever the reason
	Evictions    int64 // unloaded to make room for another model
	Expirations  int64 // keep_alive ran out
	Reloads      int64 // unloaded because num_ctx changed
	LoadTime     time.Duration
	BusyTime     time.Duration // prefill + decode time spent in requests
	PromptTokens int64
	EvalTokens   int64
}

// Stats is a snapshot of the simulator's counters, for benchmarks and
// tests that assert how agentd drove the server.
type Stats struct {
	Requests       int64 // every request to an inference endpoint
	QueueRejected  int64 // 503 because the queue was full
	OutOfMemory    int64 // loads refused for lack of memory
	PeakPending    int   // most requests waiting at once
	FaultsInjected map[FaultClass]int64
	Models         map[string]ModelStats
}

// statsCollector is the mutable, locked side of Stats.
type statsCollector struct {
	mu sync.Mutex
	s  Stats
}

func newStatsCollector() *statsCollector {
	return &statsCollector{s: Stats{FaultsInjected: map[FaultClass]int64{}, Models: map[string]ModelStats{}}}
}

func (c *statsCollector) model(name string, f func(*ModelStats)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.s.Models[name]
	f(&m)
	c.s.Models[name] = m
}

func (c *statsCollector) request() {
	c.mu.Lock()
	c.s.Requests++
	c.mu.Unlock()
}

func (c *statsCollector) rejected() {
	c.mu.Lock()
	c.s.QueueRejected++
	c.mu.Unlock()
}

func (c *statsCollector) outOfMemory() {
	c.mu.Lock()
	c.s.OutOfMemory++
	c.mu.Unlock()
}

func (c *statsCollector) pendingPeak(n int) {
	c.mu.Lock()
	c.s.PeakPending = max(c.s.PeakPending, n)
	c.mu.Unlock()
}

func (c *statsCollector) fault(class FaultClass) {
	c.mu.Lock()
	c.s.FaultsInjected[class]++
	c.mu.Unlock()
}

func (c *statsCollector) loaded(name string, d time.Duration, partial bool) {
	c.model(name, func(m *ModelStats) {
		m.Loads++
		m.LoadTime += d
		if partial {
			m.PartialLoads++
		}
	})
}

func (c *statsCollector) unloaded(name, reason string) {
	c.model(name, func(m *ModelStats) {
		m.Unloads++
		switch reason {
		case reasonEvicted:
			m.Evictions++
		case reasonExpired:
			m.Expirations++
		case reasonReload:
			m.Reloads++
		}
	})
}

func (c *statsCollector) served(name string, busy time.Duration, promptTokens, evalTokens int) {
	c.model(name, func(m *ModelStats) {
		m.Requests++
		m.BusyTime += busy
		m.PromptTokens += int64(promptTokens)
		m.EvalTokens += int64(evalTokens)
	})
}

// snapshot deep-copies the counters so callers may keep them.
func (c *statsCollector) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.s
	out.FaultsInjected = make(map[FaultClass]int64, len(c.s.FaultsInjected))
	for k, v := range c.s.FaultsInjected {
		out.FaultsInjected[k] = v
	}
	out.Models = make(map[string]ModelStats, len(c.s.Models))
	for k, v := range c.s.Models {
		out.Models[k] = v
	}
	return out
}
