package planning

import (
	"fmt"
	"testing"

	"github.com/agentd/agentd/internal/config"
)

// TestDecideEveryCombination walks every combination of operator policy,
// workflow flags, request flags and purpose, and checks the rules that must
// hold whatever the combination: nothing sensitive leaves; the operator's
// "local" and a disabled fallback hold; a request or workflow may narrow
// the policy and never widen it; a refusal says why.
func TestDecideEveryCombination(t *testing.T) {
	workflows := []*config.WorkflowConfig{nil,
		{Name: "plain"}, {Name: "secret", Sensitive: true},
		{Name: "stay", Planner: "local"}, {Name: "out", Planner: "remote"},
		{Name: "secret_out", Sensitive: true, Planner: "remote"}}
	n := 0
	for _, enabled := range []bool{false, true} {
		for _, mode := range []string{"", "auto", "local", "remote"} {
			p := Policy{Enabled: enabled, Mode: mode}
			for _, wf := range workflows {
				for _, reqPlanner := range []string{"", "auto", "local", "remote"} {
					for _, reqSensitive := range []bool{false, true} {
						for _, purpose := range []string{PurposeRoute, PurposeEscalate, PurposeReplan} {
							n++
							a := Ask{Purpose: purpose, RequestPlanner: reqPlanner, RequestSensitive: reqSensitive, Workflow: wf}
							e := p.Decide(a)
							name := fmt.Sprintf("enabled=%v mode=%q wf=%v request=%q sensitive=%v %s", enabled, mode, wf, reqPlanner, reqSensitive, purpose)
							sensitive := reqSensitive || (wf != nil && wf.Sensitive)
							if e.Sensitive != sensitive {
								t.Errorf("%s: sensitive = %v", name, e.Sensitive)
							}
							if e.Allowed && (sensitive || !enabled || mode == "local" || reqPlanner == "local" || (wf != nil && wf.Planner == "local")) {
								t.Errorf("%s: allowed, but policy forbids it", name)
							}
							if !e.Allowed && len(e.Reasons) == 0 {
								t.Errorf("%s: refused without a reason", name)
							}
							// Narrowing only: whatever a request asks, the
							// answer is never more permissive than for a
							// request that asks nothing.
							base := p.Decide(Ask{Purpose: purpose, Workflow: wf})
							if e.Allowed && !base.Allowed {
								t.Errorf("%s: the request widened the policy", name)
							}
						}
					}
				}
			}
		}
	}
	if n < 1000 {
		t.Fatalf("only %d combinations", n)
	}
}

// The two holes an independent test found through the public API.
func TestDecideReportedHoles(t *testing.T) {
	local := Policy{Enabled: true, Mode: "local"}
	if e := local.Decide(Ask{Purpose: PurposeRoute, RequestPlanner: "remote"}); e.Allowed {
		t.Errorf("a request asking for remote overrode planner.mode = local: %+v", e)
	}
	auto := Policy{Enabled: true, Mode: "auto"}
	wf := &config.WorkflowConfig{Name: "patients", Sensitive: true}
	for _, purpose := range []string{PurposeRoute, PurposeEscalate, PurposeReplan} {
		if e := auto.Decide(Ask{Purpose: purpose, Workflow: wf}); e.Allowed || !e.Sensitive {
			t.Errorf("%s: a sensitive workflow's run may go remote: %+v", purpose, e)
		}
	}
	if e := auto.Decide(Ask{Purpose: PurposeEscalate}); !e.Allowed {
		t.Errorf("an ordinary escalation under auto is refused: %+v", e)
	}
}
