package main

import (
	"context"
	"fmt"
	"os"

	"github.com/agentd/agentd/internal/db"
)

func init() {
	register("db", "db backup FILE: an online, consistent copy of the database", (*Main).dbCmd)
}

func (m *Main) dbCmd(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "backup" {
		return usagef("usage: agentd db backup [--config FILE] DEST")
	}
	fs, cfgPath := m.flags("db backup")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("usage: agentd db backup [--config FILE] DEST")
	}
	cfg, _, err := m.loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	src := cfg.ResolvePaths().Database
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("no database at %s: %w — check storage.state_dir / storage.database, or pass --config", src, err)
	}
	// No lock and no migration: this runs beside a live daemon.
	s, err := db.Open(ctx, src, db.Options{NoLock: true, NoMigrate: true})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Backup(ctx, fs.Arg(0)); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "backed up %s to %s\n", src, fs.Arg(0))
	return nil
}
