package llm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ollama/ollama/api"
)

// Chat sends one chat call, streaming it from Ollama whatever the caller
// asked for, so that canceling ctx stops the model promptly. A reply cut at
// the output limit is an error of ClassTruncated, and one the server broke
// off (its repeated-token abort) an error of ClassAborted; both carry the
// partial reply, and neither is asked again here: what to change before
// asking again (more room, other sampling, the error in the prompt) is the
// caller's decision, recorded on its run.
func (c *Client) Chat(ctx context.Context, req Request) (*Response, error) {
	ctx, span := c.startChatSpan(ctx, req)
	resp, err := c.chatOnce(ctx, req)
	c.endChatSpan(span, resp, err)
	return resp, err
}

func (c *Client) chatOnce(ctx context.Context, req Request) (*Response, error) {
	if req.Model == "" {
		return nil, &Error{Class: ClassOther, Op: "chat", Message: "chat request names no model — set it from models.* in config"}
	}
	areq := c.chatRequest(req)
	ident := &Usage{RunID: req.RunID, StepID: req.StepID, Purpose: req.Purpose, Op: "chat", Model: req.Model, Where: WhereLocal}
	var resp *Response
	s, err := c.send(ctx, "chat", req.Model, true, ident, func(actx context.Context, ep *endpoint) (bool, error) {
		var delivered, done bool
		var acc accumulator
		resp = &Response{}
		defer func() { acc.into(resp) }()
		err := ep.chat(actx, areq, func(chunk api.ChatResponse) error {
			acc.add(chunk)
			done = done || chunk.Done
			if req.OnChunk == nil {
				return nil
			}
			delivered = true
			if err := req.OnChunk(chunk); err != nil {
				return &callbackError{err}
			}
			return nil
		})
		if err == nil && !done {
			// api.Client ends quietly when the body breaks off.
			err = errIncompleteStream
			if actx.Err() != nil {
				err = actx.Err()
			}
		}
		return delivered, err
	})

	u := Usage{}
	if resp != nil {
		u = resp.Usage
	}
	u.RunID, u.StepID, u.Purpose = req.RunID, req.StepID, req.Purpose
	u.Op, u.Model, u.Where, u.Attempt, u.Attempts = "chat", req.Model, WhereLocal, s.attempts, s.attempts
	u.Started, u.Wall = s.started, c.now().Sub(s.started)
	if s.started.IsZero() {
		u.Started, u.Wall = c.now(), 0
	}
	if s.ep != nil {
		u.Endpoint, u.URL = s.ep.name, s.ep.url
	}
	if resp != nil {
		resp.Usage = u
	}
	if u.PromptTokens > 0 {
		c.learnTokens(req, s.ep, u.PromptTokens)
	}

	if err == nil && resp.DoneReason == "length" {
		n := c.numPredict(req)
		err = &Error{Class: ClassTruncated, Op: "chat", Model: req.Model, Endpoint: u.Endpoint, URL: u.URL,
			Attempts: s.attempts, Partial: resp,
			Message: fmt.Sprintf("model %s stopped at its output limit (%s) on endpoint %s — give it more room (num_predict) or ask for shorter output",
				req.Model, limitText(n, u.OutputTokens), u.Endpoint)}
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Class == ClassNoToolSupport {
			c.noTools(req.Model)
		}
		if e.Partial == nil && resp != nil && (resp.Message.Content != "" || len(resp.Message.ToolCalls) > 0) {
			e.Partial = resp
		}
	}
	c.record(ctx, u, err)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func limitText(numPredict, produced int) string {
	if numPredict > 0 {
		return fmt.Sprintf("num_predict %d, produced %d tokens", numPredict, produced)
	}
	return fmt.Sprintf("context full after %d output tokens", produced)
}

// accumulator folds streamed chunks into one message without copying the
// text so far on every token.
type accumulator struct {
	role              string
	content, thinking strings.Builder
	toolCalls         []api.ToolCall
	images            []api.ImageData
	final             *api.ChatResponse
	chunks            int // streamed chunks with output: about one token each
}

func (a *accumulator) add(chunk api.ChatResponse) {
	if a.role == "" {
		a.role = chunk.Message.Role
	}
	a.content.WriteString(chunk.Message.Content)
	a.thinking.WriteString(chunk.Message.Thinking)
	a.toolCalls = append(a.toolCalls, chunk.Message.ToolCalls...)
	a.images = append(a.images, chunk.Message.Images...)
	if !chunk.Done && (chunk.Message.Content != "" || chunk.Message.Thinking != "" || len(chunk.Message.ToolCalls) > 0) {
		a.chunks++
	}
	if chunk.Done {
		a.final = &chunk
	}
}

// into writes the message so far, and the final chunk's metrics if it came.
func (a *accumulator) into(r *Response) {
	r.Message = api.Message{Role: a.role, Content: a.content.String(), Thinking: a.thinking.String(),
		ToolCalls: a.toolCalls, Images: a.images}
	if a.final == nil {
		// No final chunk (an aborted generation, a lost server): no
		// metrics came, but Ollama streams one token a chunk.
		r.Usage.OutputTokens = a.chunks
		return
	}
	f := a.final
	r.DoneReason = f.DoneReason
	r.Usage.DoneReason = f.DoneReason
	r.Usage.PromptTokens = f.PromptEvalCount
	r.Usage.OutputTokens = f.EvalCount
	r.Usage.LoadDuration = f.LoadDuration
	r.Usage.PromptEvalDuration = f.PromptEvalDuration
	r.Usage.EvalDuration = f.EvalDuration
	r.Usage.TotalDuration = f.TotalDuration
}
