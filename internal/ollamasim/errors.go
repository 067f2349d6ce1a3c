package ollamasim

import (
	"fmt"
	"net/http"

	"github.com/ollama/ollama/types/model"
)

// httpError is an error the handlers turn into Ollama's {"error": "..."}
// body with the given status code.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

// The wording below is copied from Ollama v0.17.4 (server/routes.go,
// server/sched.go, server/images.go, llm/server.go) so that agentd's error
// classification is exercised against the real strings.

// errModelNotFound is what /api/chat, /api/generate, /api/embed and
// /api/show answer for a model that is not pulled (routes.go: GetModel fails
// with os.ErrNotExist before scheduling).
func errModelNotFound(name string) *httpError {
	return &httpError{http.StatusNotFound, fmt.Sprintf("model '%s' not found", name)}
}

// errNotFoundTryPulling is handleScheduleError's wording for a model the
// scheduler cannot find. /api/embed reaches it for a missing model because,
// unlike chat and generate, it does not look the model up before scheduling.
func errNotFoundTryPulling(name string) *httpError {
	return &httpError{http.StatusNotFound, fmt.Sprintf("model %q not found, try pulling it first", name)}
}

// errModelRequired matches routes.go for an empty or invalid model name.
var errModelRequired = &httpError{http.StatusBadRequest, "model is required"}

// errUnqualifiedName is what /api/embed and /api/show answer for a name
// Ollama cannot parse (an empty one, for embed): they do not check the name
// up front as chat and generate do, and fail later on its parsed form
// (types/model: "unqualified name: registry.ollama.ai/library/!MISSING!:latest").
func errUnqualifiedName(name string) *httpError {
	return &httpError{http.StatusInternalServerError, "unqualified name: " + model.ParseName(name).String()}
}

// errTopLogprobs is the chat and generate handlers' range check.
var errTopLogprobs = &httpError{http.StatusBadRequest, "top_logprobs must be between 0 and 20"}

// errMissingBody matches routes.go for an empty request body.
var errMissingBody = &httpError{http.StatusBadRequest, "missing request body"}

// errDoesNotSupport is scheduleRunner's capability error: the fully
// qualified name, then "does not support", then the missing capability.
func errDoesNotSupport(name, capability string) *httpError {
	return &httpError{http.StatusBadRequest, fmt.Sprintf("%s does not support %s", fullName(name), capability)}
}

// errDoesNotSupportChat is ChatHandler's wording when the model lacks the
// completion capability (an embedding-only model).
func errDoesNotSupportChat(name string) *httpError {
	return &httpError{http.StatusBadRequest, fmt.Sprintf("%q does not support chat", name)}
}

// errDoesNotSupportGenerate is GenerateHandler's equivalent.
func errDoesNotSupportGenerate(name string) *httpError {
	return &httpError{http.StatusBadRequest, fmt.Sprintf("%q does not support generate", name)}
}

// errDoesNotSupportThinking is returned when think=true is sent to a model
// without the thinking capability.
func errDoesNotSupportThinking(name string) *httpError {
	return &httpError{http.StatusBadRequest, fmt.Sprintf("%q does not support thinking", name)}
}

// MsgMaxQueue is sched.go's ErrMaxQueue text (note the two spaces).
const MsgMaxQueue = "server busy, please try again.  maximum pending requests exceeded"

var errMaxQueue = &httpError{http.StatusServiceUnavailable, MsgMaxQueue}

// errOutOfMemory is llm/server.go's verifyLayout wording when even system
// memory cannot hold the part of the model that does not fit in VRAM.
func errOutOfMemory(required, available int64) *httpError {
	return &httpError{http.StatusInternalServerError, fmt.Sprintf("model requires more system memory (%s) than is available (%s)", humanBytes2(required), humanBytes2(available))}
}

// MsgRunnerStopped is llm/server.go's error when the runner dies mid
// completion; the simulator uses it for the mid-stream fault.
const MsgRunnerStopped = "model runner has unexpectedly stopped, this may be due to resource limitations or an internal error, check ollama server logs for details"

// msgPullNotFound is what PullModel streams for a name the registry lacks.
const msgPullNotFound = "pull model manifest: file does not exist"

// humanBytes2 formats like Ollama's format.HumanBytes2 (binary units).
func humanBytes2(b int64) string {
	const (
		kib = 1024
		mib = 1024 * kib
		gib = 1024 * mib
	)
	switch {
	case b >= gib:
		return fmt.Sprintf("%.1f GiB", float64(b)/gib)
	case b >= mib:
		return fmt.Sprintf("%.1f MiB", float64(b)/mib)
	case b >= kib:
		return fmt.Sprintf("%.1f KiB", float64(b)/kib)
	default:
		return fmt.Sprintf("%d B", b)
	}
}
