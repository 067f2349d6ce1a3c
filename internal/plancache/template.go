// Package plancache is agentd's plan cache: it learns parameterised plan
// templates from the runs that ended done, and plans a later request of the
// same kind from one of them with no planner call.
//
// A template is learned from a request and the plan that served it: every
// value of the plan that came from the request (a tool argument, or an
// entity inside a task's text) becomes a parameter, and the request's
// wording with those values cut out becomes a phrasing the template
// answers to. A new request matches a phrasing when its words are the
// phrasing's words, in order, and every value it puts in a parameter's
// place has the shape that parameter had (a number, a code, capitalised
// words, about as many words). Matching and extraction are deterministic
// and make no model call; a request that is worded differently or carries
// one more qualifier goes to the planner, and if that run ends done it
// teaches the template its wording too.
//
// Nothing is learned from a sensitive run, from a run of a configured
// workflow, or from a run that needed a replan. A template whose runs fail
// is demoted (its answer pattern is dropped), then retired.
package plancache

import (
	"time"

	"github.com/agentd/agentd/internal/config"
)

// State is where a template stands.
type State string

// States.
const (
	// Active templates plan matching requests.
	Active State = "active"
	// Pending templates wait for a person's approval (planner.cache.use =
	// "approved").
	Pending State = "pending"
	// Demoted templates failed once: they still plan, but write no answer
	// from their pattern until a run of theirs succeeds again.
	Demoted State = "demoted"
	// Retired templates failed retire_after times in a row; a person may
	// approve them again.
	Retired State = "retired"
	// Disabled templates were turned off by a person.
	Disabled State = "disabled"
)

// Usable reports whether a template in state s may plan a request.
func (s State) Usable() bool { return s == Active || s == Demoted }

// Kind is a parameter's value class.
type Kind string

// Parameter kinds.
const (
	KindNumber  Kind = "number"  // 42, 2,340, 17.5
	KindCode    Kind = "code"    // W-100, ORD-2231, 2026-11-30: letters and digits
	KindProper  Kind = "proper"  // Austin, TX; San Antonio: capitalised words
	KindWord    Kind = "word"    // east, celsius: lower-case words
	KindLiteral Kind = "literal" // anything else (quoted text)
)

// Param is one parameter: where the request's value goes.
type Param struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// MinWords and MaxWords are the word counts of the values seen; a new
	// value may have up to one word more than the most seen.
	MinWords int `json:"min_words"`
	MaxWords int `json:"max_words"`
	// Example is a value it took (never from a sensitive run: those teach
	// nothing).
	Example string `json:"example"`
}

// Example is one request a template was learned from or served.
type Example struct {
	RunID   string         `json:"run_id"`
	Request string         `json:"request"`
	Params  map[string]any `json:"params,omitempty"`
	At      time.Time      `json:"at"`
}

// Template is one learned plan template.
type Template struct {
	ID   string `json:"id"`
	Key  string `json:"key"`
	Name string `json:"name"`
	// Workflow is the template as a config workflow: parameters schema,
	// steps with {{param}} placeholders, answer instruction and, once
	// confirmed, answer pattern. `agentd export workflows` writes it out.
	Workflow config.WorkflowConfig `json:"workflow"`
	Params   []Param               `json:"params"`
	// Phrasings are the wordings it answers to: request texts with each
	// parameter's value replaced by {{name}}.
	Phrasings []string `json:"phrasings"`
	// PatternCandidate is an answer pattern read from one run's answer,
	// waiting for a second run with other values to write the same one.
	PatternCandidate string `json:"pattern_candidate,omitempty"`
	// PatternFrom are the values of the run the candidate was read from:
	// the run that confirms it must have had other values.
	PatternFrom map[string]any `json:"pattern_from,omitempty"`
	State       State          `json:"state"`
	Pinned      bool           `json:"pinned"`
	// ApprovedBy is who approved it ("" until someone does).
	ApprovedBy string `json:"approved_by,omitempty"`
	// Source is the planner whose plan it was first learned from: local or
	// remote.
	Source string `json:"source"`
	// Learned counts the planner-made runs it was learned from; Uses the
	// runs it planned, of which Successes ended done and Failures did not.
	Learned    int       `json:"learned"`
	Uses       int       `json:"uses"`
	Successes  int       `json:"successes"`
	Failures   int       `json:"failures"`
	FailStreak int       `json:"fail_streak"`
	LastError  string    `json:"last_error,omitempty"`
	Examples   []Example `json:"examples"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// SuccessRate is the share of its runs that ended done, counting the runs
// it was learned from; 0 when it has none.
func (t *Template) SuccessRate() float64 {
	n := t.Learned + t.Uses
	if n == 0 {
		return 0
	}
	return float64(t.Learned+t.Successes) / float64(n)
}

// maxExamples bounds the examples a template keeps.
const maxExamples = 5

func (t *Template) addExample(e Example) {
	t.Examples = append(t.Examples, e)
	if len(t.Examples) > maxExamples {
		t.Examples = t.Examples[len(t.Examples)-maxExamples:]
	}
}

// clone is a deep enough copy for callers outside the cache's lock.
func (t *Template) clone() *Template {
	c := *t
	c.Params = append([]Param(nil), t.Params...)
	c.Phrasings = append([]string(nil), t.Phrasings...)
	c.Examples = append([]Example(nil), t.Examples...)
	c.Workflow.Steps = append([]config.WorkflowStep(nil), t.Workflow.Steps...)
	c.Workflow.Keywords = append([]string(nil), t.Workflow.Keywords...)
	return &c
}
