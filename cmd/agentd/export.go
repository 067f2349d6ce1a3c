package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/api"
	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/fallback"
	"github.com/agentd/agentd/internal/plancache"
)

func init() {
	register("export", "export egress|finetune|workflows: the egress ledger (audit), fine-tuning candidates, or learned plan templates as config workflows", (*Main).exportCmd)
}

const exportUsage = "usage: agentd export egress [--since 2026-01-01|7d|RFC3339] [--format jsonl|csv] [--out FILE]\n" +
	"       agentd export finetune [--out FILE]\n" +
	"       agentd export workflows [--out FILE]   (learned plan templates as [[workflows]] for config.toml)"

func (m *Main) exportCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("%s", exportUsage)
	}
	what, args := args[0], args[1:]
	fs, cfgPath := m.flags("export " + what)
	out := fs.String("out", "", "write to this file instead of standard output")
	var since, format *string
	switch what {
	case "egress":
		since = fs.String("since", "", "from this time: a date (2026-01-01), RFC 3339, or a span back from now (7d, 12h); default: everything")
		format = fs.String("format", "jsonl", "jsonl or csv")
	case "finetune", "workflows":
	default:
		return usagef("unknown export %q\n%s", what, exportUsage)
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected %q\n%s", fs.Arg(0), exportUsage)
	}
	var from time.Time
	if since != nil {
		var err error
		if from, err = parseSince(*since, time.Now()); err != nil {
			return usagef("--since: %v", err)
		}
		if *format != "jsonl" && *format != "csv" {
			return usagef("--format is %q; use jsonl or csv", *format)
		}
	}
	cfg, _, err := m.loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	path := cfg.ResolvePaths().Database
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no database at %s: %w — check storage.state_dir / storage.database, or pass --config", path, err)
	}
	// No lock and no migration: this runs beside a live daemon.
	store, err := db.Open(ctx, path, db.Options{NoLock: true, NoMigrate: true})
	if err != nil {
		return err
	}
	defer store.Close()

	w, commit, err := m.output(*out)
	if err != nil {
		return err
	}
	defer commit(false)
	var n int
	switch what {
	case "egress":
		if err := store.EachEgress(ctx, from, func(db.EgressRecord) error { n++; return nil }); err != nil {
			return err
		}
		if err := fallback.NewLedger(store, nil).Export(ctx, w, from, *format); err != nil {
			return err
		}
	case "finetune":
		if n, err = fallback.NewFinetune(store).Export(ctx, w); err != nil {
			return err
		}
	case "workflows":
		if n, err = exportWorkflows(ctx, w, cfg.Planner.Cache, store, path); err != nil {
			return err
		}
	}
	if err := commit(true); err != nil {
		return err
	}
	if *out != "" {
		noun := map[string]string{"egress": "egress records", "finetune": "fine-tuning examples", "workflows": "workflows"}[what]
		fmt.Fprintf(m.Stderr, "wrote %d %s to %s\n", n, noun, *out)
	}
	return nil
}

// output opens the export's destination: standard output, or a file that
// appears complete or not at all (written beside, renamed on commit).
func (m *Main) output(path string) (io.Writer, func(ok bool) error, error) {
	if path == "" || path == "-" {
		return m.Stdout, func(bool) error { return nil }, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, nil, fmt.Errorf("cannot write %s: %w", path, err)
	}
	done := false
	return f, func(ok bool) error {
		if done {
			return nil
		}
		done = true
		if !ok {
			f.Close()
			os.Remove(f.Name())
			return nil
		}
		if err := f.Close(); err != nil {
			os.Remove(f.Name())
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := os.Rename(f.Name(), path); err != nil {
			os.Remove(f.Name())
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	}, nil
}

// parseSince reads a point in time: RFC 3339, a date (local midnight), or a
// span back from now ("7d", "2w", "36h", "90m"). Empty means the beginning.
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, now.Location()); err == nil {
		return t, nil
	}
	if n := len(s); n > 1 && (s[n-1] == 'd' || s[n-1] == 'w') {
		if k, err := strconv.Atoi(s[:n-1]); err == nil && k >= 0 {
			days := k
			if s[n-1] == 'w' {
				days *= 7
			}
			return now.AddDate(0, 0, -days), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use a date (2026-01-01), RFC 3339 (2026-01-01T08:00:00Z), or a span back from now (7d, 2w, 12h)", s)
}

// exportWorkflows writes the usable learned templates as [[workflows]]
// entries, read from the database as the plan cache stores them (the
// daemon need not run), and returns how many it wrote.
func exportWorkflows(ctx context.Context, w io.Writer, cfg config.PlanCacheConfig, store *db.Store, path string) (int, error) {
	cache, err := plancache.Open(ctx, cfg, store, nil)
	if err != nil {
		return 0, fmt.Errorf("read the learned plan templates in %s: %w", path, err)
	}
	wfs, err := cache.Workflows()
	if err != nil {
		return 0, err
	}
	b, err := api.WorkflowsTOML(wfs, time.Now())
	if err != nil {
		return 0, err
	}
	_, err = w.Write(b)
	return len(wfs), err
}
