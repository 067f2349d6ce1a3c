package llm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/ollama/ollama/api"
)

// Class says what kind of failure a model call met, so callers can pick the
// rung of the failure ladder without parsing messages. Classes are strings
// because they are stored and logged as they are.
type Class string

const (
	ClassUnreachable   Class = "unreachable"     // no connection to the endpoint
	ClassModelNotFound Class = "model_not_found" // the model is not pulled
	ClassNoToolSupport Class = "no_tool_support" // the model has no tools capability
	ClassBusy          Class = "busy"            // 503: the server's queue is full
	ClassTransient     Class = "transient"       // connection reset, EOF, timeout
	ClassOutOfMemory   Class = "out_of_memory"   // the model does not fit
	ClassTruncated     Class = "truncated"       // done_reason "length"
	ClassAborted       Class = "aborted"         // the server ended the reply unfinished and is still up
	ClassMidStream     Class = "mid_stream"      // an error arrived inside a 200 stream
	ClassCanceled      Class = "canceled"        // the caller's context ended
	ClassOther         Class = "other"
)

// sentinel lets callers write errors.Is(err, llm.ErrBusy).
type sentinel struct{ class Class }

func (s *sentinel) Error() string { return "llm: " + string(s.class) }

// Sentinels, one per class, for errors.Is.
var (
	ErrUnreachable   error = &sentinel{ClassUnreachable}
	ErrModelNotFound error = &sentinel{ClassModelNotFound}
	ErrNoToolSupport error = &sentinel{ClassNoToolSupport}
	ErrBusy          error = &sentinel{ClassBusy}
	ErrTransient     error = &sentinel{ClassTransient}
	ErrOutOfMemory   error = &sentinel{ClassOutOfMemory}
	ErrTruncated     error = &sentinel{ClassTruncated}
	ErrAborted       error = &sentinel{ClassAborted}
	ErrMidStream     error = &sentinel{ClassMidStream}
	ErrCanceled      error = &sentinel{ClassCanceled}
	ErrOther         error = &sentinel{ClassOther}
)

// Error is every failure the client returns. Message is written for the
// operator and says what to do next; Err is the cause underneath.
type Error struct {
	Class    Class
	Op       string // "chat", "embed", "show", "list", "ps", "version"
	Model    string
	Endpoint string // endpoint name from config
	URL      string
	Status   int // HTTP status from Ollama, 0 when none
	Attempts int // how many times the request was sent
	Message  string
	// Partial holds what the model produced before a Truncated or MidStream
	// failure, so callers can repair or continue instead of starting over.
	Partial *Response
	Err     error
}

func (e *Error) Error() string {
	if e.Err == nil || strings.Contains(e.Message, e.Err.Error()) {
		return e.Message
	}
	return e.Message + " (" + e.Err.Error() + ")"
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the class sentinels (ErrBusy, ...).
func (e *Error) Is(target error) bool {
	s, ok := target.(*sentinel)
	return ok && s.class == e.Class
}

// ClassOf returns the class of err: "" for nil, ClassOther for errors that
// did not come from this package.
func ClassOf(err error) Class {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return ClassOther
}

// retryable reports whether the client retries this class by itself.
func (c Class) retryable() bool { return c == ClassBusy || c == ClassTransient }

// errIncompleteStream is what a stream that ended without its final chunk
// becomes: api.Client ignores read errors on the body, so a connection reset
// mid-response looks like a clean end.
var errIncompleteStream = errors.New("response ended before the final chunk")

// errAbortedGeneration is an incomplete stream from a server that is still
// up: Ollama ended the generation itself (its repeated-token limit, logged
// as "prediction aborted, token repeat limit reached") without a final
// chunk or an error. It is bad output, not a failure of the connection:
// asking again the same way gets the same stream.
var errAbortedGeneration = errors.New("the server ended the reply without finishing it and is still up")

// callbackError marks an error returned by the caller's chunk callback.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return "chunk callback: " + e.err.Error() }
func (e *callbackError) Unwrap() error { return e.err }

// failure describes the call that failed, for classify.
type failure struct {
	op        string
	model     string
	ep        *endpoint
	streaming bool          // an error without a status came from inside a stream
	timeout   time.Duration // set when the per-attempt request timeout fired
}

// classify turns whatever api.Client returned into an *Error. ctx is the
// caller's context: if it is done, the call was canceled whatever the
// transport said.
func classify(ctx context.Context, err error, f failure) *Error {
	var already *Error
	if errors.As(err, &already) {
		return already
	}
	e := &Error{Op: f.op, Model: f.model, Err: err}
	if f.ep != nil {
		e.Endpoint, e.URL = f.ep.name, f.ep.url
	}
	where := e.where()

	if ctxErr := ctx.Err(); ctxErr != nil {
		e.Class, e.Err = ClassCanceled, ctxErr
		e.Message = fmt.Sprintf("%s on %s was canceled by the caller", subject(f.op, f.model), where)
		return e
	}
	if f.timeout > 0 {
		e.Class, e.Err = ClassTransient, context.DeadlineExceeded
		e.Message = fmt.Sprintf("%s on %s did not finish within %s — raise ollama.request_timeout or use a smaller model or prompt", subject(f.op, f.model), where, f.timeout)
		return e
	}

	var cb *callbackError
	var status api.StatusError
	var auth api.AuthorizationError
	switch {
	case errors.As(err, &cb):
		e.Class, e.Err = ClassOther, cb.err
		e.Message = fmt.Sprintf("%s on %s stopped by the chunk callback", subject(f.op, f.model), where)
	case errors.As(err, &status):
		e.Status = status.StatusCode
		if f.ep != nil && f.ep.external() {
			classifyOpenAIStatus(e, status.ErrorMessage)
		} else {
			classifyStatus(e, status.ErrorMessage)
		}
	case errors.As(err, &auth):
		e.Status = auth.StatusCode
		e.Class = ClassOther
		e.Message = fmt.Sprintf("%s at %s answered 401 unauthorized — agentd sends no credentials; check that ollama.endpoints points at an Ollama server and not at a proxy that requires sign-in", f.op, e.URL)
	case isUnreachable(err):
		e.Class = ClassUnreachable
		e.Message = fmt.Sprintf("ollama not reachable at %s — is `ollama serve` running?", e.URL)
	case errors.Is(err, errAbortedGeneration):
		e.Class = ClassAborted
		e.Message = fmt.Sprintf("model %s on %s broke off its reply without finishing it (Ollama aborts a generation that repeats one token too long) — agentd asks again with different sampling; if this keeps happening, the model is not suited to this prompt", f.model, where)
	case errors.Is(err, errIncompleteStream):
		e.Class = ClassTransient
		e.Message = fmt.Sprintf("ollama at %s stopped answering in the middle of %s and does not answer now — check that the server is running and its log", e.URL, subject(f.op, f.model))
	case isConnectionLost(err):
		e.Class = ClassTransient
		e.Message = fmt.Sprintf("lost the connection to ollama at %s during %s — check the server's log if this keeps happening", e.URL, subject(f.op, f.model))
	case mentionsOutOfMemory(err.Error()):
		e.Class = ClassOutOfMemory
		e.Message = outOfMemoryMessage(f.model, e.Endpoint)
	case f.streaming:
		// api.Client turns an {"error": ...} line in a 200 stream into a
		// plain error; nothing else without a status reaches here.
		e.Class = ClassMidStream
		e.Message = fmt.Sprintf("ollama at %s failed in the middle of the response from %s: %v — see the ollama server log", e.URL, f.model, err)
	default:
		e.Class = ClassOther
		e.Message = fmt.Sprintf("%s on %s failed: %v", subject(f.op, f.model), where, err)
	}
	return e
}

func classifyStatus(e *Error, msg string) {
	lower := strings.ToLower(msg)
	switch {
	case e.Status == http.StatusNotFound:
		e.Class = ClassModelNotFound
		e.Message = fmt.Sprintf("model %s is not pulled on endpoint %s — run `ollama pull %s`", e.Model, e.Endpoint, e.Model)
	case e.Status == http.StatusBadRequest && strings.Contains(lower, "does not support tools"):
		e.Class = ClassNoToolSupport
		e.Message = fmt.Sprintf("model %s does not support tool calling — fall back to schema-constrained tool selection or use a model with the tools capability", e.Model)
	case e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests:
		e.Class = ClassBusy
		e.Message = fmt.Sprintf("ollama at %s is busy (its request queue is full) — lower agentd's concurrency or raise OLLAMA_MAX_QUEUE / OLLAMA_NUM_PARALLEL on that server", e.URL)
	case mentionsOutOfMemory(lower):
		e.Class = ClassOutOfMemory
		e.Message = outOfMemoryMessage(e.Model, e.Endpoint)
	case e.Status == http.StatusBadGateway || e.Status == http.StatusGatewayTimeout:
		e.Class = ClassTransient
		e.Message = fmt.Sprintf("a proxy in front of ollama at %s answered %d — check that the server behind it is up", e.URL, e.Status)
	default:
		e.Class = ClassOther
		e.Message = fmt.Sprintf("ollama at %s answered %d to %s: %s", e.URL, e.Status, subject(e.Op, e.Model), msg)
	}
}

// classifyOpenAIStatus is classifyStatus for an OpenAI-compatible server:
// the same classes, with advice that fits such a server. Its 500s count as
// transient, since vLLM and llama.cpp's server answer 500 for a request
// their engine dropped while busy; a 500 that names memory is still
// out_of_memory.
func classifyOpenAIStatus(e *Error, msg string) {
	lower := strings.ToLower(msg)
	switch {
	case e.Status == http.StatusNotFound:
		e.Class = ClassModelNotFound
		e.Message = fmt.Sprintf("model %s is not served by endpoint %s (an OpenAI-compatible server at %s): %s — load it there, or correct that endpoint's models in ollama.endpoints", e.Model, e.Endpoint, e.URL, msg)
	case e.Status == http.StatusBadRequest && strings.Contains(lower, "does not support tools"):
		classifyStatus(e, msg)
	case e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests:
		e.Class = ClassBusy
		e.Message = fmt.Sprintf("the server at %s is busy (%d: %s) — lower agentd's concurrency (that endpoint's parallel_slots) or give the server more capacity", e.URL, e.Status, msg)
	case mentionsOutOfMemory(lower):
		e.Class = ClassOutOfMemory
		e.Message = outOfMemoryMessage(e.Model, e.Endpoint)
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		e.Class = ClassOther
		e.Message = fmt.Sprintf("the server at %s refused agentd's credentials (%d: %s) — set that endpoint's api_key_env to the variable holding its key", e.URL, e.Status, msg)
	case e.Status >= http.StatusInternalServerError:
		e.Class = ClassTransient
		e.Message = fmt.Sprintf("the server at %s failed %s (%d: %s) — check its log if this keeps happening", e.URL, subject(e.Op, e.Model), e.Status, msg)
	default:
		e.Class = ClassOther
		e.Message = fmt.Sprintf("the server at %s refused %s (%d): %s", e.URL, subject(e.Op, e.Model), e.Status, msg)
	}
}

func outOfMemoryMessage(model, endpoint string) string {
	return fmt.Sprintf("model %s does not fit in memory on endpoint %s — use a smaller model or quantization, lower num_ctx in models.options, or unload other models", model, endpoint)
}

// subject names the call in messages: "chat qwen3:8b", or "ps".
func subject(op, model string) string {
	if model == "" {
		return op
	}
	return op + " " + model
}

func (e *Error) where() string {
	if e.Endpoint == "" {
		return "no endpoint"
	}
	return "endpoint " + e.Endpoint
}

var outOfMemoryPhrases = []string{"requires more system memory", "out of memory", "insufficient memory"}

func mentionsOutOfMemory(msg string) bool {
	msg = strings.ToLower(msg)
	for _, p := range outOfMemoryPhrases {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// isUnreachable is true when no connection could be made at all.
func isUnreachable(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// isConnectionLost is true when a connection was made and then dropped.
func isConnectionLost(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// Windows reports resets with its own errno values.
	msg := err.Error()
	return strings.Contains(msg, "connection reset") || strings.Contains(msg, "forcibly closed")
}
