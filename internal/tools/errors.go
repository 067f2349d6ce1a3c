package tools

import (
	"errors"
	"strings"
)

// Sentinel errors, so the executor's failure ladder can tell what went wrong
// with errors.Is. Every error the package returns wraps at most one of them.
var (
	// ErrUnknownTool: no tool has that name. The plan must be regenerated.
	ErrUnknownTool = errors.New("unknown tool")
	// ErrInvalidArgs: arguments do not match the tool's schema or make no
	// sense. The call should be regenerated with the error in context.
	ErrInvalidArgs = errors.New("invalid arguments")
	// ErrRefused: the sandbox refused the call (host not allowed, path outside
	// the roots, a statement that is not a SELECT). Retrying the same call
	// cannot help; a different call might.
	ErrRefused = errors.New("refused")
	// ErrTooLarge: the output or input exceeded a configured size limit.
	ErrTooLarge = errors.New("too large")
	// ErrFailed: the tool ran and reported failure (non-zero exit status,
	// HTTP error status from a config HTTP tool).
	ErrFailed = errors.New("tool failed")
)

// ArgsError lists every problem found in a call's arguments, one line each,
// phrased so that a model can fix them ("args.city: missing property").
type ArgsError struct {
	Tool     string
	Problems []string
}

func (e *ArgsError) Error() string {
	return "invalid arguments for tool " + e.Tool + ": " + strings.Join(e.Problems, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalidArgs) true.
func (e *ArgsError) Unwrap() error { return ErrInvalidArgs }
