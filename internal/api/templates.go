package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/plancache"
)

// TemplateAdmin is the plan cache as an operator sees it: the learned plan
// templates, and the acts that keep a person in charge of them (approve,
// disable, pin, edit, delete, export as configured workflows).
// *plancache.Cache implements it. Errors for an unknown id wrap
// plancache.ErrNotFound; Update's other errors are a bad edit.
type TemplateAdmin interface {
	List() []*plancache.Template
	Get(id string) (*plancache.Template, error)
	Approve(ctx context.Context, id, by string) (*plancache.Template, error)
	Disable(ctx context.Context, id string) (*plancache.Template, error)
	Pin(ctx context.Context, id string, pinned bool) (*plancache.Template, error)
	Delete(ctx context.Context, id string) error
	Update(ctx context.Context, id string, ed plancache.Edit) (*plancache.Template, error)
	Workflows(ids ...string) ([]config.WorkflowConfig, error)
}

var _ TemplateAdmin = (*plancache.Cache)(nil)

// TemplateView is a template as the API shows it: the stored template and
// its success rate, which clients would otherwise compute again each in
// their own way.
type TemplateView struct {
	*plancache.Template
	SuccessRate float64 `json:"success_rate"`
}

func viewOf(t *plancache.Template) TemplateView {
	return TemplateView{Template: t, SuccessRate: t.SuccessRate()}
}

// cacheDisabled is the reason every template endpoint gives when the
// daemon runs without a plan cache.
const cacheDisabled = "the plan cache is disabled: set enabled = true under [planner.cache] in the config and restart agentd to learn plan templates"

// registerTemplates adds the /api/v1/templates endpoints.
func (rt *routes) registerTemplates() {
	// A daemon that runs without a cache may hand over a nil
	// *plancache.Cache: that is the cache being off, not one to call.
	if c, ok := rt.d.Templates.(*plancache.Cache); ok && c == nil {
		rt.d.Templates = nil
	}
	rt.s.Handle("GET /api/v1/templates", http.HandlerFunc(rt.listTemplates))
	rt.s.Handle("GET /api/v1/templates/export", http.HandlerFunc(rt.exportTemplates))
	rt.s.Handle("GET /api/v1/templates/{id}", http.HandlerFunc(rt.getTemplate))
	rt.s.Handle("PATCH /api/v1/templates/{id}", http.HandlerFunc(rt.editTemplate))
	rt.s.Handle("DELETE /api/v1/templates/{id}", http.HandlerFunc(rt.deleteTemplate))
	rt.s.Handle("POST /api/v1/templates/{id}/approve", rt.templateAct("approve", func(ctx context.Context, a TemplateAdmin, id, by string) (*plancache.Template, error) {
		return a.Approve(ctx, id, by)
	}))
	rt.s.Handle("POST /api/v1/templates/{id}/disable", rt.templateAct("disable", func(ctx context.Context, a TemplateAdmin, id, _ string) (*plancache.Template, error) {
		return a.Disable(ctx, id)
	}))
	rt.s.Handle("POST /api/v1/templates/{id}/pin", rt.templateAct("pin", func(ctx context.Context, a TemplateAdmin, id, _ string) (*plancache.Template, error) {
		return a.Pin(ctx, id, true)
	}))
	rt.s.Handle("POST /api/v1/templates/{id}/unpin", rt.templateAct("unpin", func(ctx context.Context, a TemplateAdmin, id, _ string) (*plancache.Template, error) {
		return a.Pin(ctx, id, false)
	}))
}

// templates answers 404 with the reason when the plan cache is off.
func (rt *routes) templates(w http.ResponseWriter) (TemplateAdmin, bool) {
	if rt.d.Templates == nil {
		WriteError(w, http.StatusNotFound, "not_configured", cacheDisabled)
		return nil, false
	}
	return rt.d.Templates, true
}

// templateError answers an error of the cache: an unknown id is a 404 that
// says where to find the ids; anything else goes the engine's way.
func (rt *routes) templateError(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, plancache.ErrNotFound) {
		WriteError(w, http.StatusNotFound, "not_found", what+": "+err.Error()+" — list the learned templates with GET /api/v1/templates (`agentd templates`)")
		return
	}
	rt.engineError(w, r, what, err)
}

func (rt *routes) listTemplates(w http.ResponseWriter, r *http.Request) {
	admin, ok := rt.templates(w)
	if !ok {
		return
	}
	list := admin.List()
	views := make([]TemplateView, 0, len(list))
	for _, t := range list {
		views = append(views, viewOf(t))
	}
	WriteJSON(w, http.StatusOK, map[string]any{"templates": views})
}

func (rt *routes) getTemplate(w http.ResponseWriter, r *http.Request) {
	admin, ok := rt.templates(w)
	if !ok {
		return
	}
	id := r.PathValue("id")
	t, err := admin.Get(id)
	if err != nil {
		rt.templateError(w, r, "template "+id, err)
		return
	}
	WriteJSON(w, http.StatusOK, viewOf(t))
}

// templateAct is a POST that changes one template's standing and answers
// with the template as it now is.
func (rt *routes) templateAct(verb string, act func(ctx context.Context, a TemplateAdmin, id, by string) (*plancache.Template, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		admin, ok := rt.templates(w)
		if !ok {
			return
		}
		id, who := r.PathValue("id"), by(r)
		t, err := act(r.Context(), admin, id, who)
		if err != nil {
			rt.templateError(w, r, verb+" template "+id, err)
			return
		}
		rt.logTemplateAct(verb, t, who)
		WriteJSON(w, http.StatusOK, viewOf(t))
	})
}

// logTemplateAct records who changed a template: the cache stores the
// result, the log keeps who did it and when.
func (rt *routes) logTemplateAct(verb string, t *plancache.Template, who string) {
	rt.s.log.Info("plan template changed", "act", verb, "template", t.ID, "name", t.Name, "state", t.State, "pinned", t.Pinned, "by", who)
}

// editTemplate is PATCH /api/v1/templates/{id} with a plancache.Edit: the
// fields sent replace the template's; the rest stay.
func (rt *routes) editTemplate(w http.ResponseWriter, r *http.Request) {
	admin, ok := rt.templates(w)
	if !ok {
		return
	}
	var ed plancache.Edit
	if !decodeJSON(w, r, &ed) {
		return
	}
	if ed.Name == nil && ed.Phrasings == nil && ed.Answer == nil && ed.AnswerPattern == nil && ed.Steps == nil {
		WriteError(w, http.StatusBadRequest, "empty_edit", `the edit changes nothing; send one or more of "name", "phrasings", "answer", "answer_pattern", "steps"`)
		return
	}
	id, who := r.PathValue("id"), by(r)
	t, err := admin.Update(r.Context(), id, ed)
	switch {
	case errors.Is(err, plancache.ErrNotFound):
		rt.templateError(w, r, "edit template "+id, err)
		return
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return
	case err != nil && !errors.Is(err, plancache.ErrInvalid):
		rt.s.log.Error("edit template", "template", id, "err", err)
		WriteError(w, http.StatusInternalServerError, "store_failed", fmt.Sprintf("edit template %s: %v — nothing changed; try again, and see the daemon's log if it persists", id, err))
		return
	case err != nil:
		// The cache refuses an edit that would not make a valid template;
		// its message names what is wrong.
		WriteError(w, http.StatusBadRequest, "bad_edit", fmt.Sprintf("edit template %s: %v — fix the edit and send it again; GET /api/v1/templates/%s (`agentd templates show %s`) shows the template as it is", id, err, id, id))
		return
	}
	rt.logTemplateAct("edit", t, who)
	WriteJSON(w, http.StatusOK, viewOf(t))
}

func (rt *routes) deleteTemplate(w http.ResponseWriter, r *http.Request) {
	admin, ok := rt.templates(w)
	if !ok {
		return
	}
	id, who := r.PathValue("id"), by(r)
	if err := admin.Delete(r.Context(), id); err != nil {
		rt.templateError(w, r, "delete template "+id, err)
		return
	}
	rt.s.log.Info("plan template deleted", "template", id, "by", who)
	WriteJSON(w, http.StatusOK, map[string]any{"id": id, "deleted_by": who})
}

// exportTemplates is GET /api/v1/templates/export[?id=ID...]: the usable
// templates (or the ones named) as [[workflows]] entries of config.toml.
func (rt *routes) exportTemplates(w http.ResponseWriter, r *http.Request) {
	admin, ok := rt.templates(w)
	if !ok {
		return
	}
	wfs, err := admin.Workflows(r.URL.Query()["id"]...)
	if err != nil {
		rt.templateError(w, r, "export templates", err)
		return
	}
	body, err := WorkflowsTOML(wfs, rt.d.Now())
	if err != nil {
		rt.engineError(w, r, "export templates", err)
		return
	}
	w.Header().Set("Content-Type", "application/toml")
	w.Header().Set("Content-Disposition", `attachment; filename="workflows.toml"`)
	_, _ = w.Write(body)
}

// WorkflowsTOML writes workflows as [[workflows]] entries an operator can
// paste into config.toml, under a comment saying where they came from.
// The API's export and `agentd export workflows` both write with it, so
// the two cannot drift.
func WorkflowsTOML(wfs []config.WorkflowConfig, at time.Time) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %d plan template(s) agentd learned, exported %s.\n", len(wfs), at.UTC().Format(time.RFC3339))
	b.WriteString("# Paste these [[workflows]] into config.toml: each then plans its requests as a configured workflow.\n")
	if len(wfs) == 0 {
		b.WriteString("# (no usable template yet: agentd learns them from runs that end done)\n")
		return b.Bytes(), nil
	}
	b.WriteString("\n")
	enc := toml.NewEncoder(&b)
	enc.SetIndentTables(true)
	if err := enc.Encode(struct {
		Workflows []config.WorkflowConfig `toml:"workflows"`
	}{wfs}); err != nil {
		return nil, fmt.Errorf("write workflows as TOML: %w", err)
	}
	return b.Bytes(), nil
}
