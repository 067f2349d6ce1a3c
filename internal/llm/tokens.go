package llm

import (
	"encoding/json"
	"math"
	"sync"

	"github.com/ollama/ollama/api"
)

// Token estimates. Prompt budgets and the truncation of results are sized
// in tokens, but what agentd can measure before a call is bytes of text. A
// model's tokenizer decides how many bytes a token holds: about four for
// English prose with a large BPE vocabulary, one for a byte-level
// vocabulary, between the two for code and non-Latin scripts. So the ratio
// is measured per model from every chat call: the bytes of the messages the
// client sent against the prompt_eval_count Ollama reported for them.
const (
	// DefaultBytesPerToken is the ratio until a model is calibrated.
	DefaultBytesPerToken = 4.0
	// The calibrated ratio is kept within these: no real tokenizer holds
	// less than a byte a token on average, and none more than eight for
	// the text agents send.
	minBytesPerToken = 1.0
	maxBytesPerToken = 8.0
	// A sample is used only when the prompt is big enough that the chat
	// template's own tokens (a few per message) do not decide its ratio,
	// and when its ratio is one a whole prompt can have: a count far below
	// the bytes (a prompt prefix Ollama had cached and did not count, in
	// versions that report only what they evaluated) or far above is not
	// the count of this prompt.
	minSampleBytes    = 256
	minSampleRatio    = 0.5
	maxSampleRatio    = 16.0
	minSamples        = 3   // accepted samples before the ratio is trusted
	maxDeviation      = 2.0 // a trusted ratio ignores samples off by more than this factor
	resetAfterOutlier = 8   // ...unless this many in a row are: the model under that name changed
	// sampleDecay weighs history against each new sample, so about the
	// last twenty calls decide the ratio.
	sampleDecay = 0.95
)

// Tokens estimates how many tokens a model counts in a text, from the
// text's bytes and the bytes per token measured for that model (see
// Observe). It is safe for concurrent use; the zero value is not usable,
// use NewTokens.
type Tokens struct {
	mu     sync.Mutex
	models map[string]*calibration
}

// calibration is what one model's samples have taught.
type calibration struct {
	bytes, tokens float64 // decayed totals of accepted samples
	samples       int     // accepted
	rejected      int
	outliers      int // consecutive samples off a trusted ratio
}

func (c *calibration) trusted() bool { return c != nil && c.samples >= minSamples }

func (c *calibration) ratio() float64 {
	if !c.trusted() {
		return DefaultBytesPerToken
	}
	return min(max(c.bytes/c.tokens, minBytesPerToken), maxBytesPerToken)
}

// NewTokens returns an estimator that knows no model yet.
func NewTokens() *Tokens { return &Tokens{models: map[string]*calibration{}} }

// BytesPerToken is the measured ratio for model, or DefaultBytesPerToken
// while it has too few samples to be trusted.
func (t *Tokens) BytesPerToken(model string) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.models[ModelKey(model)].ratio()
}

// Estimate is how many tokens model counts in text, rounded up.
func (t *Tokens) Estimate(model, text string) int {
	if text == "" {
		return 0
	}
	return int(math.Ceil(float64(len(text)) / t.BytesPerToken(model)))
}

// Calibration says what the estimator holds for model: the ratio it uses,
// the samples accepted and rejected, and whether the ratio is measured
// (trusted) or still the default.
type Calibration struct {
	BytesPerToken float64
	Samples       int
	Rejected      int
	Trusted       bool
}

// Calibration returns the state for model.
func (t *Tokens) Calibration(model string) Calibration {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.models[ModelKey(model)]
	out := Calibration{BytesPerToken: c.ratio(), Trusted: c.trusted()}
	if c != nil {
		out.Samples, out.Rejected = c.samples, c.rejected
	}
	return out
}

// Observe learns from one call: promptBytes of text sent to model came
// back counted as promptTokens. numCtx is the context the model ran with,
// 0 when unknown: a prompt that filled it was cut by Ollama, so its count
// is not the prompt's. It reports whether the sample was used.
func (t *Tokens) Observe(model string, promptBytes, promptTokens, numCtx int) bool {
	reason, _ := t.observe(model, promptBytes, promptTokens, numCtx)
	return reason == ""
}

// observe is Observe saying why a sample was not used, and whether this
// sample made the model's ratio trusted.
func (t *Tokens) observe(model string, promptBytes, promptTokens, numCtx int) (reason string, calibrated bool) {
	key := ModelKey(model)
	if key == "" || promptTokens <= 0 {
		return "no count", false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.models[key]
	if c == nil {
		c = &calibration{}
		t.models[key] = c
	}
	r := float64(promptBytes) / float64(promptTokens)
	switch {
	case promptBytes < minSampleBytes:
		reason = "prompt too small"
	case numCtx > 0 && promptTokens >= numCtx-numCtx/16:
		reason = "prompt filled the context, so Ollama may have cut it"
	case numCtx <= 0 && promptTokens >= 1024 && promptTokens&(promptTokens-1) == 0:
		// Context sizes are powers of two, and a prompt Ollama cut to
		// fit is exactly that long.
		reason = "prompt count is a power of two, as a prompt cut to the context is"
	case r < minSampleRatio || r > maxSampleRatio:
		reason = "count is not the whole prompt's (a cached prefix?)"
	}
	if reason != "" {
		c.rejected++
		return reason, false
	}
	if cur := c.ratio(); c.trusted() && (r > cur*maxDeviation || r < cur/maxDeviation) {
		c.outliers++
		if c.outliers < resetAfterOutlier {
			c.rejected++
			return "count is far from the measured ratio (a cached prefix or a cut prompt?)", false
		}
		// Consistently off: measure again from here.
		*c = calibration{rejected: c.rejected}
	}
	was := c.trusted()
	c.bytes = c.bytes*sampleDecay + float64(promptBytes)
	c.tokens = c.tokens*sampleDecay + float64(promptTokens)
	c.samples++
	c.outliers = 0
	return "", !was && c.trusted()
}

// promptBytes is the size of what a chat call puts in the prompt besides
// the template: message contents, tool calls made, and the tools offered
// (templates render them as JSON). A call with images is not measured
// (ok false): images become tokens that no byte count predicts.
func promptBytes(msgs []api.Message, tools api.Tools) (n int, ok bool) {
	for _, m := range msgs {
		if len(m.Images) > 0 {
			return 0, false
		}
		n += len(m.Content)
		for _, tc := range m.ToolCalls {
			b, _ := json.Marshal(tc.Function)
			n += len(b)
		}
	}
	if len(tools) > 0 {
		b, _ := json.Marshal(tools)
		n += len(b)
	}
	return n, true
}

// Tokens is the estimator this client calibrates: callers size prompts
// for a model with it.
func (c *Client) Tokens() *Tokens { return c.tokens }

// learnTokens feeds a chat call's prompt count to the estimator.
func (c *Client) learnTokens(req Request, ep *endpoint, counted int) {
	n, ok := promptBytes(req.Messages, req.Tools)
	if !ok {
		return
	}
	reason, calibrated := c.tokens.observe(req.Model, n, counted, c.contextLength(ep, req.Model))
	switch {
	case calibrated:
		c.log.Info("token estimate calibrated from the model's own counts", "model", req.Model,
			"bytes_per_token", math.Round(c.tokens.BytesPerToken(req.Model)*100)/100, "default", DefaultBytesPerToken)
	case reason != "":
		c.log.Debug("prompt count not used for the token estimate", "model", req.Model, "bytes", n, "tokens", counted, "reason", reason)
	}
}

// contextLength is the context model runs with: num_ctx from
// models.options, else what the endpoint last reported in /api/ps, else 0.
func (c *Client) contextLength(ep *endpoint, model string) int {
	if mo, ok := c.modelOptions(model); ok && mo.NumCtx > 0 {
		return mo.NumCtx
	}
	if ep == nil {
		return 0
	}
	ep.mu.Lock()
	ps := ep.ps
	ep.mu.Unlock()
	for _, m := range ps.val {
		if sameModel(m.Name, model) || sameModel(m.Model, model) {
			return m.ContextLength
		}
	}
	return 0
}
