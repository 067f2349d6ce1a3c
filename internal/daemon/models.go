package daemon

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/llm"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/vram"
	"github.com/ollama/ollama/api"
)

// usageRecorder stores every model call and prices its energy when a price
// per kWh is configured and the GPU reports its power draw.
type usageRecorder struct {
	store    *db.Store
	monitor  *vram.Monitor
	priceKWh float64
	onCall   func(db.ModelCall)
}

var _ llm.Recorder = (*usageRecorder)(nil)

func (r *usageRecorder) RecordModelCall(ctx context.Context, u llm.Usage) error {
	c := db.ModelCall{
		CreatedAt: u.Started, RunID: u.RunID, StepID: u.StepID, Purpose: u.Purpose, Model: u.Model,
		Endpoint: u.Endpoint, Location: "local", PromptTokens: u.PromptTokens, OutputTokens: u.OutputTokens,
		LoadMS: msf(u.LoadDuration), PromptMS: msf(u.PromptEvalDuration), GenMS: msf(u.EvalDuration),
		TotalMS: msf(u.TotalDuration), DoneReason: u.DoneReason, Error: u.Error,
		Attempt: u.Attempt, WallMS: msf(u.Wall),
	}
	if c.Purpose == "" {
		c.Purpose = u.Op
	}
	if w, ok := r.gpuPowerW(); ok {
		c.EnergyWh = w * u.TotalDuration.Hours()
		c.CostUSD = c.EnergyWh / 1000 * r.priceKWh
	}
	if err := r.store.InsertModelCall(ctx, &c); err != nil {
		return err
	}
	if r.onCall != nil {
		r.onCall(c)
	}
	return nil
}

func (r *usageRecorder) gpuPowerW() (float64, bool) {
	if r.monitor == nil {
		return 0, false
	}
	s, ok := r.monitor.Latest()
	if !ok {
		return 0, false
	}
	var w float64
	var any bool
	for _, g := range s.GPUs {
		if g.PowerDrawW != nil {
			w += *g.PowerDrawW
			any = true
		}
	}
	return w, any
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// plannerModel adapts the Ollama client to the planner's ChatModel.
type plannerModel struct{ c *llm.Client }

var _ localplanner.ChatModel = plannerModel{}

func (p plannerModel) Chat(ctx context.Context, req localplanner.ChatRequest) (localplanner.ChatResponse, error) {
	msgs := make([]api.Message, len(req.Messages))
	for i, m := range req.Messages {
		msgs[i] = api.Message{Role: m.Role, Content: m.Content}
	}
	lreq := llm.Request{
		Model: req.Model, Messages: msgs, Format: req.Format, NumPredict: req.NumPredict,
		Purpose: req.Purpose, RunID: req.RunID, Options: map[string]any{"temperature": 0},
		Regeneration: req.Regeneration,
	}
	if req.OnDelta != nil {
		var sofar strings.Builder
		lreq.OnChunk = func(c api.ChatResponse) error {
			if c.Message.Content != "" {
				sofar.WriteString(c.Message.Content)
				req.OnDelta(sofar.String())
			}
			return nil
		}
	}
	resp, err := p.c.Chat(ctx, lreq)
	if err != nil {
		var le *llm.Error
		// A reply cut at its bound or broken off is still a reply the
		// planner can act on: it asks again with more room or other
		// sampling.
		done := map[llm.Class]string{llm.ClassTruncated: localplanner.DoneLength, llm.ClassAborted: localplanner.DoneAborted}[llm.ClassOf(err)]
		if done != "" && asLLMError(err, &le) {
			var content string
			var u llm.Usage
			if le.Partial != nil {
				content, u = le.Partial.Message.Content, le.Partial.Usage
			}
			return localplanner.ChatResponse{Content: content, DoneReason: done,
				PromptTokens: u.PromptTokens, OutputTokens: u.OutputTokens}, nil
		}
		return localplanner.ChatResponse{}, err
	}
	return localplanner.ChatResponse{Content: resp.Message.Content, DoneReason: resp.DoneReason,
		PromptTokens: resp.Usage.PromptTokens, OutputTokens: resp.Usage.OutputTokens}, nil
}

func asLLMError(err error, target **llm.Error) bool { return errors.As(err, target) }
