package llm

import (
	"encoding/json"
	"maps"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/agentd/agentd/internal/config"
)

// Request is one chat call.
type Request struct {
	Model    string
	Messages []api.Message
	// Format constrains the output: a JSON Schema object, or "json"
	// (the four bytes with quotes). Empty means free text.
	Format json.RawMessage
	Tools  api.Tools
	Think  *api.ThinkValue

	// KeepAlive is how long Ollama keeps the model loaded afterwards. Zero
	// asks the KeepAlivePolicy (or models.keep_alive without one); a
	// negative value keeps it loaded until Ollama stops.
	KeepAlive time.Duration

	// NumPredict caps the output tokens of this call; zero keeps the
	// model's configured num_predict.
	NumPredict int
	// Options are extra per-call Ollama options (temperature, top_p,
	// stop, seed, ...). Options that make Ollama reload the model (num_ctx,
	// num_gpu, num_batch, ...) are ignored here: they come from config only.
	Options map[string]any

	// OnChunk, when set, receives every streamed chunk as it arrives; the
	// last one has Done set and carries the metrics. Returning an error
	// stops the call.
	OnChunk func(api.ChatResponse) error

	// Regeneration counts how many times the caller has asked this again
	// after bad output (a reply broken off, cut, or invalid). Above zero
	// the sampling changes (see regenerationOptions), since at the same
	// settings a model repeats the same reply.
	Regeneration int

	// Identify the call in its Usage record.
	RunID   string
	StepID  string
	Purpose string
}

// Response is a finished chat call: the whole assistant message, however it
// was streamed.
type Response struct {
	Message    api.Message
	DoneReason string
	Usage      Usage
}

// loadOptions are the options whose change makes Ollama reload the model
// (they shape the runner, not the sampling), so they never vary per call.
var loadOptions = map[string]bool{
	"num_ctx": true, "num_batch": true, "num_gpu": true, "main_gpu": true,
	"use_mmap": true, "num_thread": true, "numa": true, "low_vram": true,
}

// modelOptions finds the fixed options configured for model.
func (c *Client) modelOptions(model string) (config.ModelOptions, bool) {
	if o, ok := c.models.Options[model]; ok {
		return o, true
	}
	for name, o := range c.models.Options {
		if sameModel(name, model) {
			return o, true
		}
	}
	return config.ModelOptions{}, false
}

// options merges the call's options with the model's fixed ones. The fixed
// ones win for load options; per-call values win for sampling.
func (c *Client) options(req Request) map[string]any {
	out := make(map[string]any, len(req.Options)+3)
	for k, v := range req.Options {
		if loadOptions[k] {
			c.log.Debug("ignoring per-call load option: it is fixed per model in models.options", "model", req.Model, "option", k)
			continue
		}
		out[k] = v
	}
	if mo, ok := c.modelOptions(req.Model); ok {
		if mo.NumCtx > 0 {
			out["num_ctx"] = mo.NumCtx
		}
		if _, set := out["num_predict"]; !set && mo.NumPredict != 0 {
			out["num_predict"] = mo.NumPredict
		}
		// Zero reads as "not configured": config has no way to say
		// "temperature 0" apart from leaving it out.
		if _, set := out["temperature"]; !set && mo.Temperature > 0 {
			out["temperature"] = mo.Temperature
		}
	}
	if req.NumPredict != 0 {
		out["num_predict"] = req.NumPredict
	}
	maps.Copy(out, regenerationOptions(req.Regeneration))
	return out
}

// regenerationOptions are the sampling settings of the n-th regeneration of
// a call: agentd samples greedily (temperature 0) for reproducible plans,
// so asking again after bad output must change the sampling, or the same
// prompt yields the same reply (and the same repeated-token abort). Each
// regeneration gets some temperature, a repeat penalty against loops, and
// its own seed, so a run is still reproducible.
func regenerationOptions(n int) map[string]any {
	if n <= 0 {
		return nil
	}
	return map[string]any{
		"temperature":    min(0.4+0.2*float64(n), 1.0),
		"repeat_penalty": 1.2,
		"seed":           n,
	}
}

// keepAlive resolves the keep_alive to send, nil meaning Ollama's default.
func (c *Client) keepAliveFor(model string, asked time.Duration) *api.Duration {
	d := asked
	switch {
	case asked != 0:
	case c.keepAlive != nil:
		d = c.keepAlive.KeepAliveFor(model)
	case c.models.KeepAlive != 0:
		d = c.models.KeepAlive.D()
	default:
		return nil
	}
	return &api.Duration{Duration: d}
}

func (c *Client) chatRequest(req Request) *api.ChatRequest {
	stream := true
	return &api.ChatRequest{
		Model:     req.Model,
		Messages:  req.Messages,
		Stream:    &stream,
		Format:    GrammarSafe(req.Format),
		KeepAlive: c.keepAliveFor(req.Model, req.KeepAlive),
		Tools:     req.Tools,
		Options:   c.options(req),
		Think:     req.Think,
	}
}

// numPredict is the output cap a request ran with, 0 when unknown.
func (c *Client) numPredict(req Request) int {
	opts := c.options(req)
	switch v := opts["num_predict"].(type) {
	case int:
		return v
	case float64:
		return int(v)
	}
	return 0
}
