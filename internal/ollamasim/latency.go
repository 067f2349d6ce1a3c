package ollamasim

import (
	"context"
	"time"
	"unicode/utf8"
)

// countTokens approximates a tokenizer deterministically: one token per
// four characters (runes), rounded up, so English text lands near what
// Llama-family tokenizers report. Empty text is zero tokens.
func countTokens(s string) int {
	n := utf8.RuneCountInString(s)
	return (n + 3) / 4
}

// CountTokens is the simulator's token count of s, for bounds and
// estimates that must count as it does.
func CountTokens(s string) int { return countTokens(s) }

// messageOverheadTokens stands for the chat template's role markers.
const messageOverheadTokens = 4

// timing is the simulated latency of one request.
type timing struct {
	promptTokens int
	evalTokens   int
	prefill      time.Duration
	decode       time.Duration // whole output
}

// perToken is the simulated decode time of one output token.
func (t timing) perToken() time.Duration {
	if t.evalTokens == 0 {
		return 0
	}
	return t.decode / time.Duration(t.evalTokens)
}

// effectiveTPS blends GPU speed with the CPU part of a partially offloaded
// model: time per token is the GPU share at full speed plus the CPU share
// slowdown times slower.
func effectiveTPS(tps, gpuFraction, slowdown float64) float64 {
	if tps <= 0 {
		return 1
	}
	perTok := gpuFraction/tps + (1-gpuFraction)*slowdown/tps
	return 1 / perTok
}

// newTiming computes prefill = prompt / prefill rate and decode = output /
// decode rate for model m at the given GPU share.
func newTiming(m *Model, promptTokens, evalTokens int, gpuFraction, slowdown float64) timing {
	pre := effectiveTPS(m.PrefillTPS, gpuFraction, slowdown)
	dec := effectiveTPS(m.DecodeTPS, gpuFraction, slowdown)
	return timing{
		promptTokens: promptTokens,
		evalTokens:   evalTokens,
		prefill:      time.Duration(float64(promptTokens) / pre * float64(time.Second)),
		decode:       time.Duration(float64(evalTokens) / dec * float64(time.Second)),
	}
}

// sleeper turns simulated durations into real waits scaled by TimeScale.
type sleeper struct{ scale float64 }

// sleep waits d×scale or until ctx ends. With scale 0 it returns at once
// (after checking ctx), which keeps tests instant.
func (s sleeper) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	real := time.Duration(float64(d) * s.scale)
	if real <= 0 {
		return nil
	}
	return sleepReal(ctx, real)
}

// sleepReal waits d of real time or until ctx ends.
func sleepReal(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// pacer spaces a stream's chunks by simulated time without drift: each wait
// ends at the cumulative deadline since the stream began, so the timer
// slack of hundreds of tiny sleeps does not add up and a stream takes as
// long as the durations it reports.
type pacer struct {
	scale float64
	start time.Time
	due   time.Duration // simulated time owed since start
	now   func() time.Time
	sleep func(ctx context.Context, real time.Duration) error
}

func (s sleeper) pacer() *pacer {
	return &pacer{scale: s.scale, start: time.Now(), now: time.Now, sleep: sleepReal}
}

// wait advances the stream by d of simulated time, sleeping only for what
// is still owed in real time.
func (p *pacer) wait(ctx context.Context, d time.Duration) error {
	p.due += d
	if err := ctx.Err(); err != nil || p.scale <= 0 {
		return err
	}
	left := p.start.Add(time.Duration(float64(p.due) * p.scale)).Sub(p.now())
	if left <= 0 {
		return nil
	}
	return p.sleep(ctx, left)
}
