package tools

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agentd/agentd/internal/config"

	_ "modernc.org/sqlite" // the "sqlite" driver
)

// Bounds of sqlite_query.
const (
	maxSQLLen          = 8000
	maxSQLResultBytes  = 1 << 20
	maxSQLCellChars    = 4000
	defaultSQLTimeout  = 10 * time.Second
	maxSchemaHintChars = 1500
)

// SQLiteQuery is the sqlite_query tool: one SELECT at a time on databases
// opened read-only twice over (SQLite's mode=ro and PRAGMA query_only), so a
// statement that slips past the checks below still cannot write.
type SQLiteQuery struct {
	dbs     map[string]*sql.DB
	names   []string
	hints   map[string]string
	maxRows int
	timeout time.Duration
}

var _ Tool = (*SQLiteQuery)(nil)

// NewSQLiteQuery opens each database read-only. Errors name the config key.
func NewSQLiteQuery(ctx context.Context, databases []config.NamedPath, maxRows int, timeout time.Duration) (*SQLiteQuery, error) {
	if maxRows <= 0 {
		maxRows = 200
	}
	if timeout <= 0 {
		timeout = defaultSQLTimeout
	}
	q := &SQLiteQuery{dbs: map[string]*sql.DB{}, hints: map[string]string{}, maxRows: maxRows, timeout: timeout}
	for i, d := range databases {
		key := fmt.Sprintf("tools.sqlite.databases[%d]", i)
		if d.Name == "" || d.Path == "" {
			q.Close()
			return nil, fmt.Errorf("%s: needs both name and path", key)
		}
		if _, dup := q.dbs[d.Name]; dup {
			q.Close()
			return nil, fmt.Errorf("%s.name: %q is used twice", key, d.Name)
		}
		abs, err := filepath.Abs(d.Path)
		if err != nil {
			q.Close()
			return nil, fmt.Errorf("%s.path: %w", key, err)
		}
		if st, err := os.Stat(abs); err != nil || !st.Mode().IsRegular() {
			q.Close()
			return nil, fmt.Errorf("%s.path %q: not a readable database file (%v) — check the path", key, d.Path, err)
		}
		db, err := sql.Open("sqlite", readOnlyDSN(abs))
		if err != nil {
			q.Close()
			return nil, fmt.Errorf("%s.path %q: %w", key, d.Path, err)
		}
		db.SetMaxOpenConns(2)
		q.dbs[d.Name] = db
		q.names = append(q.names, d.Name)
		hint, err := schemaHint(ctx, db)
		if err != nil {
			q.Close()
			return nil, fmt.Errorf("%s.path %q: cannot read it as SQLite: %w", key, d.Path, err)
		}
		q.hints[d.Name] = hint
	}
	slices.Sort(q.names)
	return q, nil
}

func readOnlyDSN(abs string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(abs)
	return "file:" + esc + "?mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(2000)"
}

// schemaHint lists tables and their columns, so a small model can write a
// query without a round of exploration.
func schemaHint(ctx context.Context, db *sql.DB) (string, error) {
	rows, err := db.QueryContext(ctx, `SELECT m.name, group_concat(p.name, ', ') FROM sqlite_schema m JOIN pragma_table_info(m.name) p
		WHERE m.type IN ('table','view') AND m.name NOT LIKE 'sqlite_%' GROUP BY m.name ORDER BY m.name`)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var t, cols string
		if err := rows.Scan(&t, &cols); err != nil {
			return "", err
		}
		parts = append(parts, t+"("+cols+")")
	}
	s := strings.Join(parts, "; ")
	if len(s) > maxSchemaHintChars {
		s = s[:maxSchemaHintChars] + "…"
	}
	return s, rows.Err()
}

// Close closes the databases.
func (q *SQLiteQuery) Close() error {
	var errs []error
	for _, db := range q.dbs {
		errs = append(errs, db.Close())
	}
	return errors.Join(errs...)
}

// Spec implements Tool.
func (q *SQLiteQuery) Spec() Spec {
	var desc strings.Builder
	desc.WriteString("Run one read-only SQL SELECT (or WITH ... SELECT) on a SQLite database and get columns and rows. ")
	fmt.Fprintf(&desc, "At most %d rows are returned; use WHERE, ORDER BY and LIMIT. Pass values as params with ? placeholders. Databases: ", q.maxRows)
	for i, n := range q.names {
		if i > 0 {
			desc.WriteString(" | ")
		}
		desc.WriteString(n + " — tables: " + q.hints[n])
	}
	names, _ := json.Marshal(q.names)
	required := `["sql"]`
	if len(q.names) > 1 {
		required = `["database","sql"]`
	}
	return Spec{
		Name:        "sqlite_query",
		Description: desc.String(),
		ArgsSchema: json.RawMessage(`{"type":"object","properties":{` +
			`"database":{"type":"string","enum":` + string(names) + `,"description":"Which database; may be omitted when there is only one."},` +
			`"sql":{"type":"string","minLength":1,"maxLength":8000,"description":"One SELECT statement, e.g. \"SELECT name, total FROM orders WHERE year = ? ORDER BY total DESC LIMIT 10\"."},` +
			`"params":{"type":"array","maxItems":100,"items":{"type":["string","number","boolean","null"]},"description":"Values for the ? placeholders, in order."}},` +
			`"required":` + required + `,"additionalProperties":false}`),
		Idempotent:  true,
		Timeout:     q.timeout + 2*time.Second,
		Concurrency: 2,
	}
}

// Call implements Tool.
func (q *SQLiteQuery) Call(ctx context.Context, args json.RawMessage) (Result, error) {
	var a struct {
		Database string `json:"database"`
		SQL      string `json:"sql"`
		Params   []any  `json:"params"`
	}
	if err := json.Unmarshal(args, &a); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrInvalidArgs, err)
	}
	if a.Database == "" && len(q.names) == 1 {
		a.Database = q.names[0]
	}
	db, ok := q.dbs[a.Database]
	if !ok {
		return Result{}, fmt.Errorf("%w: unknown database %q; use one of %s", ErrInvalidArgs, a.Database, strings.Join(q.names, ", "))
	}
	if err := CheckSelect(a.SQL); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	rows, err := db.QueryContext(ctx, a.SQL, a.Params...)
	if err != nil {
		return Result{}, sqlError(ctx, q.timeout, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return Result{}, fmt.Errorf("read columns: %w", err)
	}
	out := [][]any{}
	size, truncated := 0, false
	for rows.Next() {
		if len(out) == q.maxRows || size > maxSQLResultBytes {
			truncated = true
			break
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return Result{}, fmt.Errorf("read row: %w", err)
		}
		for i, v := range vals {
			vals[i] = jsonCell(v)
			if s, ok := vals[i].(string); ok {
				size += len(s)
			}
			size += 8
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		return Result{}, sqlError(ctx, q.timeout, err)
	}
	res := map[string]any{"database": a.Database, "columns": cols, "rows": out, "row_count": len(out), "truncated": truncated}
	if truncated {
		res["note"] = fmt.Sprintf("only the first %d rows are shown; narrow the query with WHERE or LIMIT, or aggregate", len(out))
	}
	return marshalResult(res)
}

func sqlError(ctx context.Context, timeout time.Duration, err error) error {
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("query took longer than %s and was stopped: %w — make it cheaper (LIMIT, indexed WHERE)", timeout, context.DeadlineExceeded)
	}
	msg := err.Error()
	if strings.Contains(msg, "readonly") || strings.Contains(msg, "read-only") || strings.Contains(msg, "query_only") {
		return fmt.Errorf("%w: the database is read-only: %v", ErrRefused, err)
	}
	return fmt.Errorf("%w: the query failed: %v — fix the SQL", ErrInvalidArgs, err)
}

func jsonCell(v any) any {
	switch x := v.(type) {
	case []byte:
		if utf8.Valid(x) {
			return clipCell(string(x))
		}
		return fmt.Sprintf("<blob, %d bytes>", len(x))
	case string:
		return clipCell(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	default:
		return x
	}
}

func clipCell(s string) string {
	if len(s) <= maxSQLCellChars {
		return s
	}
	cut := maxSQLCellChars
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("…[%d more bytes]", len(s)-cut)
}

// writeKeywords may not appear in a query, even after WITH (SQLite allows
// "WITH x AS (...) DELETE ..."). The read-only connection would refuse them
// anyway; refusing here gives the model a clear reason.
var writeKeywords = map[string]bool{
	"INSERT": true, "UPDATE": true, "DELETE": true, "CREATE": true, "DROP": true, "ALTER": true,
	"ATTACH": true, "DETACH": true, "PRAGMA": true, "VACUUM": true, "REINDEX": true, "ANALYZE": true,
	"BEGIN": true, "COMMIT": true, "ROLLBACK": true, "SAVEPOINT": true, "RELEASE": true, "UPSERT": true,
}

// CheckSelect accepts exactly one SELECT or WITH statement (an optional
// trailing semicolon is fine). It tokenizes enough SQL to skip strings,
// quoted identifiers and comments, so "SELECT ';DROP'" is one statement.
func CheckSelect(q string) error {
	refuse := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s; send exactly one SELECT statement", ErrRefused, fmt.Sprintf(format, a...))
	}
	if len(q) > maxSQLLen {
		return fmt.Errorf("%w: the statement is %d characters long, the limit is %d", ErrInvalidArgs, len(q), maxSQLLen)
	}
	var words []string
	ended := false // a ';' was seen
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				return fmt.Errorf("%w: unterminated /* comment", ErrInvalidArgs)
			}
			i += end + 4
		case c == '\'' || c == '"' || c == '`' || c == '[':
			closer := c
			if c == '[' {
				closer = ']'
			}
			j := i + 1
			for {
				k := strings.IndexByte(q[j:], closer)
				if k < 0 {
					return fmt.Errorf("%w: unterminated quote %q", ErrInvalidArgs, string(c))
				}
				j += k + 1
				// A doubled quote is an escaped quote inside the literal.
				if closer != ']' && j < len(q) && q[j] == closer {
					j++
					continue
				}
				break
			}
			if ended {
				return refuse("more than one statement")
			}
			i = j
		case c == ';':
			ended = true
			i++
		default:
			if ended {
				return refuse("more than one statement")
			}
			j := i
			for j < len(q) && isWordByte(q[j]) {
				j++
			}
			if j == i {
				i++
				continue
			}
			words = append(words, strings.ToUpper(q[i:j]))
			i = j
		}
	}
	if len(words) == 0 {
		return fmt.Errorf("%w: the statement is empty", ErrInvalidArgs)
	}
	if words[0] != "SELECT" && words[0] != "WITH" {
		return refuse("only SELECT or WITH queries are allowed, not %s", words[0])
	}
	for _, w := range words {
		if writeKeywords[w] {
			return refuse("%s is not allowed: the databases are read-only", w)
		}
	}
	return nil
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}
