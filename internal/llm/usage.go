package llm

import (
	"context"
	"log/slog"
	"time"
)

// WhereLocal is Usage.Where for calls served by an Ollama endpoint of this
// site; remote fallback providers record their own value.
const WhereLocal = "local"

// Usage is the record of one model call, successful or not: what ran where,
// the tokens, Ollama's timings, and how it ended.
type Usage struct {
	RunID   string
	StepID  string
	Purpose string

	Op       string // "chat" or "embed"
	Model    string
	Where    string // WhereLocal
	Endpoint string // endpoint name from config
	URL      string

	PromptTokens int
	OutputTokens int

	LoadDuration       time.Duration
	PromptEvalDuration time.Duration
	EvalDuration       time.Duration
	TotalDuration      time.Duration // Ollama's total, server side
	Wall               time.Duration // client side, this attempt only

	DoneReason string // "stop", "length", ...
	// Attempt is this record's place among the attempts of one call (a
	// call retried once has two records, Attempt 1 and 2); Attempts is
	// how many the call had made when this record was written.
	Attempt  int
	Attempts int
	Started  time.Time // when this attempt was sent

	ErrorClass Class // "" on success
	Error      string
}

// LogValue keeps usage records compact in logs and never includes content.
func (u Usage) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("op", u.Op),
		slog.String("model", u.Model),
		slog.String("where", u.Where),
		slog.String("endpoint", u.Endpoint),
		slog.Int("prompt_tokens", u.PromptTokens),
		slog.Int("output_tokens", u.OutputTokens),
		slog.Duration("load", u.LoadDuration),
		slog.Duration("prompt_eval", u.PromptEvalDuration),
		slog.Duration("eval", u.EvalDuration),
		slog.Duration("total", u.TotalDuration),
		slog.Duration("wall", u.Wall),
		slog.Int("attempt", u.Attempt),
	}
	if u.DoneReason != "" {
		attrs = append(attrs, slog.String("done_reason", u.DoneReason))
	}
	for _, a := range []struct{ k, v string }{{"run", u.RunID}, {"step", u.StepID}, {"purpose", u.Purpose}} {
		if a.v != "" {
			attrs = append(attrs, slog.String(a.k, a.v))
		}
	}
	if u.ErrorClass != "" {
		attrs = append(attrs, slog.String("error_class", string(u.ErrorClass)))
	}
	return slog.GroupValue(attrs...)
}

// Recorder receives a Usage after every chat and embed call. The store
// implements it; the client only logs what it returns.
type Recorder interface {
	RecordModelCall(ctx context.Context, u Usage) error
}

// record hands u to the recorder. The caller's context may already be
// canceled (a canceled call is still worth recording), so only its values
// are kept.
func (c *Client) record(ctx context.Context, u Usage, err error) {
	if err != nil {
		u.ErrorClass = ClassOf(err)
		u.Error = err.Error()
		level := slog.LevelWarn
		if u.ErrorClass == ClassCanceled {
			level = slog.LevelDebug
		}
		c.log.Log(ctx, level, "model call failed", "usage", u, "error", err)
	} else {
		c.log.Debug("model call", "usage", u)
	}
	if c.recorder == nil {
		return
	}
	if rerr := c.recorder.RecordModelCall(context.WithoutCancel(ctx), u); rerr != nil {
		c.log.Warn("recording model call failed", "model", u.Model, "run", u.RunID, "error", rerr)
	}
}
