package fallback

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/events"
)

// Purposes of a remote request, as the ledger records them.
const (
	PurposePlan   = "plan"
	PurposeReplan = "replan"
	PurposeStep   = "step"
)

// Ledger is the egress ledger: every remote request is written before its
// first byte leaves, with the SHA-256 of the exact body, and updated with
// what came back.
type Ledger struct {
	store *db.Store
	pub   Publisher
}

// NewLedger builds a Ledger; pub may be nil.
func NewLedger(store *db.Store, pub Publisher) *Ledger {
	if pub == nil {
		pub = nopPublisher{}
	}
	return &Ledger{store: store, pub: pub}
}

// Egress describes a request about to be sent.
type Egress struct {
	RunID       string
	Destination string
	Provider    string
	Model       string
	Purpose     string
	Body        []byte
	Redactions  map[string]int
}

// BodyHash is the hex SHA-256 the ledger records for a body.
func BodyHash(body []byte) string {
	h := sha256.Sum256(body)
	return hex.EncodeToString(h[:])
}

// Begin records e; the returned id is passed to Finish.
func (l *Ledger) Begin(ctx context.Context, e Egress) (int64, error) {
	rec := &db.EgressRecord{RunID: e.RunID, Destination: e.Destination, Provider: e.Provider, Model: e.Model,
		Purpose: e.Purpose, BytesOut: int64(len(e.Body)), SHA256: BodyHash(e.Body), Redactions: e.Redactions, Status: "sent"}
	id, err := l.store.InsertEgress(ctx, rec)
	if err != nil {
		return 0, err
	}
	emit(l.pub, e.RunID, events.EgressData{ID: id, Time: rec.CreatedAt, RunID: rec.RunID, Destination: rec.Destination,
		Provider: rec.Provider, Model: rec.Model, Purpose: rec.Purpose, BytesOut: rec.BytesOut, BytesIn: rec.BytesIn,
		SHA256: rec.SHA256, Redactions: rec.Redactions, Status: rec.Status})
	return id, nil
}

// emit publishes p under its own type, so an event's type and data cannot
// disagree.
func emit(pub Publisher, runID string, p events.Payload) {
	pub.Emit(runID, p)
}

// Finish records the bytes that came back and how the request ended: "ok",
// "failed", or "unsent" when the connection was never made.
func (l *Ledger) Finish(ctx context.Context, id, bytesIn int64, status string) error {
	return l.store.FinishEgress(context.WithoutCancel(ctx), id, bytesIn, status)
}

// Recover marks requests whose outcome a dead process never recorded as
// interrupted. Call it once at start.
func (l *Ledger) Recover(ctx context.Context) (int64, error) { return l.store.InterruptEgress(ctx) }

// Export writes the ledger from since onwards as "jsonl" (one record a line)
// or "csv" (with a header row), for `agentd export egress`.
func (l *Ledger) Export(ctx context.Context, w io.Writer, since time.Time, format string) error {
	switch format {
	case "jsonl":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return l.store.EachEgress(ctx, since, func(e db.EgressRecord) error { return enc.Encode(e) })
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write([]string{"id", "time", "run_id", "destination", "provider", "model", "purpose",
			"bytes_out", "bytes_in", "sha256", "redactions", "status"}); err != nil {
			return err
		}
		err := l.store.EachEgress(ctx, since, func(e db.EgressRecord) error {
			return cw.Write([]string{strconv.FormatInt(e.ID, 10), e.CreatedAt.Format(time.RFC3339Nano), e.RunID,
				e.Destination, e.Provider, e.Model, e.Purpose, strconv.FormatInt(e.BytesOut, 10),
				strconv.FormatInt(e.BytesIn, 10), e.SHA256, countsString(e.Redactions), e.Status})
		})
		if err != nil {
			return err
		}
		cw.Flush()
		return cw.Error()
	}
	return fmt.Errorf("export egress: unknown format %q — use jsonl or csv", format)
}

// countsString renders redaction counts as "EMAIL=2;PHONE=1", sorted.
func countsString(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Itoa(m[k])
	}
	return strings.Join(parts, ";")
}
