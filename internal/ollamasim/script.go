package ollamasim

import (
	"regexp"
	"strings"
	"sync"

	"github.com/ollama/ollama/api"
)

// Script decides the model's reply for a request before the default
// generator does. Respond returns ok=false to fall back to the default
// behaviour. /api/generate requests are presented as a ChatRequest with the
// system prompt and the prompt as messages. Implementations must be safe
// for concurrent use.
type Script interface {
	Respond(req *api.ChatRequest) (Reply, bool)
}

// Reply is a scripted model output. Either Content or ToolCalls (or both,
// as some models do) may be set; token counts and durations are derived
// from it like for generated output.
type Reply struct {
	Content   string
	Thinking  string
	ToolCalls []ToolCallReply
	// DoneReason overrides "stop"; set "length" to simulate truncation.
	DoneReason string
	// RepeatAbort makes the model loop on the last token of Content (a
	// newline if there is none) until the server gives up, as Ollama's
	// runner does after the same token 31 times in a row: the stream ends
	// with no final chunk (no done, done_reason or metrics) and a clean
	// close, and a non-streamed reply is HTTP 200 with "done": false.
	RepeatAbort bool
}

// ToolCallReply names a tool and its arguments. A nil Arguments map makes
// the simulator generate arguments from the offered tool's schema.
type ToolCallReply struct {
	Name      string
	Arguments map[string]any
}

// Presence is a three-way filter on a request feature.
type Presence int

// Presence values: AnyPresence ignores the feature.
const (
	AnyPresence Presence = iota
	Present
	Absent
)

func (p Presence) matches(has bool) bool {
	switch p {
	case Present:
		return has
	case Absent:
		return !has
	}
	return true
}

// Rule matches requests and replays Replies in order: the first matching
// request gets Replies[0], the next Replies[1], and the last reply repeats
// once the sequence is exhausted. With ByHistory, the index is instead the
// number of assistant messages already in the conversation, so a multi-turn
// agent loop sees turn 1, turn 2, ... regardless of other traffic.
type Rule struct {
	Model     string         // exact model name (tag optional); empty matches any
	Contains  string         // substring of the last user or system message
	Match     *regexp.Regexp // regexp on the same text
	Format    Presence       // whether `format` must be set
	Tools     Presence       // whether `tools` must be offered
	Replies   []Reply
	ByHistory bool
}

func (r *Rule) matches(req *api.ChatRequest) bool {
	if r.Model != "" && normalizeName(r.Model) != normalizeName(req.Model) {
		return false
	}
	if !r.Format.matches(hasFormat(req.Format)) || !r.Tools.matches(len(req.Tools) > 0) {
		return false
	}
	if r.Contains == "" && r.Match == nil {
		return true
	}
	for _, text := range matchTexts(req.Messages) {
		if r.Contains != "" && !strings.Contains(text, r.Contains) {
			continue
		}
		if r.Match != nil && !r.Match.MatchString(text) {
			continue
		}
		return true
	}
	return false
}

// matchTexts returns the last user message and the last system message.
func matchTexts(msgs []api.Message) []string {
	var user, system string
	var haveUser, haveSystem bool
	for i := len(msgs) - 1; i >= 0 && !(haveUser && haveSystem); i-- {
		switch msgs[i].Role {
		case "user":
			if !haveUser {
				user, haveUser = msgs[i].Content, true
			}
		case "system":
			if !haveSystem {
				system, haveSystem = msgs[i].Content, true
			}
		}
	}
	var out []string
	if haveUser {
		out = append(out, user)
	}
	if haveSystem {
		out = append(out, system)
	}
	return out
}

// Rules is a ready-made Script: the first matching rule answers. It is
// safe for concurrent use; Add may be called while serving.
type Rules struct {
	mu    sync.Mutex
	rules []*Rule
	turns []int
}

var _ Script = (*Rules)(nil)

// NewRules returns a Script over the given rules, tried in order.
func NewRules(rules ...Rule) *Rules {
	rs := &Rules{}
	for _, r := range rules {
		rs.Add(r)
	}
	return rs
}

// Add appends a rule (tried after the existing ones).
func (rs *Rules) Add(r Rule) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rule := r
	rs.rules = append(rs.rules, &rule)
	rs.turns = append(rs.turns, 0)
}

// Respond implements Script.
func (rs *Rules) Respond(req *api.ChatRequest) (Reply, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for i, r := range rs.rules {
		if len(r.Replies) == 0 || !r.matches(req) {
			continue
		}
		idx := rs.turns[i]
		if r.ByHistory {
			idx = 0
			for _, m := range req.Messages {
				if m.Role == "assistant" {
					idx++
				}
			}
		} else {
			rs.turns[i]++
		}
		return r.Replies[min(idx, len(r.Replies)-1)], true
	}
	return Reply{}, false
}

// hasFormat reports whether a request's format field asks for JSON.
func hasFormat(f []byte) bool {
	s := strings.TrimSpace(string(f))
	return s != "" && s != "null" && s != `""`
}
