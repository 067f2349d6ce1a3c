package plancache

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/localplanner"
)

// List returns every template, most useful first (successes, then the
// newest).
func (c *Cache) List() []*Template {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Template, 0, len(c.entries))
	for _, e := range c.entries {
		out = append(out, e.t.clone())
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Learned+a.Successes != b.Learned+b.Successes {
			return a.Learned+a.Successes > b.Learned+b.Successes
		}
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.After(b.CreatedAt)
		}
		return a.ID < b.ID
	})
	return out
}

// Get returns one template.
func (c *Cache) Get(id string) (*Template, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok {
		return nil, fmt.Errorf("template %s: %w", id, ErrNotFound)
	}
	return e.t.clone(), nil
}

// update applies fn to a template under the lock and stores it.
func (c *Cache) update(ctx context.Context, id string, fn func(t *Template) error) (*Template, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok {
		return nil, fmt.Errorf("template %s: %w", id, ErrNotFound)
	}
	before := *e.t
	if err := fn(e.t); err != nil {
		*e.t = before
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := e.compile(); err != nil {
		*e.t = before
		_ = e.compile()
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	e.t.UpdatedAt = c.now().UTC()
	if err := c.save(ctx, e.t); err != nil {
		return nil, err
	}
	return e.t.clone(), nil
}

// Approve lets a template plan requests (pending, retired or disabled
// ones too) and clears its failure streak; by is who approved it.
func (c *Cache) Approve(ctx context.Context, id, by string) (*Template, error) {
	return c.update(ctx, id, func(t *Template) error {
		t.State, t.FailStreak, t.ApprovedBy = Active, 0, by
		return nil
	})
}

// Disable stops a template from planning until it is approved again.
func (c *Cache) Disable(ctx context.Context, id string) (*Template, error) {
	return c.update(ctx, id, func(t *Template) error {
		t.State = Disabled
		return nil
	})
}

// Pin keeps a template from being retired or evicted (pinned true), or
// lets it be again.
func (c *Cache) Pin(ctx context.Context, id string, pinned bool) (*Template, error) {
	return c.update(ctx, id, func(t *Template) error {
		t.Pinned = pinned
		return nil
	})
}

// Delete forgets a template; the next request of its kind is planned
// (and may teach it again).
func (c *Cache) Delete(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok {
		return fmt.Errorf("template %s: %w", id, ErrNotFound)
	}
	if err := c.store.DeletePlanTemplate(ctx, id); err != nil {
		return err
	}
	delete(c.entries, id)
	delete(c.byKey, e.t.Key)
	return nil
}

// Edit is what a person may change in a template; nil fields stay.
type Edit struct {
	Name          *string               `json:"name,omitempty"`
	Phrasings     []string              `json:"phrasings,omitempty"`
	Answer        *string               `json:"answer,omitempty"`
	AnswerPattern *string               `json:"answer_pattern,omitempty"`
	Steps         []config.WorkflowStep `json:"steps,omitempty"`
}

// Update applies an edit. The result must still be a valid workflow (every
// placeholder a parameter) and every phrasing must use only parameters;
// the plan is validated against the tools each time it is used.
func (c *Cache) Update(ctx context.Context, id string, ed Edit) (*Template, error) {
	return c.update(ctx, id, func(t *Template) error {
		if ed.Name != nil {
			name := strings.TrimSpace(*ed.Name)
			if name == "" {
				return fmt.Errorf("name must not be empty")
			}
			t.Name, t.Workflow.Name = name, name
		}
		if ed.Phrasings != nil {
			var keep []string
			for _, p := range ed.Phrasings {
				if p = strings.TrimSpace(p); p != "" {
					keep = append(keep, p)
				}
			}
			if len(keep) == 0 {
				return fmt.Errorf("phrasings must keep at least one wording (disable the template to stop it)")
			}
			for _, p := range keep {
				if literalWords(p) < minLiteralWords {
					return fmt.Errorf("phrasing %q has fewer than %d words besides its parameters: it would match too much", p, minLiteralWords)
				}
			}
			t.Phrasings = keep
		}
		if ed.Answer != nil {
			t.Workflow.Answer = *ed.Answer
		}
		if ed.AnswerPattern != nil {
			t.Workflow.AnswerPattern = *ed.AnswerPattern
			t.PatternCandidate = ""
		}
		if ed.Steps != nil {
			if len(ed.Steps) == 0 {
				return fmt.Errorf("steps must not be empty")
			}
			t.Workflow.Steps = ed.Steps
		}
		// The edited template must compile as a workflow.
		if _, err := localplanner.NewTemplates([]config.WorkflowConfig{t.Workflow}, nil, nil, config.PlannerConfig{}, config.ModelsConfig{}, nil); err != nil {
			return err
		}
		// An edited template is the editor's: where templates need
		// approval, it waits for one again.
		t.ApprovedBy = ""
		if c.cfg.Use == "approved" && t.State.Usable() {
			t.State = Pending
		}
		return nil
	})
}

// Workflows returns the usable templates as config workflows, for
// `agentd export workflows`: pasted under [[workflows]], each plans its
// requests with no learning needed (keywords then match, and the router
// model extracts the parameters).
func (c *Cache) Workflows(ids ...string) ([]config.WorkflowConfig, error) {
	var out []config.WorkflowConfig
	for _, t := range c.List() {
		if len(ids) > 0 && !slices.Contains(ids, t.ID) {
			continue
		}
		if len(ids) == 0 && !t.State.Usable() {
			continue
		}
		wf := t.Workflow
		wf.Name = t.Name
		out = append(out, wf)
	}
	for _, id := range ids {
		if _, err := c.Get(id); err != nil {
			return nil, err
		}
	}
	return out, nil
}
