package config

import "strings"

// ModelUse is one reason agentd calls a model: the role it plays and the
// configuration that sets or asks for it.
type ModelUse struct {
	Model string // the model's name as configured
	Role  string // planner, standard, fast, summarizer, router, embedding
	Why   string // the key that names it, and the feature that needs it
}

// ModelUses lists what the configured features call, planner first (the
// order the residency policy ranks models in): the planner (also the
// fallback when the remote planner is refused), the executor's two tiers
// (fast also runs scratchpad turns), the summarizer that writes every
// answer (fast when unset), the router when [[workflows]] classify
// requests or extract parameters (fast when unset), and the embedding
// model when [tools.docs] has folders to index. models.validator is called
// by nothing, so it is not listed. Doctor checks exactly these, and the
// residency policy plans VRAM for exactly these.
func (c *Config) ModelUses() []ModelUse {
	mc := c.Models
	var out []ModelUse
	use := func(model, role, why string) {
		if strings.TrimSpace(model) != "" {
			out = append(out, ModelUse{Model: model, Role: role, Why: why})
		}
	}
	use(mc.Planner, "planner", "models.planner")
	use(mc.Standard, "standard", "models.standard")
	use(mc.Fast, "fast", "models.fast")
	if mc.Summarizer != "" {
		use(mc.Summarizer, "summarizer", "models.summarizer")
	} else {
		use(mc.Fast, "summarizer", "models.fast, as models.summarizer is empty")
	}
	if why := c.routerNeed(); why != "" {
		if mc.Router != "" {
			use(mc.Router, "router", "models.router, "+why)
		} else {
			use(mc.Fast, "router", "models.fast, as models.router is empty, "+why)
		}
	}
	if len(c.Tools.Docs.Folders) > 0 {
		use(mc.Embedding, "embedding", "models.embedding, needed by [tools.docs] folders")
	}
	return out
}

// routerNeed says why the router model is called, or "" when it never is:
// it classifies requests no keyword matched (unless
// planner.classify_workflows is "never") among the workflows that can run,
// and extracts the parameters of plan-template workflows that declare some.
func (c *Config) routerNeed() string {
	var classify, extract bool
	for _, w := range c.Workflows {
		scratchpad := w.Mode == "scratchpad"
		if len(w.Steps) > 0 || scratchpad {
			classify = classify || c.Planner.ClassifyWorkflows != "never"
		}
		// Only a plan template is filled in from extracted parameters.
		extract = extract || (len(w.Params) > 0 && len(w.Steps) > 0 && !scratchpad)
	}
	switch {
	case classify && extract:
		return "needed by [[workflows]] to classify requests and extract parameters"
	case classify:
		return "needed by [[workflows]] to classify requests"
	case extract:
		return "needed by [[workflows]] to extract parameters"
	}
	return ""
}
