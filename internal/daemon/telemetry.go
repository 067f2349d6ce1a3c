package daemon

import (
	"context"

	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/telemetry"
)

// egressLedger records trace export requests to a collector off the
// machine in the egress ledger, beside the remote planner's.
type egressLedger struct{ s *db.Store }

var _ telemetry.Ledger = egressLedger{}

func (l egressLedger) Sent(ctx context.Context, host string, bytesOut int64, sha256 string) (int64, error) {
	return l.s.InsertEgress(ctx, &db.EgressRecord{Destination: host, Provider: "otlp", Purpose: "telemetry",
		BytesOut: bytesOut, SHA256: sha256})
}

func (l egressLedger) Finished(ctx context.Context, id, bytesIn int64, status string) error {
	return l.s.FinishEgress(ctx, id, bytesIn, status)
}
