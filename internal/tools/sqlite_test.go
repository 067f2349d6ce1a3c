package tools

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/config"
)

func makeSalesDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sales.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := []string{
		`CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total REAL, note BLOB)`,
		`CREATE TABLE "semi;colon" (x INTEGER)`,
	}
	for i := 1; i <= 30; i++ {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO orders(customer, total, note) VALUES ('c%02d', %d.5, x'00ff')`, i, i*10))
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestCheckSelect(t *testing.T) {
	ok := []string{
		"SELECT 1",
		"select * from orders;",
		"SELECT 1; -- trailing comment",
		"SELECT 1 /* c */ ;  ",
		"WITH t AS (SELECT 1 AS x) SELECT x FROM t",
		"SELECT ';DROP TABLE orders' AS s",
		`SELECT "delete" FROM "semi;colon"`,
		"SELECT replace(customer, 'c', 'C') FROM orders",
		"SELECT 'it''s' AS s",
		"SELECT x FROM [semi;colon]",
		"  -- leading comment\n SELECT 2",
	}
	for _, q := range ok {
		if err := CheckSelect(q); err != nil {
			t.Errorf("CheckSelect(%q) = %v", q, err)
		}
	}
	refused := []struct{ q, want string }{
		{"INSERT INTO orders(customer) VALUES ('x')", "not INSERT"},
		{"DELETE FROM orders", "not DELETE"},
		{"UPDATE orders SET total = 0", "not UPDATE"},
		{"DROP TABLE orders", "not DROP"},
		{"PRAGMA query_only=0", "not PRAGMA"},
		{"ATTACH DATABASE '/tmp/x.db' AS x", "not ATTACH"},
		{"VACUUM INTO '/tmp/copy.db'", "not VACUUM"},
		{"SELECT 1; DELETE FROM orders", "more than one statement"},
		{"SELECT 1;SELECT 2", "more than one statement"},
		{"SELECT 1; 'x'", "more than one statement"},
		{"WITH t AS (SELECT 1) DELETE FROM orders", "DELETE is not allowed"},
		{"WITH t AS (SELECT 1) INSERT INTO orders(id) SELECT 1", "INSERT is not allowed"},
		{"SELECT 1 UNION SELECT 2; PRAGMA writable_schema=1", "more than one statement"},
		{"EXPLAIN SELECT 1", "not EXPLAIN"},
	}
	for _, tt := range refused {
		wantErr(t, CheckSelect(tt.q), ErrRefused, tt.want)
	}
	invalid := []struct{ q, want string }{
		{"", "empty"},
		{"  -- only a comment", "empty"},
		{"SELECT 'open", "unterminated quote"},
		{"SELECT 1 /* open", "unterminated"},
		{"SELECT " + strings.Repeat("1,", 5000) + "1", "limit is 8000"},
	}
	for _, tt := range invalid {
		wantErr(t, CheckSelect(tt.q), ErrInvalidArgs, tt.want)
	}
}

func TestSQLiteQuery(t *testing.T) {
	path := makeSalesDB(t)
	info, _ := os.Stat(path)
	q, err := NewSQLiteQuery(context.Background(), []config.NamedPath{{Name: "sales", Path: path}}, 5, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	if d := q.Spec().Description; !strings.Contains(d, "orders(id, customer, total, note)") {
		t.Errorf("description lacks the schema hint: %s", d)
	}

	out, err := call(t, q, `{"sql":"SELECT customer, total FROM orders WHERE total > ? ORDER BY total DESC LIMIT 2","params":[100]}`)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(out["columns"]) != "[customer total]" || fmt.Sprint(out["rows"]) != "[[c30 300.5] [c29 290.5]]" || out["truncated"] != false {
		t.Fatalf("out = %v", out)
	}
	out, err = call(t, q, `{"database":"sales","sql":"SELECT id, note FROM orders"}`)
	if err != nil {
		t.Fatal(err)
	}
	rows := out["rows"].([]any)
	if len(rows) != 5 || out["truncated"] != true || !strings.Contains(out["note"].(string), "first 5 rows") {
		t.Fatalf("row cap: %v", out)
	}
	if rows[0].([]any)[1] != "<blob, 2 bytes>" {
		t.Fatalf("blob cell = %v", rows[0])
	}

	_, err = call(t, q, `{"database":"other","sql":"SELECT 1"}`)
	wantErr(t, err, ErrInvalidArgs, `unknown database "other"`, "sales")
	_, err = call(t, q, `{"sql":"SELECT nope FROM orders"}`)
	wantErr(t, err, ErrInvalidArgs, "no such column", "fix the SQL")
	_, err = call(t, q, `{"sql":"DELETE FROM orders"}`)
	wantErr(t, err, ErrRefused)
	_, err = call(t, q, `{"sql":"SELECT 1; DROP TABLE orders"}`)
	wantErr(t, err, ErrRefused, "more than one statement")

	// A query that never ends is stopped at the timeout.
	start := time.Now()
	_, err = call(t, q, `{"sql":"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"}`)
	if err == nil || !strings.Contains(err.Error(), "longer than 1s") || time.Since(start) > 5*time.Second {
		t.Fatalf("runaway query: %v after %s", err, time.Since(start))
	}

	// Even past CheckSelect, the connection itself refuses to write.
	if _, err := q.dbs["sales"].Exec(`INSERT INTO orders(customer) VALUES ('sneaky')`); err == nil {
		t.Fatal("the read-only connection accepted an INSERT")
	}
	if _, err := q.dbs["sales"].Exec(`PRAGMA query_only=0; INSERT INTO orders(customer) VALUES ('sneaky')`); err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Fatalf("mode=ro did not stop a write after query_only was turned off: %v", err)
	}
	var n int
	check, _ := sql.Open("sqlite", path)
	defer check.Close()
	if err := check.QueryRow(`SELECT count(*) FROM orders`).Scan(&n); err != nil || n != 30 {
		t.Fatalf("orders = %d, %v: the database changed", n, err)
	}
	if after, _ := os.Stat(path); after.ModTime() != info.ModTime() {
		t.Fatal("the database file was modified")
	}
}

func TestNewSQLiteQueryErrors(t *testing.T) {
	notDB := filepath.Join(t.TempDir(), "x.db")
	os.WriteFile(notDB, []byte("this is not a database file at all, not even close......................................................"), 0o644)
	tests := []struct {
		dbs  []config.NamedPath
		want string
	}{
		{[]config.NamedPath{{Name: "a", Path: "/nonexistent/a.db"}}, "tools.sqlite.databases[0].path"},
		{[]config.NamedPath{{Name: "a"}}, "needs both name and path"},
		{[]config.NamedPath{{Name: "a", Path: notDB}}, "cannot read it as SQLite"},
	}
	for _, tt := range tests {
		_, err := NewSQLiteQuery(context.Background(), tt.dbs, 0, 0)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewSQLiteQuery(%v) = %v, want %q", tt.dbs, err, tt.want)
		}
	}
}
