package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Writers that queue behind a transaction share the next commit; one that
// fails leaves nothing behind and does not fail the others.
func TestGroupCommitKeepsEachWriterApart(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	if _, err := s.Exec(ctx, `CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	release, holding := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- s.Tx(ctx, func(tx *sql.Tx) error {
			close(holding)
			<-release // hold the turn while the others queue
			_, err := tx.ExecContext(ctx, `INSERT INTO kv VALUES ('lead', '1')`)
			return err
		})
	}()
	<-holding
	const n = 8
	errBoom := errors.New("boom")
	canceled, cancel := context.WithCancel(ctx)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c := ctx
			if i == 5 {
				c = canceled
			}
			errs[i] = s.Tx(c, func(tx *sql.Tx) error {
				if _, err := s.txExec(c, tx, `INSERT INTO kv VALUES (?, ?)`, fmt.Sprint("k", i), "v"); err != nil {
					return err
				}
				if i == 3 {
					return errBoom // its insert must not be committed
				}
				return nil
			})
		})
	}
	waitQueued(t, s, n+1)
	cancel() // writer 5 gave up while queued: it must not be written
	close(release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatalf("leader: %v", err)
	}
	for i, err := range errs {
		switch i {
		case 3:
			if !errors.Is(err, errBoom) {
				t.Errorf("writer 3: %v, want its own error", err)
			}
		case 5:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("writer 5: %v, want context.Canceled", err)
			}
		default:
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
		}
	}
	rows, err := s.Reader().Query(`SELECT k FROM kv ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var k string
		_ = rows.Scan(&k)
		got = append(got, k)
	}
	if fmt.Sprint(got) != "[k0 k1 k2 k4 k6 k7 lead]" {
		t.Errorf("committed %v", got)
	}
}

func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.commits.mu.Lock()
		q := len(s.commits.queue)
		s.commits.mu.Unlock()
		if q >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writers queued, want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}
