package db

import (
	"context"
	"database/sql"
	"sync"
)

// Savepoints of the group commit: each member of a group runs under one.
const (
	savepointSQL  = "SAVEPOINT member"
	rollbackToSQL = "ROLLBACK TO member"
	releaseSQL    = "RELEASE member"
)

// hotStatements are prepared once on the write connection (see
// prepareHot): the writes of every run and step, and the group commit's
// own.
var hotStatements = []string{
	savepointSQL, rollbackToSQL, releaseSQL,
	insertRunSQL, updateRunSQL, insertPlanSQL, upsertStepSQL,
	insertAttemptSQL, finishAttemptSQL, insertCallSQL, finishCallSQL,
	insertEventSQL, insertEventsSQL, runExistsSQL, insertModelCallSQL,
}

// maxGroup bounds how many transactions one commit carries, so the writer
// whose turn it is does not hold the others for long.
const maxGroup = 64

// txReq is one caller's transaction waiting for its commit.
type txReq struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	err  error
	done bool
	// wake is signalled when the request is done, or when it is first in
	// line and must lead the next group.
	wake chan struct{}
}

// groupCommit queues writers: the first in line takes the group queued
// behind it (itself included), commits it in one transaction, then hands
// the turn to whoever is first in line next. A writer never commits for
// others for longer than one group, and no goroutine sits between a
// caller and its commit.
type groupCommit struct {
	mu    sync.Mutex
	queue []*txReq
}

// do queues r and returns r.err once r's group has committed (or failed).
func (g *groupCommit) do(r *txReq, run func([]*txReq)) error {
	g.mu.Lock()
	g.queue = append(g.queue, r)
	if len(g.queue) > 1 {
		r.wake = make(chan struct{}, 1)
		g.mu.Unlock()
		<-r.wake
		g.mu.Lock()
		if r.done {
			g.mu.Unlock()
			return r.err
		}
		// First in line now: lead the next group.
	}
	n := min(len(g.queue), maxGroup)
	batch := g.queue[:n:n]
	g.mu.Unlock()

	run(batch)

	g.mu.Lock()
	g.queue = g.queue[n:]
	if len(g.queue) == 0 {
		g.queue = nil // let the old backing array go
	}
	for _, o := range batch[1:] {
		o.done = true
		o.wake <- struct{}{}
	}
	if len(g.queue) > 0 {
		g.queue[0].wake <- struct{}{}
	}
	g.mu.Unlock()
	return r.err
}
