package daemon

import (
	"testing"

	"github.com/agentd/agentd/internal/ollamatest"
)

// TestMain stops the real Ollama servers the conformance tests started.
func TestMain(m *testing.M) { ollamatest.Main(m) }
