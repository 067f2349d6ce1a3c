// Package db is agentd's SQLite store: one file, WAL, foreign keys, one
// writer connection and a pool of readers, schema from embedded numbered
// migrations applied each in its own transaction.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver; pure Go, no cgo
)

// Store is the database. Writes go through one connection, so SQLite never
// answers "database is locked" to ourselves; reads use a pool.
type Store struct {
	path  string
	write *sql.DB
	read  *sql.DB
	lock  *fileLock
	// Now is the clock used for timestamps; tests replace it.
	Now func() time.Time
	// PruneBatch overrides the package's PruneBatch (tests).
	PruneBatch int
	// pruneHook sees each prune batch (tests).
	pruneHook func(table string, deleted int64)

	// stmts holds the hot writes (hotStatements) prepared on the write
	// connection at Open, by query: the writes every step makes are
	// parsed once, not per call. Read-only after Open.
	stmts map[string]*sql.Stmt

	// commits groups the transactions of concurrent writers (see Tx).
	commits groupCommit
}

// Options change how Open behaves.
type Options struct {
	// NoLock skips the single-daemon lock, for tools (backup, doctor) that
	// read a database a running daemon owns.
	NoLock bool
	// MigrateTo stops migrations at this version (0 = latest); tests use it
	// to build databases at old schema versions.
	MigrateTo int
	// NoMigrate opens the database as it is.
	NoMigrate bool
}

// ErrLocked means another agentd holds the database.
var ErrLocked = errors.New("database in use by another agentd")

// Open opens (creating if needed) the database at path and brings its
// schema up to date.
func Open(ctx context.Context, path string, opt Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create database directory %s: %w — set storage.state_dir (or storage.database) to a writable place", filepath.Dir(path), err)
	}
	s := &Store{path: path, Now: time.Now, stmts: map[string]*sql.Stmt{}}
	if !opt.NoLock {
		l, err := acquireLock(path + ".lock")
		if err != nil {
			return nil, err
		}
		s.lock = l
	}
	var err error
	if s.write, err = sql.Open("sqlite", dsn(path, false)); err != nil {
		s.closeLock()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	s.write.SetMaxOpenConns(1)
	s.write.SetConnMaxIdleTime(0)
	if err := s.write.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open database %s: %w — check that the file is writable by the agentd user, or set storage.database", path, err)
	}
	if !opt.NoMigrate {
		if err := migrate(ctx, s.write, opt.MigrateTo, s.Now); err != nil {
			s.Close()
			return nil, fmt.Errorf("migrate database %s: %w", path, err)
		}
	}
	s.prepareHot(ctx)
	if s.read, err = sql.Open("sqlite", dsn(path, true)); err != nil {
		s.Close()
		return nil, fmt.Errorf("open database %s for reading: %w", path, err)
	}
	s.read.SetMaxOpenConns(4)
	return s, nil
}

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes the connections and releases the lock.
func (s *Store) Close() error {
	var errs []error
	if s.read != nil {
		errs = append(errs, s.read.Close())
	}
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	if s.write != nil {
		// Fold the WAL back so the file is whole on its own.
		_, _ = s.write.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		errs = append(errs, s.write.Close())
	}
	s.closeLock()
	return errors.Join(errs...)
}

func (s *Store) closeLock() {
	if s.lock != nil {
		s.lock.release()
		s.lock = nil
	}
}

// Tx runs fn in a write transaction: when Tx returns nil, what fn wrote is
// committed; when fn fails, nothing it wrote is.
//
// Concurrent calls share one commit (group commit): the writer whose turn
// it is runs the functions queued behind it, each under its own savepoint,
// in one transaction, and every caller returns once that transaction is
// committed. A commit costs the same for one step's writes as for fifty,
// so many runs at once no longer queue for the write connection one small
// transaction at a time. A caller alone runs its transaction at once.
func (s *Store) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.commits.do(&txReq{ctx: ctx, fn: fn}, s.runBatch)
}

// Exec runs one write statement (in a transaction of its own, or in the
// group commit of concurrent writers).
func (s *Store) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = s.txExec(ctx, tx, q, args...)
		return err
	})
	return res, err
}

// prepareHot prepares hotStatements on the write connection. It runs in
// Open, before any transaction holds the connection (a statement prepared
// on the pool while a transaction holds its one connection would wait for
// it forever). A statement that does not prepare (a database opened at an
// older schema) simply runs unprepared.
func (s *Store) prepareHot(ctx context.Context) {
	for _, q := range hotStatements {
		if st, err := s.write.PrepareContext(ctx, q); err == nil {
			s.stmts[q] = st
		}
	}
}

// txExec runs q inside tx, prepared when it is one of hotStatements.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if st, ok := s.stmts[q]; ok {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

// txQueryRow is txExec for a query of one row.
func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if st, ok := s.stmts[q]; ok {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

// runBatch commits the functions of one group in one transaction. Alone,
// a function runs as a plain transaction. With others, each runs under a
// savepoint, so one that fails leaves no trace and the others still
// commit; if the commit itself fails, every caller gets its error.
func (s *Store) runBatch(batch []*txReq) {
	// The transaction belongs to the whole group: one caller's cancelled
	// context must not roll back the others' writes. Each function's
	// statements still run under its caller's context.
	tx, err := s.write.BeginTx(context.Background(), nil)
	if err != nil {
		for _, r := range batch {
			r.err = err
		}
		return
	}
	if len(batch) == 1 {
		r := batch[0]
		if r.err = r.fn(tx); r.err != nil {
			_ = tx.Rollback()
			return
		}
		r.err = tx.Commit()
		return
	}
	fail := func(err error) {
		_ = tx.Rollback()
		for _, r := range batch {
			if r.err == nil {
				r.err = err
			}
		}
	}
	for _, r := range batch {
		if r.err = r.ctx.Err(); r.err != nil {
			continue
		}
		if _, err := s.txExec(r.ctx, tx, savepointSQL); err != nil {
			fail(fmt.Errorf("group commit: %w", err))
			return
		}
		if r.err = r.fn(tx); r.err != nil {
			if _, err := s.txExec(context.Background(), tx, rollbackToSQL); err != nil {
				fail(fmt.Errorf("group commit: undo a failed write: %w", err))
				return
			}
		}
		if _, err := s.txExec(context.Background(), tx, releaseSQL); err != nil {
			fail(fmt.Errorf("group commit: %w", err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		for _, r := range batch {
			if r.err == nil {
				r.err = err
			}
		}
	}
}

// Reader is the read-only pool, for queries that need no write.
func (s *Store) Reader() *sql.DB { return s.read }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	return s.read.QueryRowContext(ctx, "SELECT 1").Scan(&n)
}

// SchemaVersion is the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.read.QueryRowContext(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v)
	return int(v.Int64), err
}

// Backup writes a consistent copy of the live database to dst, safe while
// agentd is running (SQLite's VACUUM INTO reads one snapshot).
func (s *Store) Backup(ctx context.Context, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("backup: %s already exists — choose a new file name", dst)
	}
	abs, err := filepath.Abs(dst)
	if err != nil {
		return err
	}
	if _, err := s.write.ExecContext(ctx, "VACUUM INTO ?", abs); err != nil {
		return fmt.Errorf("backup to %s: %w", dst, err)
	}
	return nil
}

// ms converts a time to the stored Unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS converts stored Unix milliseconds back to a time.
func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func nullMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}
