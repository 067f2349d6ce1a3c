package exec

import (
	"container/heap"

	"github.com/agentd/agentd/internal/run"
)

// queuedRun waits for admission. Resumed runs (found unfinished at start)
// go first; then higher priority; then first come, first served.
type queuedRun struct {
	r       *run.Run
	seq     uint64
	resumed bool
	// fresh: submitted to this process, so nothing of it is stored yet
	// but its row (no plan, no steps to load).
	fresh bool
	index int
}

type runQueue []*queuedRun

var _ heap.Interface = (*runQueue)(nil)

func (q runQueue) Len() int { return len(q) }

func (q runQueue) Less(i, j int) bool {
	a, b := q[i], q[j]
	if a.resumed != b.resumed {
		return a.resumed
	}
	if a.r.Priority != b.r.Priority {
		return a.r.Priority > b.r.Priority
	}
	return a.seq < b.seq
}

func (q runQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

func (q *runQueue) Push(x any) {
	it := x.(*queuedRun)
	it.index = len(*q)
	*q = append(*q, it)
}

func (q *runQueue) Pop() any {
	old := *q
	n := len(old)
	it := old[n-1]
	old[n-1] = nil
	it.index = -1
	*q = old[:n-1]
	return it
}

// remove takes a run out of the queue; false if it was not queued.
func (q *runQueue) remove(runID string) (*run.Run, bool) {
	for _, it := range *q {
		if it.r.ID == runID {
			heap.Remove(q, it.index)
			return it.r, true
		}
	}
	return nil, false
}

// waiting counts runs that came through Submit (resumed runs do not use up
// the queue's room).
func (q runQueue) waiting() int {
	n := 0
	for _, it := range q {
		if !it.resumed {
			n++
		}
	}
	return n
}
