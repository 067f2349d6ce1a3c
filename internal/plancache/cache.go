package plancache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/localplanner"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

// Errors of the operator's actions.
var (
	// ErrNotFound: no template with that id.
	ErrNotFound = errors.New("no such template")
	// ErrInvalid: an edit that would break the template; nothing changed.
	ErrInvalid = errors.New("invalid template edit")
)

// Store keeps templates; db.Store implements it.
type Store interface {
	PlanTemplates(ctx context.Context) ([]db.PlanTemplate, error)
	PutPlanTemplate(ctx context.Context, t db.PlanTemplate) error
	DeletePlanTemplate(ctx context.Context, id string) error
}

// Cache holds the learned templates in memory, writing every change
// through to the store.
type Cache struct {
	cfg   config.PlanCacheConfig
	store Store
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	entries map[string]*entry // by id
	byKey   map[string]string // key -> id
}

type entry struct {
	t        *Template
	matchers []*matcher
}

// Open loads the stored templates. A template that no longer compiles (an
// edit from an older version) is kept, disabled, with the reason.
func Open(ctx context.Context, cfg config.PlanCacheConfig, store Store, log *slog.Logger) (*Cache, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{cfg: cfg, store: store, log: log.With("component", "plancache"), now: time.Now,
		entries: map[string]*entry{}, byKey: map[string]string{}}
	rows, err := store.PlanTemplates(ctx)
	if err != nil {
		return nil, err
	}
	for _, row := range rows {
		var t Template
		if err := json.Unmarshal(row.Data, &t); err != nil {
			c.log.Warn("stored plan template unreadable; skipped", "id", row.ID, "err", err)
			continue
		}
		e := &entry{t: &t}
		if err := e.compile(); err != nil {
			t.State, t.LastError = Disabled, err.Error()
		}
		c.entries[t.ID], c.byKey[t.Key] = e, t.ID
	}
	return c, nil
}

func (e *entry) compile() error {
	params := map[string]Param{}
	for _, p := range e.t.Params {
		params[p.Name] = p
	}
	e.matchers = e.matchers[:0]
	for _, ph := range e.t.Phrasings {
		m, err := compilePhrasing(ph, params)
		if err != nil {
			return err
		}
		e.matchers = append(e.matchers, m)
	}
	return nil
}

// Hit is a request matched to a template: the plan filled with the
// request's values, ready for validation.
type Hit struct {
	Template *Template
	Phrasing string
	Params   map[string]any
	Written  map[string]string // the values as the request wrote them
	Plan     *plan.Plan
}

// Use is what a run records of the template that planned it.
func (h *Hit) Use() *run.TemplateUse {
	return &run.TemplateUse{ID: h.Template.ID, Name: h.Template.Name, Params: h.Params, Written: h.Written,
		Phrasing: h.Phrasing, Learned: true, AnswerPattern: h.Plan.AnswerPattern != ""}
}

// Lookup finds the template whose wording the request has, with its
// values in their parameters' shapes, and fills its plan. When two
// templates match, the one whose phrasing has more words of its own
// wins; a tie is no match (the planner decides). Only usable templates
// take part.
func (c *Cache) Lookup(request string) (*Hit, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	type found struct {
		e      *entry
		m      *matcher
		values map[string]string
	}
	var best []found
	for _, e := range c.sorted() {
		if !e.t.State.Usable() {
			continue
		}
		params := paramMap(e.t.Params)
		for _, m := range e.matchers {
			values, ok := m.extract(request, params)
			if !ok {
				continue
			}
			switch {
			case len(best) == 0 || m.literals > best[0].m.literals:
				best = []found{{e, m, values}}
			case m.literals == best[0].m.literals && best[0].e != e:
				best = append(best, found{e, m, values})
			}
			break
		}
	}
	if len(best) != 1 {
		if len(best) > 1 {
			c.log.Info("request matches more than one learned template equally; planning it", "templates", len(best))
		}
		return nil, false
	}
	f := best[0]
	params := map[string]any{}
	for _, p := range f.e.t.Params {
		params[p.Name] = typed(f.values[p.Name], f.e.t.Workflow.Params, p.Name)
	}
	pl, err := localplanner.Instantiate(f.e.t.Workflow, params, request)
	if err != nil {
		c.log.Warn("learned template did not fill", "template", f.e.t.ID, "err", err)
		return nil, false
	}
	return &Hit{Template: f.e.t.clone(), Phrasing: f.m.phrasing, Params: params, Written: f.values, Plan: pl}, true
}

// typed converts a value as written to the parameter's schema type.
func typed(v string, schema map[string]any, name string) any {
	props, _ := schema["properties"].(map[string]any)
	p, _ := props[name].(map[string]any)
	if p["type"] == "number" {
		if f, ok := parseNumber(v); ok {
			return f
		}
	}
	return v
}

func paramMap(ps []Param) map[string]Param {
	m := make(map[string]Param, len(ps))
	for _, p := range ps {
		m[p.Name] = p
	}
	return m
}

// sorted lists entries active first, then by successes, then by id, so
// that matching is deterministic.
func (c *Cache) sorted() []*entry {
	out := slices.Collect(maps.Values(c.entries))
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].t, out[j].t
		if (a.State == Active) != (b.State == Active) {
			return a.State == Active
		}
		if a.Successes+a.Learned != b.Successes+b.Learned {
			return a.Successes+a.Learned > b.Successes+b.Learned
		}
		return a.ID < b.ID
	})
	return out
}

// Outcome is how a run ended, for the cache to learn from or to score a
// template by.
type Outcome struct {
	RunID     string
	Request   string
	Status    run.Status
	Error     string
	Sensitive bool
	// Workflow is a configured workflow the run was planned from: such
	// runs teach nothing (the operator wrote their template).
	Workflow string
	// Plan is the plan the run ended on, PlanVersion its version (a
	// replanned run teaches nothing) and PlanSource who made it.
	Plan        *plan.Plan
	PlanVersion int
	PlanSource  string
	// Template is the learned template that planned the run, if one did.
	Template *run.TemplateUse
	Answer   string
	// ToolOutputs are the results of the tool steps that ended done.
	ToolOutputs map[string]string
}

// Ended learns from a run that ended done on a plan a planner made, and
// scores the template that planned a run. Errors are logged: the run has
// ended whatever the cache makes of it.
func (c *Cache) Ended(ctx context.Context, o Outcome) {
	if o.Status == run.Canceled {
		return // a person stopped it: it says nothing of the plan
	}
	if o.Template != nil && o.Template.Learned {
		c.score(ctx, o)
		return
	}
	if !c.cfg.Enabled || o.Status != run.Done || o.Plan == nil {
		return
	}
	switch {
	case o.Sensitive:
		c.log.Debug("not learning from a sensitive run", "run", o.RunID)
		return
	case o.Workflow != "" || o.Template != nil:
		return
	case o.PlanVersion != 1:
		c.log.Debug("not learning from a replanned run", "run", o.RunID)
		return
	case o.PlanSource != "local" && o.PlanSource != "remote":
		return
	}
	if err := c.learn(ctx, o); err != nil {
		c.log.Info("run teaches no template", "run", o.RunID, "why", err)
	}
}

func (c *Cache) learn(ctx context.Context, o Outcome) error {
	d, err := derive(o.Request, o.Plan)
	if err != nil {
		return err
	}
	pattern := answerPattern(o.Answer, d.written, o.ToolOutputs, len(o.Plan.Steps))
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now().UTC()
	ex := Example{RunID: o.RunID, Request: o.Request, Params: d.values, At: now}
	if id, ok := c.byKey[d.key]; ok {
		e := c.entries[id]
		t := e.t
		t.Learned++
		t.UpdatedAt = now
		mergeParams(t, d.params)
		if !slices.Contains(t.Phrasings, d.phrasing) {
			t.Phrasings = append(t.Phrasings, d.phrasing)
		}
		c.confirmPattern(t, pattern, d.values)
		t.addExample(ex)
		if err := e.compile(); err != nil {
			return err
		}
		c.log.Info("plan template learned again", "template", t.ID, "run", o.RunID, "phrasings", len(t.Phrasings))
		return c.save(ctx, t)
	}
	t := &Template{ID: "tpl-" + d.key[:12], Key: d.key, Workflow: d.wf, Params: d.params, Phrasings: []string{d.phrasing},
		PatternCandidate: pattern, Source: o.PlanSource, Learned: 1, CreatedAt: now, UpdatedAt: now}
	t.Name = templateName(d.wf)
	t.Workflow.Name = t.Name
	t.Workflow.Description = "Learned from: " + describe(d.phrasing)
	t.Workflow.Keywords = keywords(d.phrasing)
	t.State = Active
	if c.cfg.Use == "approved" {
		t.State = Pending
	}
	t.addExample(ex)
	t.PatternFrom = d.values
	e := &entry{t: t}
	if err := e.compile(); err != nil {
		return err
	}
	c.entries[t.ID], c.byKey[t.Key] = e, t.ID
	c.evict(ctx)
	c.log.Info("plan template learned", "template", t.ID, "name", t.Name, "run", o.RunID, "params", len(t.Params), "state", t.State)
	return c.save(ctx, t)
}

// confirmPattern keeps the answer pattern once two runs with different
// values read the same one out of their answers.
func (c *Cache) confirmPattern(t *Template, pattern string, values map[string]any) {
	if t.Workflow.AnswerPattern != "" || pattern == "" {
		return
	}
	if pattern == t.PatternCandidate && !sameValues(values, t.PatternFrom) {
		t.Workflow.AnswerPattern = pattern
		t.PatternCandidate = ""
		c.log.Info("answer pattern confirmed: runs of this template need no summarizer call", "template", t.ID)
		return
	}
	t.PatternCandidate, t.PatternFrom = pattern, values
}

func sameValues(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if fmt.Sprint(b[k]) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

// mergeParams widens each parameter's word counts by what a new run saw.
func mergeParams(t *Template, seen []Param) {
	for i := range t.Params {
		for _, s := range seen {
			if s.Name == t.Params[i].Name {
				t.Params[i].MinWords = min(t.Params[i].MinWords, s.MinWords)
				t.Params[i].MaxWords = max(t.Params[i].MaxWords, s.MaxWords)
			}
		}
	}
}

// score counts a run a template planned: done is a success and restores
// a demoted template; any other end is a failure, which demotes it (its
// answer pattern is dropped) and, retire_after failures in a row,
// retires it, unless a person pinned it.
func (c *Cache) score(ctx context.Context, o Outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[o.Template.ID]
	if !ok {
		return
	}
	t := e.t
	now := c.now().UTC()
	t.Uses++
	t.LastUsedAt, t.UpdatedAt = now, now
	if o.Status == run.Done {
		t.Successes++
		t.FailStreak = 0
		if t.State == Demoted {
			t.State = Active
		}
		if !o.Sensitive {
			// A sensitive run's request and values stay in its own record.
			t.addExample(Example{RunID: o.RunID, Request: o.Request, Params: o.Template.Params, At: now})
		}
		if !o.Template.AnswerPattern && !o.Sensitive {
			written := map[string]string{}
			for k, v := range o.Template.Params {
				written[k] = fmt.Sprint(v)
				if w, ok := o.Template.Written[k]; ok {
					written[k] = w
				}
			}
			c.confirmPattern(t, answerPattern(o.Answer, written, o.ToolOutputs, len(t.Workflow.Steps)), o.Template.Params)
		}
	} else {
		why := fmt.Sprintf("run %s ended %s: %s", o.RunID, o.Status, o.Error)
		if o.Sensitive {
			why = fmt.Sprintf("run %s ended %s (sensitive: see the run)", o.RunID, o.Status)
		}
		c.failLocked(t, why)
	}
	if err := c.save(ctx, t); err != nil {
		c.log.Error("store plan template", "template", t.ID, "err", err)
	}
}

func (c *Cache) failLocked(t *Template, why string) {
	t.Failures++
	t.FailStreak++
	t.LastError = why
	t.Workflow.AnswerPattern, t.PatternCandidate = "", ""
	switch {
	case t.Pinned:
	case t.FailStreak >= max(c.cfg.RetireAfter, 1):
		t.State = Retired
		c.log.Warn("plan template retired after failing in a row", "template", t.ID, "failures", t.FailStreak, "last", why)
	default:
		t.State = Demoted
		c.log.Info("plan template demoted", "template", t.ID, "why", why)
	}
}

// Rejected counts a filled plan that did not validate as a failure of
// its template.
func (c *Cache) Rejected(ctx context.Context, id, why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok {
		return
	}
	e.t.UpdatedAt = c.now().UTC()
	c.failLocked(e.t, "filled plan did not validate: "+why)
	if err := c.save(ctx, e.t); err != nil {
		c.log.Error("store plan template", "template", id, "err", err)
	}
}

// evict drops the least recently useful unpinned templates beyond
// max_templates.
func (c *Cache) evict(ctx context.Context) {
	limit := c.cfg.MaxTemplates
	if limit <= 0 || len(c.entries) <= limit {
		return
	}
	var cands []*Template
	for _, e := range c.entries {
		if !e.t.Pinned {
			cands = append(cands, e.t)
		}
	}
	last := func(t *Template) time.Time {
		if t.LastUsedAt.After(t.UpdatedAt) {
			return t.LastUsedAt
		}
		return t.UpdatedAt
	}
	sort.Slice(cands, func(i, j int) bool { return last(cands[i]).Before(last(cands[j])) })
	for _, t := range cands {
		if len(c.entries) <= limit {
			break
		}
		delete(c.entries, t.ID)
		delete(c.byKey, t.Key)
		if err := c.store.DeletePlanTemplate(ctx, t.ID); err != nil {
			c.log.Error("evict plan template", "template", t.ID, "err", err)
		}
	}
}

func (c *Cache) save(ctx context.Context, t *Template) error {
	data, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return c.store.PutPlanTemplate(ctx, db.PlanTemplate{ID: t.ID, Key: t.Key, State: string(t.State), Data: data,
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt})
}

var nameCleanRe = regexp.MustCompile(`[^a-z0-9]+`)

// templateName names a template after its tools (or its first task's
// words): "learned_get_stock", "learned_get_climate_get_population".
func templateName(wf config.WorkflowConfig) string {
	var parts []string
	for _, s := range wf.Steps {
		name := s.Tool
		if name == "" {
			words := strings.Fields(placeholderRe.ReplaceAllString(strings.ToLower(s.Task), " "))
			name = strings.Join(words[:min(2, len(words))], "_")
		}
		name = strings.Trim(nameCleanRe.ReplaceAllString(strings.ToLower(name), "_"), "_")
		if name != "" && !slices.Contains(parts, name) {
			parts = append(parts, name)
		}
		if len(parts) == 3 {
			break
		}
	}
	if len(parts) == 0 {
		parts = []string{"plan"}
	}
	return "learned_" + strings.Join(parts, "_")
}

// describe shows a phrasing with its parameters as <name>.
func describe(phrasing string) string {
	return placeholderRe.ReplaceAllString(phrasing, "<$1>")
}

// keywords are a phrasing's own content words, for an exported workflow.
func keywords(phrasing string) []string {
	var out []string
	for _, w := range strings.Fields(strings.ToLower(placeholderRe.ReplaceAllString(phrasing, " "))) {
		w = strings.Trim(w, ".,;:!?\"'()")
		if len(w) > 2 && !localplanner.IsStopWord(w) && !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}
