package planning

import (
	"context"
	"strings"
	"sync"

	"github.com/agentd/agentd/internal/fallback"
	"github.com/agentd/agentd/internal/localplanner"
)

// remoteModel is the remote planner as a localplanner.ChatModel, so that a
// remote plan goes through the same parse, validate and repair loop as a
// local one (localplanner.Planner). Every call goes through the fallback
// gate: redaction, caps by reservation, link, egress ledger. The gate takes
// one system prompt and one user message, so a repair turn (the previous
// reply and its problems) is sent as part of the user message.
type remoteModel struct {
	gate      *fallback.Gate
	runID     string
	purpose   string
	sensitive bool
	localErrs []string

	mu    sync.Mutex
	calls int
	usage fallback.PlanUsage // summed over the calls
}

var _ localplanner.ChatModel = (*remoteModel)(nil)

func (m *remoteModel) Chat(ctx context.Context, req localplanner.ChatRequest) (localplanner.ChatResponse, error) {
	pr := fallback.PlanRequest{RunID: m.runID, Purpose: m.purpose, Schema: req.Format, Sensitive: m.sensitive}
	var user []string
	for i, msg := range req.Messages {
		switch {
		case msg.Role == localplanner.RoleSystem && i == 0:
			pr.SystemPrompt = msg.Content
		case msg.Role == localplanner.RoleAssistant:
			user = append(user, "Your previous reply:\n"+msg.Content)
		default:
			user = append(user, msg.Content)
		}
	}
	pr.UserRequest = strings.Join(user, "\n\n")
	m.mu.Lock()
	if m.calls == 0 {
		pr.LocalErrors = m.localErrs
	}
	m.calls++
	m.mu.Unlock()
	raw, u, err := m.gate.PlanRemote(ctx, pr)
	m.mu.Lock()
	m.usage.Provider, m.usage.Model = u.Provider, u.Model
	m.usage.InputTokens += u.InputTokens
	m.usage.OutputTokens += u.OutputTokens
	m.usage.CostUSD += u.CostUSD
	m.usage.BytesOut += u.BytesOut
	m.usage.BytesIn += u.BytesIn
	m.mu.Unlock()
	if err != nil {
		return localplanner.ChatResponse{}, err
	}
	return localplanner.ChatResponse{Content: string(raw), DoneReason: "stop", PromptTokens: u.InputTokens, OutputTokens: u.OutputTokens}, nil
}

func (m *remoteModel) spent() fallback.PlanUsage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.usage
}
