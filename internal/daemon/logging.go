package daemon

import (
	"io"
	"log/slog"

	"github.com/agentd/agentd/internal/config"
)

// NewLogger builds the process logger from logging.level and logging.format.
func NewLogger(cfg config.LoggingConfig, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
