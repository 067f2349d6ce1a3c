package ollamasim_test

import (
	"testing"

	"github.com/agentd/agentd/internal/ollamatest"
)

// TestMain stops the real Ollama the differential test starts (through
// ollamatest.Shared) once every test in this binary has run.
func TestMain(m *testing.M) { ollamatest.Main(m) }
