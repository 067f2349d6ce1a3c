package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/agentd/agentd/internal/exec"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/tools"
)

// prefetcher starts tool steps while the planner is still writing the plan.
// A small planner spends most of a run decoding the plan; the steps it
// writes first are often independent lookups. As soon as the streamed draft
// holds a complete tool step that depends on nothing, references nothing,
// needs no approval, is idempotent and has valid arguments, the prefetcher
// calls the tool. When the executor later runs that step with the same
// arguments, it gets the prefetched result instead of calling again.
//
// Crash safety is untouched: only idempotent tools are prefetched (running
// one again, or for a plan that is then repaired away, is harmless by
// definition), and the executor still records the call before it takes the
// result.
type prefetcher struct {
	reg *tools.Registry
	log *slog.Logger
	ttl time.Duration

	mu   sync.Mutex
	runs map[string]*runPrefetch
}

type runPrefetch struct {
	created time.Time
	cancel  context.CancelFunc
	ctx     context.Context
	calls   map[string]*prefetchCall // tool + canonical args
}

type prefetchCall struct {
	done chan struct{}
	res  exec.ToolResult
	err  error
}

func newPrefetcher(reg *tools.Registry, log *slog.Logger) *prefetcher {
	return &prefetcher{reg: reg, log: log.With("component", "prefetch"), ttl: 10 * time.Minute, runs: map[string]*runPrefetch{}}
}

// draftObserver returns the planner's OnDraft hook for a run.
func (p *prefetcher) draftObserver(runID string) func(string) {
	if runID == "" {
		return nil
	}
	return func(draft string) {
		for _, raw := range completeSteps(draft) {
			var st plan.Step
			if json.Unmarshal([]byte(raw), &st) != nil {
				continue
			}
			p.maybeStart(runID, st)
		}
	}
}

func (p *prefetcher) maybeStart(runID string, st plan.Step) {
	if st.Tool == "" || len(st.DependsOn) > 0 {
		return
	}
	args, _ := json.Marshal(st.Args)
	if strings.Contains(string(args), "${") {
		return
	}
	spec, ok := p.reg.Spec(st.Tool)
	if !ok || !spec.Idempotent || spec.Approval == tools.ApprovalRequired {
		return
	}
	key := prefetchKey(st.Tool, st.Args)
	p.mu.Lock()
	rp := p.runs[runID]
	if rp == nil {
		ctx, cancel := context.WithTimeout(context.Background(), p.ttl)
		rp = &runPrefetch{created: time.Now(), ctx: ctx, cancel: cancel, calls: map[string]*prefetchCall{}}
		p.runs[runID] = rp
	}
	if _, started := rp.calls[key]; started {
		p.mu.Unlock()
		return
	}
	if err := p.reg.Validate(st.Tool, args); err != nil {
		p.mu.Unlock()
		return
	}
	call := &prefetchCall{done: make(chan struct{})}
	rp.calls[key] = call
	p.mu.Unlock()
	p.log.Debug("prefetching", "run", runID, "step", st.ID, "tool", st.Tool)
	go func() {
		defer close(call.done)
		release, err := p.reg.Acquire(rp.ctx, st.Tool)
		if err != nil {
			call.err = err
			return
		}
		defer release()
		call.res, call.err = invokeTool(rp.ctx, p.reg, st.Tool, st.Args)
	}()
}

// take returns a prefetched result for this run's call, waiting for it if
// it is still running. ok is false when nothing was prefetched, or the
// prefetch failed (the executor then calls the tool itself, and its ladder
// handles any failure as usual).
func (p *prefetcher) take(ctx context.Context, runID, tool string, args map[string]any) (exec.ToolResult, bool) {
	p.mu.Lock()
	rp := p.runs[runID]
	var call *prefetchCall
	if rp != nil {
		call = rp.calls[prefetchKey(tool, args)]
	}
	p.mu.Unlock()
	if call == nil {
		return exec.ToolResult{}, false
	}
	select {
	case <-call.done:
	case <-ctx.Done():
		return exec.ToolResult{}, false
	}
	if call.err != nil {
		return exec.ToolResult{}, false
	}
	return call.res, true
}

// forget drops a run's prefetches (its run ended) and any older than the
// TTL.
func (p *prefetcher) forget(runID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if rp := p.runs[runID]; rp != nil {
		rp.cancel()
		delete(p.runs, runID)
	}
	for id, rp := range p.runs {
		if time.Since(rp.created) > p.ttl {
			rp.cancel()
			delete(p.runs, id)
		}
	}
}

func prefetchKey(tool string, args map[string]any) string {
	b, _ := json.Marshal(args) // map keys marshal sorted: canonical
	return tool + "\x00" + string(b)
}

// completeSteps returns the JSON text of every complete object in the
// draft's "steps" array, in order, ignoring a trailing partial one.
func completeSteps(draft string) []string {
	i := strings.Index(draft, `"steps"`)
	if i < 0 {
		return nil
	}
	j := strings.IndexByte(draft[i:], '[')
	if j < 0 {
		return nil
	}
	var out []string
	depth, start := 0, -1
	inStr, esc := false, false
	for k := i + j + 1; k < len(draft); k++ {
		c := draft[k]
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			if depth == 0 && c == '{' {
				start = k
			}
			depth++
		case '}', ']':
			if depth == 0 { // the steps array closed
				return out
			}
			depth--
			if depth == 0 && c == '}' && start >= 0 {
				out = append(out, draft[start:k+1])
				start = -1
			}
		}
	}
	return out
}
