package plancache

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/config"
	"github.com/agentd/agentd/internal/db"
	"github.com/agentd/agentd/internal/plan"
	"github.com/agentd/agentd/internal/run"
)

// memStore is the Store in memory, for the cache's own logic; the
// daemon's tests use the real SQLite store.
type memStore struct{ rows map[string]db.PlanTemplate }

func (m *memStore) PlanTemplates(context.Context) ([]db.PlanTemplate, error) {
	var out []db.PlanTemplate
	for _, r := range m.rows {
		out = append(out, r)
	}
	return out, nil
}
func (m *memStore) PutPlanTemplate(_ context.Context, t db.PlanTemplate) error {
	m.rows[t.ID] = t
	return nil
}
func (m *memStore) DeletePlanTemplate(_ context.Context, id string) error {
	delete(m.rows, id)
	return nil
}

func newCache(t *testing.T, cfg config.PlanCacheConfig) (*Cache, *memStore) {
	t.Helper()
	st := &memStore{rows: map[string]db.PlanTemplate{}}
	c, err := Open(t.Context(), cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, st
}

var defaults = config.PlanCacheConfig{Enabled: true, Use: "auto", MaxTemplates: 100, RetireAfter: 2}

func stockPlan(sku, warehouse string) *plan.Plan {
	return &plan.Plan{Goal: "stock", Answer: "Say how many units of " + sku + " the " + warehouse + " warehouse has.",
		Steps: []plan.Step{{ID: "stock", Tool: "get_stock", Args: map[string]any{"sku": sku, "warehouse": warehouse}}}}
}

func done(req string, p *plan.Plan, answer string, outputs map[string]string) Outcome {
	return Outcome{RunID: "r-" + req, Request: req, Status: run.Done, Plan: p, PlanVersion: 1, PlanSource: "local",
		Answer: answer, ToolOutputs: outputs}
}

func TestLearnsAndFillsAStockCheck(t *testing.T) {
	c, st := newCache(t, defaults)
	c.Ended(t.Context(), done("Stock check for SKU W-100 in the east warehouse", stockPlan("W-100", "east"), "", nil))
	list := c.List()
	if len(list) != 1 || len(st.rows) != 1 {
		t.Fatalf("templates %d stored %d, want 1", len(list), len(st.rows))
	}
	tp := list[0]
	if got := tp.Phrasings[0]; got != "Stock check for SKU {{sku}} in the {{warehouse}} warehouse" {
		t.Fatalf("phrasing %q", got)
	}
	hit, ok := c.Lookup("stock check for sku W-200 in the north warehouse.")
	if !ok {
		t.Fatal("no match for the same wording with other values")
	}
	args := hit.Plan.Steps[0].Args
	if args["sku"] != "W-200" || args["warehouse"] != "north" {
		t.Fatalf("filled args %v", args)
	}
	if hit.Plan.Answer != "Say how many units of W-200 the north warehouse has." {
		t.Fatalf("answer %q", hit.Plan.Answer)
	}
	for _, miss := range []string{
		"Reorder SKU W-200 for the north warehouse",                  // another verb: another plan
		"Stock check for SKU W-200 and W-300 in the north warehouse", // two values where one was
		"Stock check for SKU W-200 in the north warehouse and reorder if low",
		"Stock check for SKU 42 in the north warehouse", // a number where a code was
	} {
		if h, ok := c.Lookup(miss); ok {
			t.Errorf("%q matched with %v: it needs the planner", miss, h.Params)
		}
	}
}

func TestNumbersInsideAnExpression(t *testing.T) {
	c, _ := newCache(t, defaults)
	p := &plan.Plan{Answer: "Give the result.", Steps: []plan.Step{{ID: "calculate", Tool: "calc", Args: map[string]any{"expression": "2340 * 17 / 100"}}}}
	c.Ended(t.Context(), done("What is 17% of 2,340?", p, "17% of 2,340 is 397.8 [calculate]", map[string]string{"calculate": `{"result": 397.8}`}))
	hit, ok := c.Lookup("What is 25% of 1,200?")
	if !ok {
		t.Fatalf("no match; templates %+v", c.List())
	}
	if got := hit.Plan.Steps[0].Args["expression"]; got != "1200 * 25 / 100" {
		t.Fatalf("expression %v", got)
	}
	if hit.Plan.AnswerPattern != "" {
		t.Fatal("an answer pattern from one run was used")
	}
	// A second planner-made run with other values reads the same pattern:
	// confirmed.
	p2 := &plan.Plan{Answer: "Give the result.", Steps: []plan.Step{{ID: "calculate", Tool: "calc", Args: map[string]any{"expression": "80 * 5 / 100"}}}}
	c.Ended(t.Context(), done("What is 5% of 80?", p2, "5% of 80 is 4 [calculate]", map[string]string{"calculate": `{"result": 4}`}))
	hit, ok = c.Lookup("What is 10% of 300?")
	if !ok {
		t.Fatal("no match after the second run")
	}
	if want := "10% of 300 is ${calculate.result} [calculate]"; hit.Plan.AnswerPattern != want {
		t.Fatalf("pattern %q, want %q", hit.Plan.AnswerPattern, want)
	}
}

func TestNothingLearnedFromSensitiveOrReplannedRuns(t *testing.T) {
	c, st := newCache(t, defaults)
	o := done("Stock check for SKU W-100 in the east warehouse", stockPlan("W-100", "east"), "", nil)
	o.Sensitive = true
	c.Ended(t.Context(), o)
	o.Sensitive, o.PlanVersion = false, 2
	c.Ended(t.Context(), o)
	o.PlanVersion, o.Workflow = 1, "stock"
	c.Ended(t.Context(), o)
	o.Workflow, o.Status = "", run.Failed
	c.Ended(t.Context(), o)
	if len(st.rows) != 0 {
		t.Fatalf("learned %d templates from runs that teach nothing", len(st.rows))
	}
}

func TestFailuresDemoteThenRetire(t *testing.T) {
	c, _ := newCache(t, defaults)
	c.Ended(t.Context(), done("Stock check for SKU W-100 in the east warehouse", stockPlan("W-100", "east"), "", nil))
	hit, _ := c.Lookup("Stock check for SKU W-2 in the north warehouse")
	fail := Outcome{RunID: "x", Status: run.Failed, Template: hit.Use(), Error: "tool failed"}
	c.Ended(t.Context(), fail)
	if tp := c.List()[0]; tp.State != Demoted {
		t.Fatalf("after one failure: %s", tp.State)
	}
	if _, ok := c.Lookup("Stock check for SKU W-3 in the north warehouse"); !ok {
		t.Fatal("a demoted template stopped planning")
	}
	c.Ended(t.Context(), fail)
	if tp := c.List()[0]; tp.State != Retired {
		t.Fatalf("after two failures in a row: %s", tp.State)
	}
	if _, ok := c.Lookup("Stock check for SKU W-3 in the north warehouse"); ok {
		t.Fatal("a retired template still plans")
	}
	if _, err := c.Approve(t.Context(), hit.Template.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Lookup("Stock check for SKU W-3 in the north warehouse"); !ok {
		t.Fatal("an approved template does not plan")
	}
}

func TestApprovalModeWaitsForAPerson(t *testing.T) {
	cfg := defaults
	cfg.Use = "approved"
	c, st := newCache(t, cfg)
	c.Ended(t.Context(), done("Stock check for SKU W-100 in the east warehouse", stockPlan("W-100", "east"), "", nil))
	if _, ok := c.Lookup("Stock check for SKU W-2 in the north warehouse"); ok {
		t.Fatal("a pending template planned a request")
	}
	id := c.List()[0].ID
	if _, err := c.Approve(t.Context(), id, "ops"); err != nil {
		t.Fatal(err)
	}
	// The cache reopened from the store keeps the approval.
	c2, err := Open(t.Context(), cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c2.Lookup("Stock check for SKU W-2 in the north warehouse"); !ok {
		t.Fatal("approved template lost on reopening")
	}
	var doc Template
	_ = json.Unmarshal(st.rows[id].Data, &doc)
	if doc.ApprovedBy != "ops" {
		t.Fatalf("approved_by %q", doc.ApprovedBy)
	}
}

func TestASensitiveRunLeavesNoValueInTheTemplate(t *testing.T) {
	c, st := newCache(t, defaults)
	c.Ended(t.Context(), done("Stock check for SKU W-100 in the east warehouse", stockPlan("W-100", "east"), "", nil))
	hit, _ := c.Lookup("Stock check for SKU SECRET-9 in the vault warehouse")
	use := hit.Use()
	c.Ended(t.Context(), Outcome{RunID: "s1", Request: "Stock check for SKU SECRET-9 in the vault warehouse", Status: run.Done, Sensitive: true, Template: use})
	c.Ended(t.Context(), Outcome{RunID: "s2", Request: "Stock check for SKU SECRET-9 in the vault warehouse", Status: run.Failed, Sensitive: true, Template: use, Error: "SECRET-9 not found"})
	for _, row := range st.rows {
		if strings.Contains(string(row.Data), "SECRET") || strings.Contains(string(row.Data), "vault") {
			t.Fatalf("a sensitive run's value is in the stored template: %s", row.Data)
		}
	}
	if tp := c.List()[0]; tp.Uses != 2 || tp.Successes != 1 {
		t.Fatalf("uses %d successes %d: sensitive runs still count", tp.Uses, tp.Successes)
	}
}

// Two runs where the same city was warmer read the same pattern; it
// would be wrong the day the other one is. A plan of two results gets no
// pattern, nor does a result with a true/false in it.
func TestNoPatternWhereTheWordingMayDependOnTheValues(t *testing.T) {
	c, _ := newCache(t, defaults)
	compare := func(a, b string) *plan.Plan {
		return &plan.Plan{Answer: "Say which is warmer.", Steps: []plan.Step{
			{ID: "wa", Tool: "weather", Args: map[string]any{"city": a}},
			{ID: "wb", Tool: "weather", Args: map[string]any{"city": b}}}}
	}
	outs := func(ta, tb string) map[string]string {
		return map[string]string{"wa": `{"temp_c": ` + ta + `}`, "wb": `{"temp_c": ` + tb + `}`}
	}
	c.Ended(t.Context(), done("Is Oslo warmer than Rome", compare("Oslo", "Rome"), "Rome is warmer (21 C against 4 C).", outs("4", "21")))
	c.Ended(t.Context(), done("Is Paris warmer than Cairo", compare("Paris", "Cairo"), "Cairo is warmer (30 C against 12 C).", outs("12", "30")))
	if hit, ok := c.Lookup("Is Lima warmer than Bern"); !ok || hit.Plan.AnswerPattern != "" {
		t.Fatalf("hit %v, pattern %q: want the template without a pattern", ok, hit.Plan.AnswerPattern)
	}
	c2, _ := newCache(t, defaults)
	stock := func(sku string) *plan.Plan {
		return &plan.Plan{Answer: "Say if it is in stock.", Steps: []plan.Step{{ID: "s", Tool: "stock", Args: map[string]any{"sku": sku}}}}
	}
	c2.Ended(t.Context(), done("Is SKU W-1 in stock", stock("W-1"), "W-1 is in stock.", map[string]string{"s": `{"in_stock": true}`}))
	c2.Ended(t.Context(), done("Is SKU W-2 in stock", stock("W-2"), "W-2 is in stock.", map[string]string{"s": `{"in_stock": true}`}))
	if hit, ok := c2.Lookup("Is SKU W-3 in stock"); !ok || hit.Plan.AnswerPattern != "" {
		t.Fatalf("hit %v, pattern %q: a true/false result picks the wording", ok, hit.Plan.AnswerPattern)
	}
}
