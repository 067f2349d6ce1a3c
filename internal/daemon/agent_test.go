package daemon

import (
	"context"
	"fmt"
	"testing"

	"github.com/agentd/agentd/internal/llm"
)

// One retry policy: the model client retries busy and transient model
// failures (and records each attempt), so the executor's retry rung must
// not retry them again; it retries what the client does not.
func TestLadderRetriesOnlyWhatTheClientDoesNot(t *testing.T) {
	tests := []struct {
		name                   string
		err                    error
		transient, bad, absent bool
	}{
		{"busy, already retried by the client", &llm.Error{Class: llm.ClassBusy}, false, false, false},
		{"connection lost, already retried", &llm.Error{Class: llm.ClassTransient}, false, false, false},
		{"server down", &llm.Error{Class: llm.ClassUnreachable}, false, false, false},
		{"request timeout, not retried by the client", &llm.Error{Class: llm.ClassTransient, Err: context.DeadlineExceeded}, true, false, false},
		{"the step's own timeout", fmt.Errorf("step: %w", context.DeadlineExceeded), true, false, false},
		{"cut at num_predict", &llm.Error{Class: llm.ClassTruncated}, false, true, false},
		{"aborted by the server", fmt.Errorf("model m: %w", &llm.Error{Class: llm.ClassAborted}), false, true, false},
		{"not pulled", &llm.Error{Class: llm.ClassModelNotFound}, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isTransient(tt.err); got != tt.transient {
				t.Errorf("isTransient = %v, want %v", got, tt.transient)
			}
			if got := isBadOutput(tt.err); got != tt.bad {
				t.Errorf("isBadOutput = %v, want %v", got, tt.bad)
			}
			if got := isModelMissing(tt.err); got != tt.absent {
				t.Errorf("isModelMissing = %v, want %v", got, tt.absent)
			}
		})
	}
}
