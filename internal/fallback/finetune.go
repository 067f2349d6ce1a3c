package fallback

import (
	"context"
	"encoding/json"
	"io"

	"github.com/agentd/agentd/internal/db"
)

// Reasons a request is kept as a fine-tuning candidate.
const (
	ReasonRemotePlan = "remote_plan" // the remote planned what the local planner could not
	ReasonCapReached = "cap_reached" // the remote was out of budget; kept for later labelling
)

// Finetune keeps planning requests that went (or would have gone) remote, so
// a local planner can be fine-tuned on them. Everything stored is redacted.
type Finetune struct {
	store *db.Store
}

// NewFinetune builds the candidate store.
func NewFinetune(store *db.Store) *Finetune { return &Finetune{store: store} }

// Add stores a candidate; its texts must already be redacted.
func (f *Finetune) Add(ctx context.Context, c db.FinetuneCandidate) error {
	_, err := f.store.InsertFinetune(context.WithoutCancel(ctx), &c)
	return err
}

type finetuneLine struct {
	Messages []chatMessage `json:"messages"`
}

// Export writes one JSON line per candidate that has a remote plan, in the
// chat format fine-tuning tools take: {"messages": [system, user,
// assistant]}, the assistant turn being the plan. Candidates without a plan
// (refused at a cap) are kept in the store for labelling, not exported.
func (f *Finetune) Export(ctx context.Context, w io.Writer) (int, error) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	n := 0
	err := f.store.EachFinetune(ctx, func(c db.FinetuneCandidate) error {
		if c.RemotePlan == "" {
			return nil
		}
		var line finetuneLine
		if c.SystemPrompt != "" {
			line.Messages = append(line.Messages, chatMessage{Role: "system", Content: c.SystemPrompt})
		}
		line.Messages = append(line.Messages, chatMessage{Role: "user", Content: c.Request},
			chatMessage{Role: "assistant", Content: c.RemotePlan})
		n++
		return enc.Encode(line)
	})
	return n, err
}
