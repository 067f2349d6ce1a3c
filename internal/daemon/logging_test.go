package daemon

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/config"
)

type runRec struct{ id, status string }

func (r runRec) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", r.id), slog.String("status", r.status))
}

// One key once per line, in text and JSON: a sub-component's name replaces
// its parent's, a logged record replaces the id a With gave.
func TestLogLinesSayEachKeyOnce(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		log := NewLogger(config.LoggingConfig{Level: "info", Format: format}, &buf)
		sub := log.With("component", "ollamasim").With("component", "ollamasim.scheduler", "slot", 1)
		sub.Info("loading model", "model", "m")
		runLog := log.With("component", "exec", "run", "r_1")
		runLog.Info("run started", "run", runRec{"r_1", "queued"})
		log.WithGroup("g").With("k", 1).Info("grouped", "k", 2)
		out := buf.String()
		for _, dup := range []string{"component=ollamasim component", `"component":"ollamasim","component"`, "run=r_1 run.id", `"run":"r_1","run"`} {
			if strings.Contains(out, dup) {
				t.Errorf("%s: a key repeats (%q):\n%s", format, dup, out)
			}
		}
		for _, want := range []string{"ollamasim.scheduler", "slot", "run.id=r_1", `"run":{"id":"r_1"`} {
			if format == "text" && strings.HasPrefix(want, `"`) || format == "json" && strings.HasPrefix(want, "run.id") {
				continue
			}
			if !strings.Contains(out, want) {
				t.Errorf("%s: %q missing:\n%s", format, want, out)
			}
		}
		if !strings.Contains(out, "grouped") {
			t.Errorf("%s: a grouped logger lost its line:\n%s", format, out)
		}
	}
}
