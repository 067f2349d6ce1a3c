package ollamasim

import (
	"context"
	"testing"
	"time"
)

// Each wait sleeps only what is still owed toward the cumulative deadline:
// a sleep that overshot (timer slack, a busy machine) is made up by the next
// waits instead of adding up over hundreds of chunks.
func TestPacerMakesUpOvershoot(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var slept []time.Duration
	p := &pacer{scale: 0.5, start: clock, now: func() time.Time { return clock },
		sleep: func(_ context.Context, real time.Duration) error {
			slept = append(slept, real)
			clock = clock.Add(real + 3*time.Millisecond) // every sleep overshoots by 3 ms
			return nil
		}}
	for range 10 {
		if err := p.wait(context.Background(), 10*time.Millisecond); err != nil { // 5 ms real each
			t.Fatal(err)
		}
	}
	// 100 ms simulated at scale 0.5 is 50 ms real. Sleeping 5 ms per chunk
	// with 3 ms overshoot would end at 80 ms; the pacer ends at the
	// deadline plus the last overshoot.
	if end := clock.Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); end != 53*time.Millisecond {
		t.Errorf("stream ended after %s, want 53ms (50ms owed + one overshoot)", end)
	}
	if slept[0] != 5*time.Millisecond || slept[1] != 2*time.Millisecond {
		t.Errorf("sleeps %v: the second should make up the first's overshoot", slept[:2])
	}
}
