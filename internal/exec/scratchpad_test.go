package exec

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/run"
)

func TestScratchpadLoop(t *testing.T) {
	h := newHarness(t)
	// The planning service says which runs go to the scratchpad loop.
	h.planner.plan = func(PlanRequest) (PlanResult, error) { return PlanResult{Mode: ModeScratchpad}, nil }
	weather := h.tools.add(&fakeTool{name: "get_weather", idempotent: true,
		schema: `{"type":"object","required":["city"],"properties":{"city":{"type":"string"}}}`})
	turn := 0
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
		if req.Purpose != "scratchpad" || req.Model != "model-scratchpad" || len(req.Format) == 0 {
			t.Errorf("request %+v", req)
		}
		turn++
		switch turn {
		case 1:
			return ChatResponse{Content: `{"scratchpad":{"plan":"get weather, answer","progress":"nothing yet","next":"call"},"action":"tool"}`}, nil
		case 2:
			if !strings.Contains(req.Messages[len(req.Messages)-1].Content, "rejected") {
				t.Errorf("invalid reply not fed back: %+v", req.Messages[len(req.Messages)-1])
			}
			return ChatResponse{Content: `{"scratchpad":{"plan":"get weather, answer","progress":"nothing yet","next":"call"},"action":"tool","tool":"get_weather","args":{"city":"Austin"}}`}, nil
		default:
			last := req.Messages[len(req.Messages)-1].Content
			if !strings.Contains(last, `get_weather:{"city":"Austin"}`) {
				t.Errorf("tool result not given back: %q", last)
			}
			return ChatResponse{Content: `{"scratchpad":{"plan":"done","progress":"have weather","next":"answer"},"action":"final","answer":"Hot [sp2]"}`}, nil
		}
	}
	h.start()
	r, err := h.eng.Submit(t.Context(), SubmitRequest{Request: "weather in Austin?", Workflow: "lookup"})
	if err != nil {
		t.Fatal(err)
	}
	got := h.wait(r.ID)
	if got.Status != run.Done || got.Answer != "Hot [sp2]" || got.Route != ModeScratchpad {
		t.Fatalf("status %s answer %q route %q err %q", got.Status, got.Answer, got.Route, got.Error)
	}
	if weather.calls.Load() != 1 || got.ErrorCount != 1 {
		t.Errorf("calls %d errors %d", weather.calls.Load(), got.ErrorCount)
	}
	st := h.steps(r.ID)["sp2"]
	var spec map[string]json.RawMessage
	_ = json.Unmarshal(st.Spec, &spec)
	if st == nil || st.Status != run.StepDone || !strings.Contains(string(spec["reply"]), "scratchpad") {
		t.Errorf("step sp2 %+v", st)
	}
}

// Bounded turns: no final answer makes a partial answer from what was done.
func TestScratchpadTurnLimit(t *testing.T) {
	h := newHarness(t)
	h.cfg.Executor.ScratchpadTurns = 3
	h.cfg.Executor.MaxRepeatCalls = 10
	h.tools.add(&fakeTool{name: "ping", idempotent: true})
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
		if req.Purpose != "scratchpad" {
			return ChatResponse{}, errTransient
		}
		return ChatResponse{Content: `{"scratchpad":{"plan":"p","progress":"p","next":"n"},"action":"tool","tool":"ping","args":{}}`}, nil
	}
	h.start()
	r, err := h.eng.Submit(t.Context(), SubmitRequest{Request: "loop", Mode: ModeScratchpad})
	if err != nil {
		t.Fatal(err)
	}
	got := h.wait(r.ID)
	if got.Status != run.Partial || !strings.Contains(got.Error, "no final answer within 3") ||
		!strings.Contains(got.Answer, "[sp1]") {
		t.Errorf("status %s error %q answer %q", got.Status, got.Error, got.Answer)
	}
}

// A resumed scratchpad run replays its transcript from the step rows: a
// done action is not repeated, an interrupted non-idempotent one goes to
// review and the model is told.
func TestScratchpadResume(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	ping := h.tools.add(&fakeTool{name: "ping", idempotent: true})
	pay := h.tools.add(&fakeTool{name: "pay"})
	meta, _ := json.Marshal(runMeta{Mode: ModeScratchpad})
	if err := h.store.InsertRun(ctx, &run.Run{ID: "sp", Status: run.Running, Request: "pay after ping", Meta: meta}); err != nil {
		t.Fatal(err)
	}
	reply1 := `{"scratchpad":{"plan":"ping then pay","progress":"","next":"ping"},"action":"tool","tool":"ping","args":{}}`
	reply2 := `{"scratchpad":{"plan":"ping then pay","progress":"pinged","next":"pay"},"action":"tool","tool":"pay","args":{"usd":5}}`
	spec1, _ := json.Marshal(map[string]any{"step": map[string]any{"id": "sp1", "tool": "ping"}, "reply": json.RawMessage(reply1)})
	spec2, _ := json.Marshal(map[string]any{"step": map[string]any{"id": "sp2", "tool": "pay", "args": map[string]any{"usd": 5}},
		"reply": json.RawMessage(reply2)})
	steps := []*run.Step{
		{RunID: "sp", StepID: "sp1", PlanVersion: 1, Kind: "tool", Tool: "ping", Spec: spec1, Status: run.StepDone, Output: "pong", Idempotent: true},
		{RunID: "sp", StepID: "sp2", PlanVersion: 1, Kind: "tool", Tool: "pay", Spec: spec2, Status: run.StepRunning},
	}
	if err := h.store.SavePlan(ctx, "sp", 1, ModeScratchpad, "m", []byte(`{"goal":"g"}`), 1, nil, steps); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.BeginToolCall(ctx, steps[1], "pay", []byte(`{"usd":5}`), "h"); err != nil {
		t.Fatal(err)
	}
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
		var all []string
		for _, m := range req.Messages {
			all = append(all, m.Content)
		}
		text := strings.Join(all, "\n")
		if !strings.Contains(text, "Result of ping (sp1):\npong") || !strings.Contains(text, "Tool pay failed: interrupted by a restart") ||
			!strings.Contains(text, `"next":"pay"`) {
			t.Errorf("transcript not replayed:\n%s", text)
		}
		return ChatResponse{Content: `{"scratchpad":{"plan":"p","progress":"payment unclear","next":"stop"},"action":"final","answer":"Pinged [sp1]; payment needs checking."}`}, nil
	}
	h.start()
	got := h.wait("sp")
	if ping.calls.Load() != 0 || pay.calls.Load() != 0 {
		t.Errorf("actions repeated: ping %d pay %d", ping.calls.Load(), pay.calls.Load())
	}
	if got.Status != run.Review || h.steps("sp")["sp2"].Status != run.StepReview {
		t.Errorf("status %s sp2 %s", got.Status, h.steps("sp")["sp2"].Status)
	}
}

// The planner (a workflow template marked scratchpad) may hand a run to the
// scratchpad loop.
func TestPlannerChoosesScratchpad(t *testing.T) {
	h := newHarness(t)
	h.planner.plan = func(PlanRequest) (PlanResult, error) { return PlanResult{Mode: ModeScratchpad}, nil }
	h.chat.fn = func(req ChatRequest) (ChatResponse, error) {
		return ChatResponse{Content: `{"scratchpad":{"plan":"p","progress":"p","next":"n"},"action":"final","answer":"42"}`}, nil
	}
	h.start()
	got := h.wait(h.submit("answer").ID)
	if got.Status != run.Done || got.Answer != "42" || got.Route != ModeScratchpad || !strings.Contains(string(got.Meta), "scratchpad") {
		t.Errorf("%+v", got)
	}
}
