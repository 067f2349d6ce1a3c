package api

import (
	"encoding/json"
	"sync"

	"github.com/agentd/agentd/internal/events"
)

// encodeCache keeps the JSON of recent events, so an event fanned out to
// many stream clients is encoded once, not once per client.
type encodeCache struct {
	mu   sync.Mutex
	seqs []int64
	bufs [][]byte
}

func newEncodeCache(size int) *encodeCache {
	return &encodeCache{seqs: make([]int64, size), bufs: make([][]byte, size)}
}

// encode returns e's JSON. The slice is shared: callers must not modify it.
func (c *encodeCache) encode(e events.Event) ([]byte, error) {
	i := int(uint64(e.Seq) % uint64(len(c.seqs)))
	c.mu.Lock()
	if c.seqs[i] == e.Seq && c.bufs[i] != nil {
		b := c.bufs[i]
		c.mu.Unlock()
		return b, nil
	}
	c.mu.Unlock()
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.seqs[i], c.bufs[i] = e.Seq, b
	c.mu.Unlock()
	return b, nil
}
