package exec

import (
	"context"
	"sync"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/events"
	"github.com/agentd/agentd/internal/plan"
)

// configLimiter applies models.options.<name>.max_concurrent and nothing
// else; the VRAM residency manager replaces it where GPU headroom matters.
type configLimiter struct {
	mu   sync.Mutex
	max  map[string]int
	sems map[string]chan struct{}
}

var _ ModelLimiter = (*configLimiter)(nil)

// NewModelLimiter limits each model to its configured max_concurrent (no
// limit where it is 0 or unset).
func NewModelLimiter(models config.ModelsConfig) ModelLimiter {
	l := &configLimiter{max: map[string]int{}, sems: map[string]chan struct{}{}}
	for name, o := range models.Options {
		if o.MaxConcurrent > 0 {
			l.max[name] = o.MaxConcurrent
		}
	}
	return l
}

func (l *configLimiter) Acquire(ctx context.Context, model string) (func(), error) {
	l.mu.Lock()
	n, ok := l.max[model]
	if !ok {
		l.mu.Unlock()
		return func() {}, nil
	}
	sem := l.sems[model]
	if sem == nil {
		sem = make(chan struct{}, n)
		l.sems[model] = sem
	}
	l.mu.Unlock()
	select {
	case sem <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-sem }) }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type noLimit struct{}

func (noLimit) Acquire(context.Context, string) (func(), error) { return func() {}, nil }

// configModels maps roles to the models of config.
type configModels config.ModelsConfig

var _ Models = configModels{}

// ModelsFromConfig names models by role from the [models] section.
func ModelsFromConfig(m config.ModelsConfig) Models { return configModels(m) }

func (m configModels) Model(role string) string {
	switch role {
	case plan.TierStandard:
		return m.Standard
	case RoleSummarizer:
		if m.Summarizer != "" {
			return m.Summarizer
		}
	}
	return m.Fast
}

type dropEvents struct{}

func (dropEvents) Emit(runID string, p events.Payload) events.Event {
	return events.Event{Type: p.EventType(), RunID: runID}
}
