package daemon

import (
	"context"
	"io"
	"log/slog"
	"slices"

	"github.com/agentd/agentd/internal/config"
)

// NewLogger builds the process logger from logging.level and logging.format.
// A key says one thing once per line: a later value replaces an earlier
// one (a sub-component's "component", a run's full record over its id).
func NewLogger(cfg config.LoggingConfig, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(uniqueKeys{inner: h})
}

// uniqueKeys is a slog.Handler that keeps one attribute per top-level key:
// attributes from With are held here rather than formatted ahead, so a
// later With or the log call itself can replace them. (The standard
// handlers write every attribute given, so "component=ollamasim
// component=ollamasim.scheduler" or "run=r_1 run.id=r_1" would repeat.)
// After WithGroup the attributes belong to the group and pass through.
type uniqueKeys struct {
	inner slog.Handler
	attrs []slog.Attr
}

func (h uniqueKeys) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h uniqueKeys) WithAttrs(as []slog.Attr) slog.Handler {
	return uniqueKeys{inner: h.inner, attrs: merge(h.attrs, as)}
}

func (h uniqueKeys) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.inner.WithAttrs(h.attrs).WithGroup(name)
}

func (h uniqueKeys) Handle(ctx context.Context, r slog.Record) error {
	if len(h.attrs) == 0 {
		return h.inner.Handle(ctx, r)
	}
	own := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool { own = append(own, a); return true })
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(merge(h.attrs, own)...)
	return h.inner.Handle(ctx, out)
}

// merge appends later to earlier, a later attribute replacing an earlier
// one with the same key where it stood.
func merge(earlier, later []slog.Attr) []slog.Attr {
	out := slices.Clone(earlier)
	for _, a := range later {
		if i := slices.IndexFunc(out, func(b slog.Attr) bool { return b.Key == a.Key }); i >= 0 && a.Key != "" {
			out[i] = a
			continue
		}
		out = append(out, a)
	}
	return out
}
